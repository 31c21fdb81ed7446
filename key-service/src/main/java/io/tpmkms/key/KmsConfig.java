package io.tpmkms.key;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import io.tpmkms.protection.ProtectionLevel;
import io.tpmkms.protection.tpm.TpmConfig;
import java.time.Duration;
import java.util.Optional;

/** The key service's own settings ({@code tpmkms.*}); see docs/operations.md. */
@ConfigMapping(prefix = "tpmkms")
public interface KmsConfig {
  /** Local state: the software root seed and the embedded database. */
  String dataDir();

  Backend backend();

  Destruction destruction();

  Rotation rotation();

  Cache cache();

  Imports imports();

  Duplication duplication();

  Crypto crypto();

  /** Where SOFTWARE keys' EC and RSA operations run (ADR 0027). */
  interface Crypto {
    /**
     * {@code auto}: BoringSSL through Conscrypt for each family that loads and passes its start-up
     * self-test, Java providers otherwise; {@code java}: Java providers only (Bouncy Castle for ECDSA,
     * the JDK for RSA).
     */
    @WithDefault("auto")
    io.tpmkms.protection.AsymmetricCrypto.Mode provider();
  }

  /** Node enrollment and attestation (ADR 0038; docs/attestation.md). */
  Attestation attestation();

  interface Attestation {
    /** PEM bundle of the TPM manufacturers' CA certificates node EK certificates must chain to; unset: no enrollment. */
    Optional<String> ekCaFile();

    /** How long an enrolled node has to answer its credential (ActivateNode). */
    @WithDefault("5m")
    Duration activationLifetime();

    /** How long an attestation challenge's nonce is good. */
    @WithDefault("2m")
    Duration challengeLifetime();

    /** How recent a node's last passing attestation must be for ReleaseKey. */
    @WithDefault("5m")
    Duration freshness();
  }

  /** TPM duplication (ADR 0025; docs/import-export.md). */
  interface Duplication {
    /**
     * TPM names (hex, as {@code tpm2_readpublic -n} or an import job's attestation_key_name give them) of
     * the attestation keys whose TPM2_Certify of a storage key ExportKeyVersion accepts as proof that the
     * target lives in a TPM. Empty: no export is possible.
     */
    Optional<java.util.List<String>> trustedAttestationKeys();
  }


  interface Backend {
    /** Protection level of keys created without one; unset: TPM when a TPM is configured, else SOFTWARE. */
    Optional<ProtectionLevel> defaultProtectionLevel();

    Software software();

    /** The TPM; absent: no TPM protection level (and the software root seed is a plain file). */
    Optional<Tpm> tpm();

    /** The shared connection settings, and where the TPM-sealed software root seed is kept. */
    interface Tpm extends io.tpmkms.platform.tpm.TpmSettings {
      /** Where the TPM-sealed software root seed is kept; unset: {@code <data-dir>/software-root.sealed}. */
      Optional<String> sealedSeedFile();
    }

    interface Software {
      /** The software root seed; created (0600) on first start. */
      String seedFile();
    }
  }

  interface Destruction {
    /** Delay before a scheduled destruction happens when the request names none. */
    Duration defaultDelay();
    Duration minDelay();
    Duration maxDelay();
    /** How often each replica looks for versions due for destruction. */
    String checkInterval();
  }

  interface Rotation {
    /** The shortest rotation period a key may have. */
    Duration minPeriod();
    /** How often each replica looks for keys due for rotation. */
    String checkInterval();
  }

  interface Imports {
    /** How long an import job accepts imports after its wrapping key was generated (Cloud KMS: 3 days). */
    @WithDefault("72H")
    Duration jobLifetime();

    /** How often each replica expires due jobs and regenerates jobs whose generation was lost. */
    @WithDefault("30S")
    String checkInterval();

    /**
     * A job still PENDING_GENERATION this long after its creation lost its generation (a crash between
     * insert and generation); the scheduler generates its wrapping key.
     */
    @WithDefault("60S")
    Duration pendingGrace();
  }

  interface Cache {
    /**
     * How long a replica may use its cached view of a key for cryptographic
     * operations: the bound on how late another replica sees a state change.
     */
    @WithDefault("5S")
    Duration ttl();
  }
}
