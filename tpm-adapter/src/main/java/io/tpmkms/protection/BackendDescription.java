package io.tpmkms.protection;

import java.util.Set;

/**
 * Identity and abilities of a backend.
 *
 * @param id stable identifier written into blobs' provenance and logs ("software", "tpm")
 * @param level the protection level its keys have
 * @param capabilities the operations it implements; others throw {@link BackendException.Kind#UNSUPPORTED}
 * @param algorithms the algorithms it can generate
 */
public record BackendDescription(
    String id, ProtectionLevel level, Set<Capability> capabilities, Set<KeyAlgorithm> algorithms) {
  public BackendDescription {
    capabilities = Set.copyOf(capabilities);
    algorithms = Set.copyOf(algorithms);
  }

  public boolean supports(Capability c) { return capabilities.contains(c); }
  public boolean supports(KeyAlgorithm a) { return algorithms.contains(a); }
}
