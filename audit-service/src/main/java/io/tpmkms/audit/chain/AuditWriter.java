package io.tpmkms.audit.chain;

import io.agroal.api.AgroalDataSource;
import io.quarkus.runtime.Startup;
import io.tpmkms.audit.AuditConfig;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.audit.error.AuditErrors;
import io.tpmkms.audit.error.AuditReason;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import java.security.MessageDigest;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jboss.logging.Logger;

/**
 * The single writer of the chain. Append requests queue here; one thread takes
 * as many as fit in one batch ({@code tpmkms.audit.writer.max-batch-events}),
 * and appends them all in ONE transaction (group commit), then completes every
 * request — only after COMMIT returned, so an acknowledged event is durable.
 *
 * <p>Per batch, in one transaction: take the writer lock (a transaction-level
 * PostgreSQL advisory lock, so even two service processes on one database
 * append one after the other), read the head (sequence, hash) from the
 * database, assign consecutive sequences to the events, chain them
 * ({@link Canonical#recordHash}), store them with one binary COPY
 * ({@link RecordCopy}) and check that it stored exactly that many rows, commit.
 *
 * <p>Idempotency: an event id already stored answers with its stored sequence
 * and is not added again; a repeated id within the batch gets the sequence of
 * its first occurrence. Ids are not looked up first: a batch is written on the
 * assumption that its ids are new (they are, except when a forwarder resends
 * after a lost answer), and the unique index on {@code event_id} refuses the
 * COPY if one is not — then the transaction rolls back and the batch is
 * written again, this time looking its ids up. Looking up 1,000 ids per batch
 * that are almost never there cost the database a tenth of its time per record.
 *
 * <p>Failure: the transaction rolls back, nothing of the batch is stored, and
 * every request of the batch fails (UNAVAILABLE when the database is down);
 * callers retry with the same event ids. A failed COMMIT whose outcome is
 * unknown is safe for the same reason: a retry finds the ids that did commit.
 *
 * <p>Threading: {@link #append} is safe from any thread and never blocks; the
 * futures complete on the writer thread.
 */
@Startup
@ApplicationScoped
public class AuditWriter {
  private static final Logger LOG = Logger.getLogger(AuditWriter.class);
  /** pg_advisory_xact_lock key of the writer: "tpmkms" "au". */
  public static final long WRITER_LOCK = 0x74706d6b6d730001L;
  /** SQLSTATE of a unique constraint violation. */
  private static final String UNIQUE_VIOLATION = "23505";

  static final String COLUMNS = "sequence, event_id, event_seconds, event_nanos, service, principal, client,"
      + " operation, key_name, key_version, decision, decision_reason, outcome, outcome_reason, request_id,"
      + " request_digest, append_time, previous_hash, hash, record_version, details, delivered_by";

  /** One AppendEvents call waiting for the writer. */
  private record Append(List<Event> events, CompletableFuture<long[]> result) {}

  private final AgroalDataSource db;
  private final int maxBatch;
  private final int capacity;
  private final LinkedBlockingQueue<Append> queue = new LinkedBlockingQueue<>();
  private final AtomicInteger queuedEvents = new AtomicInteger();
  private final Thread thread;
  private volatile boolean running = true;
  private volatile long committedSequence;

  public AuditWriter(AgroalDataSource db, AuditConfig config) {
    this.db = db;
    this.maxBatch = config.audit().writer().maxBatchEvents();
    this.capacity = config.audit().writer().queueCapacityEvents();
    try {
      this.committedSequence = readHead().sequence();
    } catch (SQLException e) {
      throw new IllegalStateException("cannot read the audit chain head", e);
    }
    this.thread = new Thread(this::run, "audit-writer");
    thread.setDaemon(true);
    thread.start();
    LOG.infof("audit writer ready, chain head at sequence %d", committedSequence);
  }

  /**
   * Queues events for appending; the future completes with one sequence per
   * event, in order, once they are committed — or fails with an
   * {@link ServiceException}.
   */
  public CompletableFuture<long[]> append(List<Event> events) {
    CompletableFuture<long[]> f = new CompletableFuture<>();
    if (events.isEmpty()) {
      f.complete(new long[0]);
      return f;
    }
    if (!running) {
      f.completeExceptionally(new ServiceException(ErrorCode.UNAVAILABLE, AuditReason.OVERLOADED,
          "the audit service is shutting down; retry"));
      return f;
    }
    if (queuedEvents.addAndGet(events.size()) > capacity) {
      queuedEvents.addAndGet(-events.size());
      f.completeExceptionally(new ServiceException(ErrorCode.UNAVAILABLE, AuditReason.OVERLOADED,
          "the audit writer is overloaded; retry"));
      return f;
    }
    queue.add(new Append(events, f));
    return f;
  }

  /** Events accepted and not yet committed to the chain. */
  public int queuedEvents() { return queuedEvents.get(); }

  /** The last sequence this process committed (or found at start). */
  public long committedSequence() { return committedSequence; }

