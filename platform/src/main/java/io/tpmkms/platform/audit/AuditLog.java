package io.tpmkms.platform.audit;

import com.google.protobuf.Timestamp;
import io.quarkus.runtime.ShutdownEvent;
import io.tpmkms.proto.audit.v1.AuditEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.persistence.EntityManager;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.jboss.logging.Logger;

/**
 * Writes one audit event per operation, durably, before the operation answers.
 *
 * <ul>
 *   <li>A state change writes its event into the transactional outbox
 *       ({@code audit_outbox}) in the same transaction ({@link #recordInTransaction}):
 *       both commit or neither.
 *   <li>Every other call (reads, cryptographic use, failures) appends its event
 *       to this process's {@link AuditJournal}, a local file made durable by
 *       group commit; the call answers only after that (ADR 0016). If the event
 *       cannot be made durable the call fails with UNAVAILABLE (fail closed).
 * </ul>
 *
 * <p>{@link AuditForwarder} ships both to the audit service. Events never
 * contain plaintexts, key material or tokens (see {@link CallInfo#request}).
 */
@io.quarkus.runtime.Startup
@ApplicationScoped
public class AuditLog {
  private static final Logger LOG = Logger.getLogger(AuditLog.class);
  private static final String INSERT = "INSERT INTO audit_outbox (event_id, payload) VALUES (?, ?)";

  private final boolean enabled;
  private final String service;
  private final AuditJournal journal;

  public AuditLog(AuditConfig config, io.tpmkms.platform.health.Readiness readiness) {
    this.service = config.service();
    this.enabled = config.enabled();
    if (!enabled) LOG.warn("auditing is OFF (tpmkms.audit.enabled=false): operations are not recorded");
    var dir = config.journal().dir();
    if (enabled && dir.isPresent()) {
      try {
        journal = AuditJournal.open(Path.of(dir.get()), config.journal().segmentBytes(),
            config.journal().maxBacklogBytes(), config.journal().commitInterval());
      } catch (IOException e) {
        throw new IllegalStateException("cannot open the audit journal " + dir.get() + ": " + e.getMessage(), e);
      }
    } else {
      journal = null;
    }
    if (journal != null) {
      AuditJournal j = journal;
      readiness.register("audit-journal", j::accepting,
          "the audit backlog is full (the audit service has not taken events for a while): calls are refused");
    }
  }

  /** Whether events are written at all ({@code tpmkms.audit.enabled}). */
  public boolean enabled() { return enabled; }

  /** This process's journal, when one is configured. */
  public Optional<AuditJournal> journal() { return Optional.ofNullable(journal); }

  /** The event of a state change, in the caller's transaction. */
  public void recordInTransaction(EntityManager em, CallInfo call, String key, int version) {
    if (!enabled) return;
    AuditEvent e = event(call, key, version, "OK", "");
    try {
      em.createNativeQuery(INSERT)
          .setParameter(1, UUID.fromString(e.getEventId()))
          .setParameter(2, e.toByteArray())
          .executeUpdate();
    } catch (jakarta.persistence.PersistenceException failure) {
      // the change's transaction rolls back with it: nothing happened, and the caller is told why
      LOG.errorf(failure, "cannot write the audit event of %s to the outbox; the change is refused", call.method());
      throw new AuditUnavailableException(failure);
    }
  }

  /** Marks the call's event as written (after the transaction that wrote it committed). */
  public void committed(CallInfo call) {
    call.markRecorded();
  }

  /**
   * The event of a call that changed no state (or failed), appended to the
   * journal. Completes when durable; fails with UNAVAILABLE if it could not be.
   * Called on a gRPC event loop (a call served in place), the future completes
   * on that same event loop, together with the other calls of the loop that
   * the same sync made durable: the answer goes out from the thread that owns
   * the connection, with one hand-over per sync instead of one per call
   * (JournalLoad, 128 calls in flight: 3.2-4.0 → 2.0 µs of journal CPU per
   * event; ADR 0017).
   */
  public CompletableFuture<Void> record(CallInfo call, String key, int version, String outcome, String reason) {
    if (!enabled) return CompletableFuture.completedFuture(null);
    if (journal == null) {
      LOG.error("an event that changes no state, but no audit journal (tpmkms.audit.journal.dir): call refused");
      return CompletableFuture.failedFuture(new AuditUnavailableException(null));
    }
    // the Netty event loop this thread runs (public class in netty-common's internal package, there
    // since 4.1.30); null on any other thread
    return journal.append(event(call, key, version, outcome, reason).toByteArray(),
        io.netty.util.internal.ThreadExecutorMap.currentExecutor());
  }

  AuditEvent event(CallInfo call, String key, int version, String outcome, String reason) {
    Instant now = Instant.now();
    return AuditEvent.newBuilder()
        .setEventId(call.eventId)
        .setTime(Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()))
        .setService(service)
        .setPrincipal(clip(call.principal))
        .setClient(clip(call.client))
        .setOperation(clip(call.operation))
        .setKey(clip(key))
        .setKeyVersion(Math.max(0, version))
        .setDecision(call.decision())
        .setDecisionReason(clip(call.decisionReason()))
        .setOutcome(outcome)
        .setOutcomeReason(clip(reason))
        .setRequestId(clip(call.requestId))
        .setRequestDigest(com.google.protobuf.ByteString.copyFrom(call.requestDigest()))
        .setTraceParent(io.tpmkms.platform.tracing.Tracing.traceParent(io.tpmkms.platform.tracing.Tracing.current()))
        .setDetails(clip(call.details()))
        .build();
  }

  /**
   * What callers send (a key name that failed validation, a request id) goes
   * into the trail as they sent it, but bounded: control characters become
   * '?' and the text is cut at 256 characters, so no event can be refused by
   * the audit service (which takes at most 1 KiB per field, no U+0000) and
   * block the outbox behind it.
   */
  static String clip(String s) {
    if (s == null) return "";
    if (s.length() <= 256 && clean(s)) return s; // the usual case: nothing to copy
    StringBuilder b = new StringBuilder(Math.min(s.length(), 256));
    for (int i = 0; i < s.length() && b.length() < 256; i++) {
      char c = s.charAt(i);
      b.append(Character.isISOControl(c) || Character.isSurrogate(c) ? '?' : c);
    }
    return b.toString();
  }

  private static boolean clean(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isISOControl(c) || Character.isSurrogate(c)) return false;
    }
    return true;
  }

  void stop(@Observes ShutdownEvent e) {
    if (journal != null) journal.close();
  }
}
