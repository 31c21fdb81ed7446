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

  /** How reads of the trail are authorized: by the policy service (docs/authorization.md, ADR 0023). */
  Authz authz();

  interface Authz {
    /**
     * host:port of the policy service; asked, with this service's client-credentials token, whether
     * a caller may read the trail. Required with {@code tpmkms.auth.mode=oidc}.
     */
    Optional<String> policyService();

    /** No decision within this: the call fails closed (UNAVAILABLE, POLICY_UNAVAILABLE). */
    @WithDefault("2s")
    Duration timeout();

    /** A decision is re-used this long for the same principal and action. */
    @WithDefault("5s")
    Duration cacheTtl();

    /** At most this many remembered decisions. */
    @WithDefault("10000")
    int cacheSize();
  }

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

    Append append();

    /** Who may append: decided here, from the token, without asking the policy service (the hot path). */
    interface Append {
      /**
       * The OAuth clients (token {@code azp}) whose service accounts may call AppendEvents, each
       * {@code client} or {@code client=service}: events it delivers must name that {@code service}
       * (without "=service": the client id minus a leading "tpmkms-", e.g. tpmkms-key-service →
       * key-service). Anyone else's AppendEvents is refused (PERMISSION_DENIED, APPEND_NOT_ALLOWED)
       * and recorded as a denied attempt.
       */
      @WithDefault("tpmkms-key-service,tpmkms-policy-service")
      java.util.List<String> allowedClients();
    }

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
