package io.tpmkms.runtime.audit;

import io.agroal.api.AgroalDataSource;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.tpmkms.proto.audit.v1.AppendEventsRequest;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Ships the outbox to the audit service: takes the oldest rows with
 * {@code FOR UPDATE SKIP LOCKED} (so replicas sharing the database never send
 * the same row at once), sends them in one AppendEvents call and deletes them
 * only once the audit service has acknowledged them durable. Anything not
 * acknowledged stays and is sent again; the audit service drops duplicates by
 * event id, so each event is in the chain exactly once.
 */
@ApplicationScoped
public class AuditForwarder {
  private static final Logger LOG = Logger.getLogger(AuditForwarder.class);
  private static final int BATCH = 500;

  private final AgroalDataSource db;
  private final AuditConfig config;
  private volatile boolean running;
  private Thread thread;
  private ManagedChannel channel;

  private final io.tpmkms.runtime.auth.ServiceCredentials credentials;

  public AuditForwarder(AgroalDataSource db, AuditConfig config, io.tpmkms.runtime.auth.ServiceCredentials credentials) {
    this.db = db;
    this.config = config;
    this.credentials = credentials;
  }

  void start(@Observes StartupEvent e) {
    var target = config.forwardTo();
    if (target.isEmpty()) {
      LOG.warn("no audit service configured (tpmkms.audit.forward-to): audit events stay in the outbox table");
      return;
    }
    channel = ManagedChannelBuilder.forTarget(target.get()).usePlaintext().build();
    running = true;
    thread = new Thread(this::loop, "audit-forwarder");
    thread.setDaemon(true);
    thread.start();
    LOG.infof("forwarding audit events to %s", target.get());
  }

  private void loop() {
    long backoff = 100;
    boolean failing = false;
    while (running) {
      try {
        int sent = forwardBatch();
        if (failing) LOG.info("audit service reachable again; forwarding resumed");
        failing = false;
        backoff = 100;
        if (sent < BATCH) sleep(sent == 0 ? 100 : 10);
      } catch (Exception e) {
        if (!failing) LOG.warnf("cannot forward audit events (%s); retrying, nothing is lost", e.getMessage());
        failing = true;
        sleep(backoff);
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  }

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
