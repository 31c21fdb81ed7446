package io.tpmkms.platform.audit;

import com.google.protobuf.CodedOutputStream;
import io.agroal.api.AgroalDataSource;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.protobuf.ProtoUtils;
import io.grpc.stub.ClientCalls;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.tpmkms.proto.audit.v1.AppendEventsRequest;
import io.tpmkms.proto.audit.v1.AppendEventsResponse;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Ships this process's audit events to the audit service, from both places
 * they are made durable (ADR 0013, ADR 0016):
 * <ul>
 *   <li>the outbox table (state changes): takes the oldest rows with
 *       {@code FOR UPDATE SKIP LOCKED} (so replicas sharing the database never
 *       send the same row at once), sends them in one AppendEvents call and
 *       deletes them only once the audit service has acknowledged them durable;
 *   <li>the local {@link AuditJournal} (everything else): sends the records
 *       after its cursor in one AppendEvents call and moves the cursor past
 *       them once acknowledged.
 * </ul>
 * Anything not acknowledged stays and is sent again; the audit service drops
 * duplicates by event id, so each event is in the chain exactly once.
 */
@ApplicationScoped
public class AuditForwarder {
  private static final Logger LOG = Logger.getLogger(AuditForwarder.class);
  private static final int BATCH = 500;
  /** The audit service takes at most 1000 events per AppendEvents. */
  private static final int JOURNAL_BATCH = 1000;
  private static final int JOURNAL_BATCH_BYTES = 1 << 20;
  /** How long the forwarder waits for more events once it has sent everything there was. */
  private static final long LINGER_MS = 50;
  /** How often an empty outbox table is looked at again (state changes are rare). */
  private static final long OUTBOX_IDLE_NANOS = 100_000_000L;

  private final AgroalDataSource db;
  private final AuditConfig config;
  private final AuditLog log;
  private volatile boolean running;
  private Thread thread;
  private ManagedChannel channel;

  private final io.tpmkms.platform.auth.ServiceCredentials credentials;

  private final io.tpmkms.platform.tls.ServiceChannels channels;

  // metrics (issue 18): what is forwarded, what waits, when the audit service last took a batch
  private final io.micrometer.core.instrument.Counter fromOutboxSent;
  private final io.micrometer.core.instrument.Counter fromJournalSent;
  private final io.micrometer.core.instrument.Counter failures;
  private volatile long lastSuccessMillis;
  private final io.tpmkms.platform.metrics.Meters meters;

  public AuditForwarder(AgroalDataSource db, AuditConfig config, AuditLog log,
      io.tpmkms.platform.auth.ServiceCredentials credentials, io.tpmkms.platform.tls.ServiceChannels channels,
      io.micrometer.core.instrument.MeterRegistry registry) {
    this.channels = channels;
    this.db = db;
    this.log = log;
    this.config = config;
    this.credentials = credentials;
    this.meters = new io.tpmkms.platform.metrics.Meters(registry);
    this.fromOutboxSent = meters.add(io.micrometer.core.instrument.Counter.builder("tpmkms.audit.forwarded.events")
        .tag("source", "outbox").description("audit events the audit service acknowledged").register(registry));
    this.fromJournalSent = meters.add(io.micrometer.core.instrument.Counter.builder("tpmkms.audit.forwarded.events")
        .tag("source", "journal").description("audit events the audit service acknowledged").register(registry));
    this.failures = meters.add(io.micrometer.core.instrument.Counter.builder("tpmkms.audit.forward.failures")
        .description("failed attempts to forward audit events (retried; nothing is lost)").register(registry));
    meters.add(io.micrometer.core.instrument.Gauge.builder("tpmkms.audit.forward.last.success.timestamp", this,
            f -> f.lastSuccessMillis == 0 ? Double.NaN : f.lastSuccessMillis / 1000.0)
        .baseUnit("seconds").description("when the audit service last acknowledged a batch (Unix time)")
        .register(registry));
    meters.add(io.micrometer.core.instrument.Gauge.builder("tpmkms.audit.journal.backlog", log,
            l -> l.journal().map(j -> (double) (j.durableEnd() - j.acknowledged())).orElse(0.0))
        .baseUnit("bytes").description("journal bytes durable here, not yet acknowledged by the audit service")
        .register(registry));
    meters.add(io.micrometer.core.instrument.Gauge.builder("tpmkms.audit.outbox.backlog", this, AuditForwarder::outboxRows)
        .description("state-change events in the outbox table, not yet acknowledged by the audit service")
        .register(registry));
    meters.add(io.micrometer.core.instrument.FunctionCounter.builder("tpmkms.audit.journal.syncs", log,
            l -> l.journal().map(j -> (double) j.syncs()).orElse(0.0))
        .description("journal fsyncs (group commits)").register(registry));
  }

  @jakarta.annotation.PreDestroy
  void unregister() {
    meters.removeAll();
  }

  /** Rows waiting in the outbox table, counted when scraped; NaN when the database cannot be asked. */
  private double outboxRows() {
    try (Connection c = db.getConnection();
        PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM audit_outbox");
        ResultSet rs = ps.executeQuery()) {
      return rs.next() ? rs.getLong(1) : Double.NaN;
    } catch (Exception e) {
      return Double.NaN;
    }
  }

