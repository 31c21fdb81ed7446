package io.tpmkms.protection;

import java.util.Objects;

/** What to generate. More settings (export policy, PCR binding) come with the features that need them. */
public record KeySpec(KeyAlgorithm algorithm) {
  public KeySpec {
    Objects.requireNonNull(algorithm, "algorithm");
  }
}