  private void run() {
    List<Append> batch = new ArrayList<>();
    Canonical.Encoder encoder = new Canonical.Encoder();
    MessageDigest md = Canonical.sha256();
    RecordCopy copy = new RecordCopy();
    while (running) {
      try {
        Append first = queue.poll(200, TimeUnit.MILLISECONDS);
        if (first == null) continue;
        batch.add(first);
        int n = first.events().size();
        for (Append next; (next = queue.peek()) != null && n + next.events().size() <= maxBatch; ) {
          batch.add(queue.poll());
          n += next.events().size();
        }
        queuedEvents.addAndGet(-n);
        if (!write(batch, n, encoder, md, copy, false)) write(batch, n, encoder, md, copy, true);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      } catch (Throwable t) {
        LOG.error("audit writer loop failed", t);
        for (Append a : batch) a.result().completeExceptionally(t);
      } finally {
        batch.clear();
      }
    }
    for (Append a; (a = queue.poll()) != null; ) {
      a.result().completeExceptionally(new ServiceException(ErrorCode.UNAVAILABLE, AuditReason.OVERLOADED,
          "the audit service is shutting down; retry"));
    }
  }

  /**
   * Writes the batch in one transaction and completes its requests. Without
   * {@code lookUp} the batch's ids are taken to be new; if one is already
   * stored, the transaction rolls back, nothing is completed and this returns
   * false (write it again with {@code lookUp}). Otherwise returns true.
   */
  private boolean write(List<Append> batch, int eventCount, Canonical.Encoder encoder, MessageDigest md,
      RecordCopy copy, boolean lookUp) {
    List<long[]> results = new ArrayList<>(batch.size());
    long newHead;
    try (Connection c = db.getConnection()) {
      c.setAutoCommit(false);
      try {
        try (PreparedStatement ps = c.prepareStatement("SELECT pg_advisory_xact_lock(?)")) {
          ps.setLong(1, WRITER_LOCK);
          ps.execute();
        }
        ChainHead head = readHead(c);
        Map<String, Long> known = lookUp ? existing(c, batch, eventCount) : new HashMap<>(eventCount * 2);
        long seq = head.sequence();
        byte[] prev = head.hash();
        Instant appendTime = Instant.now().truncatedTo(ChronoUnit.MICROS);
        int inserted = 0;
        for (Append a : batch) {
          long[] seqs = new long[a.events().size()];
          for (int i = 0; i < seqs.length; i++) {
            Event e = a.events().get(i);
            Long existing = known.get(e.eventId());
            if (existing != null) {
              seqs[i] = existing;
              continue;
            }
            seq++;
            byte[] hash = Canonical.recordHash(md, encoder, prev, seq, e);
            if (inserted == 0) copy.begin(c);
            copy.add(seq, e, appendTime, prev, hash);
            inserted++;
            known.put(e.eventId(), seq);
            seqs[i] = seq;
            prev = hash;
          }
          results.add(seqs);
        }
        if (inserted > 0) {
          long stored = copy.end();
          if (stored != inserted) {
            throw new IllegalStateException("COPY stored " + stored + " audit records, expected " + inserted);
          }
        }
        c.commit();
        newHead = seq;
      } catch (SQLException | RuntimeException e) {
        copy.abort();
        try {
          c.rollback();
        } catch (SQLException ignored) {
          // the connection is gone: the transaction is too
        }
        throw e;
      }
    } catch (SQLException | RuntimeException e) {
      if (!lookUp && e instanceof SQLException s && UNIQUE_VIOLATION.equals(s.getSQLState())) {
        return false; // an id of the batch is already stored: write it again, looking the ids up
      }
      ServiceException failure = e instanceof SQLException s && io.tpmkms.platform.error.GrpcErrors.databaseDown(s)
          ? AuditErrors.databaseUnavailable(e)
          : AuditErrors.GRPC.classify(e);
      if (failure.code() == ErrorCode.INTERNAL) LOG.error("append batch failed", e);
      for (Append a : batch) a.result().completeExceptionally(failure);
      return true;
    }
    committedSequence = newHead;
    for (int i = 0; i < batch.size(); i++) batch.get(i).result().complete(results.get(i));
    return true;
  }

  /**
   * Stored sequences of the batch's event ids that are already in the chain.
   * The ids are sent as they are: validation made them canonical lowercase
   * UUID text, the very text a parsed {@code java.util.UUID} would print, so
   * parsing and printing each one again would only cost time.
   */
  private static Map<String, Long> existing(Connection c, List<Append> batch, int eventCount) throws SQLException {
    String[] ids = new String[eventCount];
    int i = 0;
    for (Append a : batch) {
      for (Event e : a.events()) ids[i++] = e.eventId();
    }
    Map<String, Long> known = new HashMap<>(eventCount * 2);
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT event_id::text, sequence FROM audit_record WHERE event_id = ANY (?)")) {
      // never a server-side prepared statement: a generic plan made while the table was small
      // (a sequential scan) would stay cached on the pooled connection as the table grows
      ps.unwrap(org.postgresql.PGStatement.class).setPrepareThreshold(0);
      Array array = c.createArrayOf("uuid", ids);
      ps.setArray(1, array);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) known.put(rs.getString(1), rs.getLong(2));
      }
    }
    return known;
  }

  /** The head as stored now. */
  public ChainHead readHead() throws SQLException {
    try (Connection c = db.getConnection()) {
      return readHead(c);
    }
  }

  static ChainHead readHead(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT sequence, hash FROM audit_record ORDER BY sequence DESC LIMIT 1");
        ResultSet rs = ps.executeQuery()) {
      return rs.next() ? new ChainHead(rs.getLong(1), rs.getBytes(2)) : ChainHead.empty();
    }
  }

  @PreDestroy
  void stop() {
    running = false; // the loop finishes the batch in hand, then fails what is still queued
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