  void start(@Observes StartupEvent e) {
    var target = config.forwardTo();
    if (target.isEmpty()) {
      LOG.warn("no audit service configured (tpmkms.audit.forward-to): audit events stay in the outbox table"
          + " and the journal");
      return;
    }
    channel = channels.open(target.get(), "audit service");
    running = true;
    thread = new Thread(this::loop, "audit-forwarder");
    thread.setDaemon(true);
    thread.start();
    LOG.infof("forwarding audit events to %s", target.get());
  }

  private void loop() {
    long backoff = 100;
    boolean failing = false;
    long outboxDue = 0;
    while (running) {
      try {
        int fromOutbox = 0;
        if (System.nanoTime() - outboxDue >= 0) {
          fromOutbox = forwardBatch();
          if (fromOutbox == 0) outboxDue = System.nanoTime() + OUTBOX_IDLE_NANOS;
        }
        int fromJournal = forwardJournal();
        if (fromOutbox > 0) fromOutboxSent.increment(fromOutbox);
        if (fromJournal > 0) fromJournalSent.increment(fromJournal);
        if (fromOutbox > 0 || fromJournal > 0) lastSuccessMillis = System.currentTimeMillis();
        if (failing) LOG.info("audit service reachable again; forwarding resumed");
        failing = false;
        backoff = 100;
        if (fromOutbox < BATCH && fromJournal < JOURNAL_BATCH) {
          // caught up: let the next batch fill up (fewer, larger appends cost the audit service and this
          // process less per event; events reach the chain within about this delay)
          sleep(LINGER_MS);
        }
      } catch (Exception e) {
        failures.increment();
        if (!failing) LOG.warnf("cannot forward audit events (%s); retrying, nothing is lost", e.getMessage());
        failing = true;
        sleep(backoff);
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  }

  /** Sends the journal's oldest unacknowledged records; returns how many were acknowledged. */
  int forwardJournal() throws Exception {
    AuditJournal journal = log.journal().orElse(null);
    if (journal == null) return 0;
    AuditJournal.Batch batch = journal.read(journal.acknowledged(), JOURNAL_BATCH, JOURNAL_BATCH_BYTES);
    if (batch.payloads().isEmpty()) return 0;
    ClientCalls.blockingUnaryCall(channel, APPEND_RAW, CallOptions.DEFAULT
        .withCallCredentials(credentials.callCredentials()).withDeadlineAfter(10, TimeUnit.SECONDS),
        appendRequest(batch.payloads()));
    journal.acknowledge(batch.next());
    return batch.payloads().size();
  }

  /**
   * The wire form of an AppendEventsRequest ({@code repeated AuditEvent events = 1}) made of events
   * already serialized: each is field 1, length-delimited — so the journal's records are sent as they
   * are, without parsing and serializing them again.
   */
  static byte[] appendRequest(List<byte[]> events) {
    int size = 0;
    for (byte[] e : events) size += 1 + CodedOutputStream.computeUInt32SizeNoTag(e.length) + e.length;
    byte[] out = new byte[size];
    CodedOutputStream cos = CodedOutputStream.newInstance(out);
    try {
      for (byte[] e : events) cos.writeByteArray(AppendEventsRequest.EVENTS_FIELD_NUMBER, e);
      cos.checkNoSpaceLeft();
    } catch (java.io.IOException e) {
      throw new IllegalStateException(e);
    }
    return out;
  }

  /** AppendEvents with the request as ready-made bytes (see {@link #appendRequest}). */
  private static final MethodDescriptor<byte[], AppendEventsResponse> APPEND_RAW =
      AuditServiceGrpc.getAppendEventsMethod().toBuilder(new MethodDescriptor.Marshaller<byte[]>() {
        @Override
        public InputStream stream(byte[] value) {
          return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
          throw new UnsupportedOperationException("requests are only sent");
        }
      }, ProtoUtils.marshaller(AppendEventsResponse.getDefaultInstance())).build();

  /** Sends one batch; returns how many events were acknowledged and removed. */
  int forwardBatch() throws Exception {
    try (Connection c = db.getConnection()) {
      c.setAutoCommit(false);
      try {
        List<Long> ids = new ArrayList<>();
        AppendEventsRequest.Builder req = AppendEventsRequest.newBuilder();
        try (PreparedStatement ps = c.prepareStatement(
            "SELECT id, payload FROM audit_outbox ORDER BY id LIMIT " + BATCH + " FOR UPDATE SKIP LOCKED");
            ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            ids.add(rs.getLong(1));
            req.addEvents(AuditEvent.parseFrom(rs.getBytes(2)));
          }
        }
        if (ids.isEmpty()) {
          c.commit();
          return 0;
        }
        AuditServiceGrpc.newBlockingStub(channel).withCallCredentials(credentials.callCredentials())
            .withDeadlineAfter(10, TimeUnit.SECONDS).appendEvents(req.build());
        try (PreparedStatement del = c.prepareStatement("DELETE FROM audit_outbox WHERE id = ANY (?)")) {
          del.setArray(1, c.createArrayOf("bigint", ids.toArray()));
          del.executeUpdate();
        }
        c.commit();
        return ids.size();
      } catch (Exception e) {
        c.rollback();
        throw e;
      }
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  void stop(@Observes ShutdownEvent e) throws InterruptedException {
    running = false;
    if (thread != null) thread.join(5_000);
    if (channel != null) channel.shutdownNow();
  }
}
