package io.tpmkms.audit;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import io.tpmkms.protection.tpm.TpmConfig;
import java.time.Duration;
import java.util.Optional;

/** The audit service's settings ({@code tpmkms.*}); see docs/audit.md. */
@ConfigMapping(prefix = "tpmkms")
public interface AuditConfig {
  /** Local state: the root seed (plain or TPM-sealed), the signing key blob, the embedded database. */
  String dataDir();

  Backend backend();

  Audit audit();

  /** The same shape as key-service's {@code tpmkms.backend}: the audit service's OWN TPM. */
  interface Backend {
    /** The TPM; absent: a software signing key and the "software" anchor. */
    Optional<Tpm> tpm();

    /** The audit service's TPM: the shared connection settings, nothing else. */
    interface Tpm extends io.tpmkms.platform.tpm.TpmSettings {}
  }

  interface Audit {
    Checkpoint checkpoint();

    Writer writer();

    /** The TPM NV extend index the checkpoints are extended into (with a TPM). */
    @WithDefault("0x01500100")
    String nvIndex();

    interface Checkpoint {
      /** A checkpoint once this many records were appended since the last one... */
      @WithDefault("1000")
      int everyRecords();

      /** ...or once this much time passed and there is at least one new record. */
      @WithDefault("10S")
      Duration interval();
    }

    interface Writer {
      /** Most events committed in one transaction (group commit of many requests). */
      @WithDefault("5000")
      int maxBatchEvents();

      /** Most events waiting for the writer; beyond that appends fail UNAVAILABLE (OVERLOADED). */
      @WithDefault("50000")
      int queueCapacityEvents();
    }
  }
}
