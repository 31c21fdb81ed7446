package io.tpmkms.runtime.audit;

import com.google.protobuf.Timestamp;
import io.agroal.api.AgroalDataSource;
import io.quarkus.runtime.ShutdownEvent;
import io.tpmkms.proto.audit.v1.AuditEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.persistence.EntityManager;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Writes one audit event per operation into the transactional outbox
 * ({@code audit_outbox}), from where {@link AuditForwarder} ships it to the
 * audit service.
 *
 * <ul>
 *   <li>A state change writes its event in the same transaction
 *       ({@link #recordInTransaction}): both commit or neither.
 *   <li>Every other call (reads, cryptographic use, failures) writes its event
 *       through a writer thread that batches concurrent events into one
 *       transaction (group commit); the call answers only after that commit.
 *       If the event cannot be made durable the call fails with UNAVAILABLE
 *       (fail closed) — a state change never happened without its event.
 * </ul>
 *
 * <p>Events never contain plaintexts, key material or tokens (see {@link CallInfo#request}).
 */
@ApplicationScoped
public class AuditLog {
  private static final Logger LOG = Logger.getLogger(AuditLog.class);
  private static final int MAX_BATCH = 1000;
  private static final String INSERT = "INSERT INTO audit_outbox (event_id, payload) VALUES (?, ?)";
  /**
   * A whole batch in one statement: one parse, one plan, one round trip,
   * instead of a JDBC batch of single-row INSERTs (measured: about a third
   * less PostgreSQL CPU per event at 256 callers; docs/benchmarks.md).
   * Rows keep the batch's order (unnest preserves it, ids come from the
   * sequence in that order).
   */
  private static final String INSERT_BATCH =
      "INSERT INTO audit_outbox (event_id, payload) SELECT * FROM unnest(?::uuid[], ?::bytea[])";

  private record Pending(String eventId, byte[] payload, CompletableFuture<Void> done) {}

  private final AgroalDataSource db;
  private final boolean enabled;
  private final String service;
  private final BlockingQueue<Pending> queue = new ArrayBlockingQueue<>(100_000);
  private final List<Thread> writers = new ArrayList<>();
  private volatile boolean running = true;

  public AuditLog(AgroalDataSource db, AuditConfig config) {
    this.db = db;
    this.service = config.service();
    this.enabled = config.enabled();
    if (!enabled) LOG.warn("auditing is OFF (tpmkms.audit.enabled=false): operations are not recorded");
    // Several writers, so several commits are in flight: PostgreSQL flushes the WAL once for all
    // commits waiting at that moment, and a caller never waits for more than one fsync behind others.
    for (int i = 0; i < config.writers(); i++) {
      Thread t = new Thread(this::writeLoop, "audit-outbox-writer-" + i);
      t.setDaemon(true);
      t.start();
      writers.add(t);
    }
  }

  /** Whether events are written at all ({@code tpmkms.audit.enabled}). */
  public boolean enabled() { return enabled; }

  /** The event of a state change, in the caller's transaction. */
  public void recordInTransaction(EntityManager em, CallInfo call, String key, int version) {
    if (!enabled) return;
    AuditEvent e = event(call, key, version, "OK", "");
    em.createNativeQuery(INSERT)
        .setParameter(1, UUID.fromString(e.getEventId()))
        .setParameter(2, e.toByteArray())
        .executeUpdate();
  }

  /** Marks the call's event as written (after the transaction that wrote it committed). */
  public void committed(CallInfo call) {
    call.markRecorded();
  }

  /**
   * The event of a call that changed no state (or failed), made durable by
   * group commit. Completes when committed; fails with UNAVAILABLE if it
   * could not be.
   */
  public CompletableFuture<Void> record(CallInfo call, String key, int version, String outcome, String reason) {
    if (!enabled) return CompletableFuture.completedFuture(null);
    AuditEvent e = event(call, key, version, outcome, reason);
    CompletableFuture<Void> done = new CompletableFuture<>();
    if (!running || !queue.offer(new Pending(e.getEventId(), e.toByteArray(), done))) {
      done.completeExceptionally(unavailable(null));
    }
    return done;
  }

  private AuditEvent event(CallInfo call, String key, int version, String outcome, String reason) {
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
    StringBuilder b = new StringBuilder(Math.min(s.length(), 256));
    for (int i = 0; i < s.length() && b.length() < 256; i++) {
      char c = s.charAt(i);
      b.append(Character.isISOControl(c) || Character.isSurrogate(c) ? '?' : c);
    }
    return b.toString();
  }

  private void writeLoop() {
    List<Pending> batch = new ArrayList<>(MAX_BATCH);
    while (running || !queue.isEmpty()) {
      try {
        Pending first = queue.poll(200, TimeUnit.MILLISECONDS);
        if (first == null) continue;
        batch.add(first);
        queue.drainTo(batch, MAX_BATCH - 1);
        write(batch);
        batch.forEach(p -> p.done().complete(null));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      } catch (Exception e) {
        LOG.errorf(e, "cannot write %d audit events to the outbox; their calls fail", batch.size());
        AuditUnavailableException failure = unavailable(e);
        batch.forEach(p -> p.done().completeExceptionally(failure));
      } finally {
        batch.clear();
      }
    }
  }

  private void write(List<Pending> batch) throws Exception {
    try (Connection c = db.getConnection()) {
      c.setAutoCommit(false);
      try (PreparedStatement ps = c.prepareStatement(INSERT_BATCH)) {
        UUID[] ids = new UUID[batch.size()];
        byte[][] payloads = new byte[batch.size()][];
        for (int i = 0; i < ids.length; i++) {
          ids[i] = UUID.fromString(batch.get(i).eventId());
          payloads[i] = batch.get(i).payload();
        }
        ps.setArray(1, c.createArrayOf("uuid", ids));
        ps.setArray(2, c.createArrayOf("bytea", payloads));
        int rows = ps.executeUpdate();
        if (rows != ids.length) throw new IllegalStateException("outbox took " + rows + " of " + ids.length + " events");
        c.commit();
      } catch (Exception e) {
        c.rollback();
        throw e;
      }
    }
  }

  private static AuditUnavailableException unavailable(Throwable cause) {
    return new AuditUnavailableException(cause);
  }

  void stop(@Observes ShutdownEvent e) throws InterruptedException {
    running = false;
    for (Thread t : writers) t.join(5_000);
  }
}
