package io.tpmkms.audit;

import static io.tpmkms.audit.testing.AuditEvents.event;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.testing.GrpcClient;
import io.tpmkms.proto.audit.v1.AppendEventsRequest;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.VerifyChainRequest;
import io.tpmkms.proto.audit.v1.VerifyChainResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The packaged audit-service as a process on its zero-setup embedded
 * PostgreSQL: several producers append thousands of events, the process is
 * killed with SIGKILL mid-load, restarted on the same data directory, and the
 * producers re-send what was not acknowledged. Then every acknowledged event
 * has exactly one record at its acknowledged sequence, every event sent is
 * stored once, the sequences have no gaps, and the chain verifies.
 */
class AuditServiceCrashIT {
  private static final org.jboss.logging.Logger LOG = org.jboss.logging.Logger.getLogger(AuditServiceCrashIT.class);
  private static final int PRODUCERS = 4;
  private static final int BATCH = 50;

  @TempDir static Path dir;
  static Process service;
  static int grpcPort;
  static int httpPort;
  static int dbPort;

  @Test
  void killMidLoad_restart_resend_nothingLostNothingDoubled() throws Exception {
    int[] ports = io.tpmkms.devtools.ServiceProcess.freePorts(3); // distinct, held open until all chosen
    grpcPort = ports[0];
    httpPort = ports[1];
    dbPort = ports[2];
    Path log1 = dir.resolve("run-1.log");
    service = start(log1);

    Map<String, Long> acked = new ConcurrentHashMap<>();
    List<AppendEventsRequest> unacked = Collections.synchronizedList(new ArrayList<>());
    List<AppendEventsRequest> ackedBatches = Collections.synchronizedList(new ArrayList<>());
    AtomicBoolean stop = new AtomicBoolean();
    List<Thread> producers = new ArrayList<>();
    try (GrpcClient client = new GrpcClient(grpcPort)) {
      for (int p = 0; p < PRODUCERS; p++) {
        int id = p;
        Thread t = new Thread(() -> {
          while (!stop.get()) {
            AppendEventsRequest.Builder b = AppendEventsRequest.newBuilder();
            for (int i = 0; i < BATCH; i++) b.addEvents(event("producer-" + id, "ns/k" + i, "op/Encrypt"));
            AppendEventsRequest r = b.build();
            try {
              List<Long> seqs = client.audit().withDeadlineAfter(10, TimeUnit.SECONDS).appendEvents(r)
                  .getSequencesList();
              for (int i = 0; i < BATCH; i++) acked.put(r.getEvents(i).getEventId(), seqs.get(i));
              ackedBatches.add(r);
            } catch (RuntimeException e) {
              unacked.add(r); // outcome unknown: the producer keeps it and re-sends it later
              return;
            }
          }
        }, "producer-" + p);
        t.start();
        producers.add(t);
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (acked.size() < 4_000 && System.nanoTime() < deadline) Thread.sleep(5);
      service.destroyForcibly(); // SIGKILL, mid-load
      assertTrue(service.waitFor(30, TimeUnit.SECONDS));
      stop.set(true);
      for (Thread t : producers) t.join(30_000);
    }
    assertTrue(acked.size() >= 4_000, "acknowledged before the kill: " + acked.size());
    assertTrue(!unacked.isEmpty(), "some batches were in flight when the process died");

    service = start(dir.resolve("run-2.log"));
    try (GrpcClient client = new GrpcClient(grpcPort)) {
      for (AppendEventsRequest r : unacked) client.audit().appendEvents(r);
      // re-sending acknowledged events answers their original sequences and adds nothing
      for (AppendEventsRequest r : ackedBatches.subList(0, 5)) {
        List<Long> again = client.audit().appendEvents(r).getSequencesList();
        for (int i = 0; i < BATCH; i++) assertEquals(acked.get(r.getEvents(i).getEventId()), again.get(i));
      }

      int sent = acked.size() + unacked.size() * BATCH;
      LOG.infof("crash IT: %d events acknowledged before SIGKILL, %d batches of %d re-sent after restart",
          acked.size(), unacked.size(), BATCH);
      try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + dbPort + "/postgres",
          "postgres", "postgres"); Statement st = c.createStatement()) {
        ResultSet rs = st.executeQuery("SELECT count(*), min(sequence), max(sequence), count(DISTINCT event_id)"
            + " FROM audit_record");
        rs.next();
        assertEquals(sent, rs.getLong(1), "every event sent is stored exactly once");
        assertEquals(1, rs.getLong(2));
        assertEquals(rs.getLong(1), rs.getLong(3), "no gaps: max sequence = count");
        assertEquals(rs.getLong(1), rs.getLong(4));
        try (PreparedStatement ps = c.prepareStatement("SELECT event_id::text, sequence FROM audit_record")) {
          Map<String, Long> stored = new java.util.HashMap<>();
          ResultSet all = ps.executeQuery();
          while (all.next()) stored.put(all.getString(1), all.getLong(2));
          for (Map.Entry<String, Long> e : acked.entrySet()) {
            assertEquals(e.getValue(), stored.get(e.getKey()), "acknowledged event " + e.getKey());
          }
          for (AppendEventsRequest r : unacked) {
            for (AuditEvent e : r.getEventsList()) assertTrue(stored.containsKey(e.getEventId()));
          }
        }
      }
      VerifyChainResponse v = client.audit().verifyChain(VerifyChainRequest.getDefaultInstance());
      assertTrue(v.getValid(), v.getProblem());
      assertEquals(sent, v.getRecordsChecked());
      assertTrue(v.getCheckpointsChecked() > 0);
    }
    service.destroy(); // SIGTERM: Quarkus stops, then the embedded PostgreSQL
    assertTrue(service.waitFor(30, TimeUnit.SECONDS));
    String log2 = Files.readString(dir.resolve("run-2.log"), StandardCharsets.UTF_8);
    assertTrue(log2.contains("left running by an earlier run") || log2.contains("embedded PostgreSQL started"), log2);
  }

  @AfterAll
  static void cleanUp() throws Exception {
    if (service != null && service.isAlive()) {
      service.destroy();
      if (!service.waitFor(20, TimeUnit.SECONDS)) service.destroyForcibly();
    }
    // a PostgreSQL orphaned by a failed run
    Path pid = dir.resolve("data/audit-pg/postmaster.pid");
    if (Files.exists(pid)) {
      long p = Long.parseLong(Files.readAllLines(pid).get(0).trim());
      ProcessHandle.of(p).filter(h -> h.info().command().map(c -> c.endsWith("postgres")).orElse(false))
          .ifPresent(ProcessHandle::destroy);
    }
  }

  private static Process start(Path log) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-jar", Path.of("target", "quarkus-app", "quarkus-run.jar").toAbsolutePath().toString())
        .redirectErrorStream(true).redirectOutput(log.toFile());
    Map<String, String> env = pb.environment();
    env.remove("QUARKUS_DATASOURCE_JDBC_URL"); // the zero-setup embedded database
    // the crash behaviour of the chain; authentication has its own tests (system-tests AuditAuthorizationIT)
    env.put("TPMKMS_AUTH_MODE", "none");
    env.put("TPMKMS_DATA_DIR", dir.resolve("data").toString());
    env.put("TPMKMS_EMBEDDED_DB_PORT", Integer.toString(dbPort));
    env.put("TPMKMS_AUDIT_GRPC_PORT", Integer.toString(grpcPort));
    env.put("TPMKMS_AUDIT_HTTP_PORT", Integer.toString(httpPort));
    env.put("TPMKMS_AUDIT_CHECKPOINT_EVERY_RECORDS", "500");
    env.put("TPMKMS_AUDIT_CHECKPOINT_INTERVAL", "1S");
    Process p = pb.start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    while (System.nanoTime() < deadline) {
      String s = Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "";
      if (s.contains("Installed features")) return p;
      if (!p.isAlive() || s.contains("Failed to start")) throw new AssertionError("audit-service did not start:\n" + s);
      Thread.sleep(200);
    }
    throw new AssertionError("audit-service did not start in time:\n" + Files.readString(log));
  }

}
