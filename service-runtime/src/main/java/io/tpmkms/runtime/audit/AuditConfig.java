package io.tpmkms.runtime.audit;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.util.Optional;

/** The audit outbox of a tpmkms service (docs/audit.md). */
@ConfigMapping(prefix = "tpmkms.audit")
public interface AuditConfig {
  /**
   * Whether every operation writes an audit event (default true). Off only
   * for measuring what auditing costs: without it nothing is recorded.
   */
  @WithDefault("true")
  boolean enabled();

  /** Outbox writer threads (commits in flight) for events written after the fact. */
  @WithDefault("4")
  int writers();

  /** host:port of the audit service; unset: events stay in the outbox table. */
  Optional<String> forwardTo();

  /** The producer named in every event ("key-service", "policy-service"). */
  String service();
}
