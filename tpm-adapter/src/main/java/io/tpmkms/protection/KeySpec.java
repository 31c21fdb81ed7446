package io.tpmkms.protection;

import java.util.Objects;

/**
 * What to generate: the algorithm, whether the key may ever be duplicated out of its TPM, and
 * (TPM keys only, optional) the platform state the TPM must see before it uses the key.
 */
public record KeySpec(KeyAlgorithm algorithm, ExportPolicy exportPolicy, PlatformBinding platformBinding) {
  public KeySpec {
    Objects.requireNonNull(algorithm, "algorithm");
    Objects.requireNonNull(exportPolicy, "exportPolicy");
    if (platformBinding != null && exportPolicy == ExportPolicy.DUPLICABLE) {
      throw new IllegalArgumentException("a platform-bound key cannot be DUPLICABLE");
    }
  }

  /** A key without a platform binding. */
  public KeySpec(KeyAlgorithm algorithm, ExportPolicy exportPolicy) {
    this(algorithm, exportPolicy, null);
  }

  /** A NON_EXPORTABLE key of the algorithm. */
  public KeySpec(KeyAlgorithm algorithm) {
    this(algorithm, ExportPolicy.NON_EXPORTABLE);
  }
}
