package io.tpmkms.platform.rpc;

import io.tpmkms.platform.audit.CallInfo;
import java.util.concurrent.CompletableFuture;

/**
 * The audit step of the {@link Pipeline}: how a service records its calls.
 */
public interface Auditing {
  /** Whether events are written at all. */
  boolean enabled();

  /**
   * Whether every call gets an event before it answers (the key service: use, reads and failures
   * through the journal); false when only state changes are recorded, in their own transaction (the
   * policy service).
   */
  boolean everyCall();

  /** Makes the call's event durable; completes when it is, fails (UNAVAILABLE) when it cannot be. */
  CompletableFuture<Void> record(CallInfo call, String key, int version, String outcome, String reason);

  /** Every call's event through the audit log (the key service). */
  static Auditing everyCall(io.tpmkms.platform.audit.AuditLog log) {
    return of(log, true);
  }

  /** Only state changes, each written by its own transaction (the policy service). */
  static Auditing changesOnly(io.tpmkms.platform.audit.AuditLog log) {
    return of(log, false);
  }

  private static Auditing of(io.tpmkms.platform.audit.AuditLog log, boolean every) {
    return new Auditing() {
      @Override
      public boolean enabled() { return log.enabled(); }

      @Override
      public boolean everyCall() { return every; }

      @Override
      public CompletableFuture<Void> record(CallInfo call, String key, int version, String outcome, String reason) {
        return log.record(call, key, version, outcome, reason);
      }
    };
  }

  /** No auditing (tests of one class; the audit service audits its own calls into its chain, ADR 0023). */
  Auditing NONE = new Auditing() {
    @Override
    public boolean enabled() { return false; }

    @Override
    public boolean everyCall() { return false; }

    @Override
    public CompletableFuture<Void> record(CallInfo call, String key, int version, String outcome, String reason) {
      return CompletableFuture.completedFuture(null);
    }
  };
}
