package io.tpmkms.key.lifecycle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import com.google.protobuf.Timestamp;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.tpmkms.proto.key.v1.*;
// the API's types, not this package's namesakes
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyVersionState;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two key-service processes (the packaged application) on one PostgreSQL,
 * both polling for due work five times a second: each due rotation and each
 * due destruction happens exactly once, and both replicas serve every key.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class KeyServiceReplicasIT {
  private static final int KEYS = 12;
  private static final long PERIOD_SECONDS = 3;

  @TempDir static Path dir;
  static EmbeddedPostgres pg;
  static final List<Process> replicas = new ArrayList<>();
  static final List<ManagedChannel> channels = new ArrayList<>();
  static final List<Path> logs = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    pg = EmbeddedPostgres.builder().start();
    int[] ports = io.tpmkms.devtools.ServiceProcess.freePorts(4);
    // the replicas serve mutual TLS, as in a cluster: one development CA, a certificate each
    Path tls = dir.resolve("tls");
    Path ca = io.tpmkms.tls.DevPki.ensureDevelopmentSet(tls, List.of("replica-0", "replica-1", "client"));
    var client = io.tpmkms.tls.ClientTls.verifiedBy(ca).withClientCertificate(tls.resolve("client.crt"),
        tls.resolve("client.key"));
    for (int i = 0; i < 2; i++) {
      int grpc = ports[2 * i];
      Path log = dir.resolve("replica-" + i + ".log");
      ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-jar", Path.of("target", "quarkus-app", "quarkus-run.jar").toAbsolutePath().toString())
          .redirectErrorStream(true).redirectOutput(log.toFile());
      Map<String, String> env = pb.environment();
      env.put("QUARKUS_DATASOURCE_JDBC_URL", pg.getJdbcUrl("postgres", "postgres"));
      env.put("QUARKUS_DATASOURCE_USERNAME", "postgres");
      env.put("QUARKUS_DATASOURCE_PASSWORD", "postgres");
      env.put("TPMKMS_DATA_DIR", dir.resolve("shared").toString()); // one software root for the cluster
      env.put("TPMKMS_AUDIT_JOURNAL_DIR", dir.resolve("journal-" + i).toString()); // but a journal each
      env.put("TPMKMS_AUTH_MODE", "none"); // scheduling only; authorization has its own tests
      env.put("TPMKMS_GRPC_PORT", Integer.toString(grpc));
      env.put("TPMKMS_HTTP_PORT", Integer.toString(ports[2 * i + 1]));
      env.put("TPMKMS_ROTATION_MIN_PERIOD", "1S");
      env.put("TPMKMS_ROTATION_CHECK_INTERVAL", "0.2s");
      env.put("TPMKMS_DESTRUCTION_MIN_DELAY", "0S");
      env.put("TPMKMS_DESTRUCTION_CHECK_INTERVAL", "0.2s");
      env.put("TPMKMS_TLS_SERVER_CERT_FILE", tls.resolve("replica-" + i + ".crt").toString());
      env.put("TPMKMS_TLS_SERVER_KEY_FILE", tls.resolve("replica-" + i + ".key").toString());
      env.put("TPMKMS_TLS_SERVER_CLIENT_CA_FILE", ca.toString());
      env.put("TPMKMS_TLS_SERVER_CLIENT_AUTH", "required");
      replicas.add(pb.start());
      logs.add(log);
      channels.add(io.grpc.Grpc.newChannelBuilderForAddress("localhost", grpc, client.credentials(null)).build());
      if (i == 0) awaitStarted(log); // the first one creates the seed and runs the migrations
    }
    awaitStarted(logs.get(1));
  }

  @AfterAll
  static void stop() throws Exception {
    channels.forEach(ManagedChannel::shutdownNow);
    for (Process p : replicas) {
      p.destroy();
      if (!p.waitFor(20, TimeUnit.SECONDS)) p.destroyForcibly();
    }
    if (pg != null) pg.close();
  }

  @Test
  @Order(2)
  void dueRotationsAndDestructions_happenExactlyOnce_acrossTwoReplicas() throws Exception {
    KeyServiceGrpc.KeyServiceBlockingStub a = stub(0);
    KeyServiceGrpc.KeyServiceBlockingStub b = stub(1);
    Instant first = Instant.now().plusSeconds(2);
    for (int i = 0; i < KEYS; i++) {
      a.createKey(CreateKeyRequest.newBuilder().setNamespace("cluster").setName("k" + i)
          .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setRotationPeriod(Duration.newBuilder().setSeconds(PERIOD_SECONDS))
          .setNextRotationTime(Timestamp.newBuilder().setSeconds(first.getEpochSecond())).build());
    }
    // versions to destroy: one per key, made by rotating by hand then scheduling version 1
    for (int i = 0; i < KEYS; i++) {
      b.rotateKey(RotateKeyRequest.newBuilder().setKey("cluster/k" + i).build());
      a.scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest.newBuilder().setKey("cluster/k" + i)
          .setVersion(1).setDelay(Duration.newBuilder().setSeconds(1)).build());
    }

    // let two due times pass (first, first + 3 s) with both replicas racing for each, and wait until every
    // key shows both rotations and its destruction (a loaded machine may run the passes late)
    Thread.sleep(Math.max(0, first.plusSeconds(PERIOD_SECONDS).toEpochMilli() - System.currentTimeMillis()) + 500);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      try (var c = pg.getPostgresDatabase().getConnection(); var st = c.createStatement();
          var rs = st.executeQuery("SELECT count(*) FILTER (WHERE k.last_version >= 4),"
              + " (SELECT count(*) FROM kms_key_version v JOIN kms_key k2 ON k2.id = v.key_id"
              + "    WHERE k2.namespace = 'cluster' AND k2.name LIKE 'k%' AND v.number = 1 AND v.state = 'DESTROYED')"
              + " FROM kms_key k WHERE k.namespace = 'cluster' AND k.name LIKE 'k%'")) {
        assertTrue(rs.next());
        if (rs.getInt(1) == KEYS && rs.getInt(2) == KEYS) break;
      }
      Thread.sleep(200);
    }
    Thread.sleep(1_500); // a duplicate rotation or destruction for the same due time would show by now
    // stop both so nothing moves while we count
    replicas.forEach(Process::destroy);
    for (Process p : replicas) assertTrue(p.waitFor(30, TimeUnit.SECONDS));

    // Exactly once: the j-th scheduled rotation (version 2 + j) cannot have happened before its due
    // time first + (j-1)P (it may be late on a loaded machine). A second rotation for the same due
    // time would come right after the first, before the next due time, and fail this.
    int rotationsSeen = 0;
    try (var c = pg.getPostgresDatabase().getConnection(); var st = c.createStatement()) {
      for (int i = 0; i < KEYS; i++) {
        var rs = st.executeQuery("SELECT k.last_version, k.primary_version, EXTRACT(EPOCH FROM k.next_rotation_time),"
            + " (SELECT count(*) FROM kms_key_version v WHERE v.key_id = k.id),"
            + " (SELECT count(*) FROM kms_key_version v WHERE v.key_id = k.id AND v.state = 'DESTROYED'"
            + "    AND v.key_blob IS NULL)"
            + " FROM kms_key k WHERE k.namespace = 'cluster' AND k.name = 'k" + i + "'");
        assertTrue(rs.next());
        int last = rs.getInt(1);
        long next = (long) rs.getDouble(3);
        int scheduledRotations = last - 2; // version 1 at creation, version 2 by hand
        assertEquals(rs.getInt(4), last, "no version numbers skipped or doubled");
        assertEquals(last, rs.getInt(2), "the newest version is primary");
        assertTrue(scheduledRotations >= 2, "key k" + i + ": at least two due times passed, got " + scheduledRotations);
        assertEquals(1, rs.getInt(5), "version 1 destroyed exactly once, blob gone");
        var times = st.executeQuery("SELECT v.number, EXTRACT(EPOCH FROM v.create_time) FROM kms_key_version v"
            + " JOIN kms_key k ON k.id = v.key_id WHERE k.namespace = 'cluster' AND k.name = 'k" + i + "'"
            + " AND v.number > 2 ORDER BY v.number");
        boolean allOnTime = true;
        while (times.next()) {
          int j = times.getInt(1) - 2;
          double created = times.getDouble(2);
          double windowStart = first.getEpochSecond() + PERIOD_SECONDS * (j - 1);
          assertTrue(created >= windowStart,
              "key k" + i + " rotation " + j + " at " + created + " came before its due time " + windowStart);
          allOnTime &= created < windowStart + PERIOD_SECONDS;
        }
        // a rotation within its period moves the schedule by exactly one period; one later than a whole period
        // after its due time (a stalled machine) restarts the schedule from its own time
        if (allOnTime) {
          assertEquals(first.getEpochSecond() + PERIOD_SECONDS * scheduledRotations, next,
              "the schedule moved once per rotation");
        } else {
          assertTrue(next >= first.getEpochSecond() + PERIOD_SECONDS * scheduledRotations,
              "the schedule moved at least once per rotation");
        }
        rotationsSeen += scheduledRotations;
      }
    }

    // both replicas did some of the work: the race was real
    // the success line names the key ("... of key cluster/k3 to version 4"); a pass that fails while
    // the replica shuts down logs "... of key id 7 failed" and must not count as a rotation
    int byA = count(logs.get(0), "scheduled rotation of key cluster/");
    int byB = count(logs.get(1), "scheduled rotation of key cluster/");
    assertEquals(rotationsSeen, byA + byB, "each rotation logged by exactly one replica");
    assertTrue(byA > 0 && byB > 0, "both replicas rotated keys (a: " + byA + ", b: " + byB + ")");
  }

  @Test
  @Order(1)
  void aKeyCreatedOnOneReplica_isUsableOnTheOther() {
    ByteString ct = stub(0).encrypt(EncryptRequest.newBuilder().setKey(createdKey())
        .setPlaintext(ByteString.copyFromUtf8("shared")).build()).getCiphertext();
    assertEquals("shared", stub(1).decrypt(DecryptRequest.newBuilder().setKey(createdKey()).setCiphertext(ct).build())
        .getPlaintext().toStringUtf8());
  }

  private static String created;

  private static synchronized String createdKey() {
    if (created == null) {
      stub(0).createKey(CreateKeyRequest.newBuilder().setNamespace("cluster").setName("shared")
          .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
      created = "cluster/shared";
    }
    return created;
  }

  private static KeyServiceGrpc.KeyServiceBlockingStub stub(int i) {
    return KeyServiceGrpc.newBlockingStub(channels.get(i)).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private static int count(Path log, String what) throws IOException {
    return (int) Files.readAllLines(log, StandardCharsets.UTF_8).stream().filter(l -> l.contains(what)).count();
  }

  private static void awaitStarted(Path log) throws Exception {
    long deadline = System.nanoTime() + 90_000_000_000L;
    while (System.nanoTime() < deadline) {
      if (Files.exists(log)) {
        String s = Files.readString(log, StandardCharsets.UTF_8);
        if (s.contains("Installed features")) return;
        if (s.contains("Failed to start")) throw new AssertionError("replica failed to start:\n" + s);
      }
      Thread.sleep(200);
    }
    throw new AssertionError("replica did not start in time:\n" + Files.readString(log));
  }

}
