package io.tpmkms.protection;

import java.util.Objects;

/** What to generate: the algorithm and whether the key may ever be duplicated out of its TPM. */
public record KeySpec(KeyAlgorithm algorithm, ExportPolicy exportPolicy) {
  public KeySpec {
    Objects.requireNonNull(algorithm, "algorithm");
    Objects.requireNonNull(exportPolicy, "exportPolicy");
  }

  /** A NON_EXPORTABLE key of the algorithm. */
  public KeySpec(KeyAlgorithm algorithm) {
    this(algorithm, ExportPolicy.NON_EXPORTABLE);
  }
}
