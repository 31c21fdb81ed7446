package io.tpmkms.platform.tpm;

import io.tpmkms.protection.tpm.TpmConfig;
import java.time.Duration;
import java.util.Optional;

/**
 * How a service reaches its TPM ({@code tpmkms.backend.tpm.*}): the one
 * configuration group the key and audit services share (each extends it with
 * what only it needs). No defaults in this group: a default would make an
 * absent TPM look configured.
 */
public interface TpmSettings {
  /** unix (swtpm's socket), tcp (swtpm's data port) or device (/dev/tpmrm0). */
  TpmConfig.Transport transport();

  /** Socket or device path (unix, device). */
  Optional<String> path();

  /** Host and port (tcp). */
  Optional<String> host();

  Optional<Integer> port();

  /** Deadline of one TPM command; unset: 60 s. */
  Optional<Duration> commandTimeout();

  /** Transient slots the adapter may use besides the SRK; unset: 2 (swtpm). */
  Optional<Integer> maxLoadedObjects();

  /** A persistent SRK handle such as 0x81000001 (real hardware); unset: re-derive the SRK. */
  Optional<String> persistentSrkHandle();

  /**
   * The SHA-256 PCRs the sealed root seed is bound to (ADR 0034), e.g. "7" or "0,2,4,7"; "none": not
   * bound to platform state. Unset: "7" (Secure Boot's state).
   */
  Optional<String> rootSealPcrs();

  /** A file outside the data dir with the operator secret the sealed root seed also needs; unset: none. */
  Optional<String> rootSecretFile();

  /** A new operator secret to re-seal with once the current one unsealed (rotation); unset: none. */
  Optional<String> rootNewSecretFile();

  /**
   * The public half (PEM) of an offline EC P-256 recovery key: the sealed root seed gets a second policy
   * branch that a signature by its private half satisfies (ADR 0034, "recovery"); unset: no recovery branch.
   */
  Optional<String> rootRecoveryPublicKeyFile();

  /**
   * The private half (PEM, PKCS#8 or SEC1) of the recovery key, set only to recover: the seed is unsealed
   * through the recovery branch and re-sealed to the platform state now. Remove it after the start.
   */
  Optional<String> rootRecoveryKeyFile();

  /** The sealed root seed's policy from these settings (docs/operations.md, "Binding the sealed seed"). */
  default io.tpmkms.protection.tpm.RootSeal rootSeal(java.nio.file.Path dataDir) {
    return RootSealSettings.of(rootSealPcrs(), rootSecretFile(), rootNewSecretFile(), dataDir)
        .withRecovery(rootRecoveryPublicKeyFile().map(RootSealSettings::recoveryPublicKey).orElse(null))
        .withRecoveryKey(rootRecoveryKeyFile().map(f -> RootSealSettings.recoveryPrivateKey(f, dataDir)).orElse(null));
  }

  /** The adapter's configuration. Handles above 0x7fffffff (all persistent ones) are read as unsigned. */
  default TpmConfig toTpmConfig() {
    return new TpmConfig(transport(), path().orElse(null), host().orElse(null), port().orElse(0),
        commandTimeout().orElse(TpmConfig.DEFAULT_COMMAND_TIMEOUT),
        maxLoadedObjects().orElse(TpmConfig.DEFAULT_MAX_LOADED_OBJECTS),
        persistentSrkHandle().map(h -> (int) Long.decode(h).longValue()).orElse(null));
  }
}
