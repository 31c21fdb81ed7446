package io.tpmkms.platform.audit;

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

  /** The local journal of events that change no state (ADR 0016). */
  Journal journal();

  interface Journal {
    /**
     * Directory of this process's journal; one per process (a second process
     * on the same directory refuses to start). Unset: calls that change no
     * state cannot be audited and are refused.
     */
    Optional<String> dir();

    /** Size at which a new segment file starts. */
    @WithDefault("67108864")
    long segmentBytes();

    /**
     * Events written but not yet accepted by the audit service, in bytes,
     * above which calls are refused (fail closed) instead of filling the disk.
     */
    @WithDefault("1073741824")
    long maxBacklogBytes();

    /**
     * Least time between two syncs of the journal under load (once a sync
     * carried 32 events or more): what arrives within it shares one
     * {@code fdatasync}, each of which costs CPU whatever it carries. At low
     * concurrency, and when the journal is idle, a call is synced at once.
     */
    @WithDefault("2ms")
    java.time.Duration commitInterval();
  }

  /** host:port of the audit service; unset: events stay in the outbox table. */
  Optional<String> forwardTo();

  /** The producer named in every event ("key-service", "policy-service"). */
  String service();
}
