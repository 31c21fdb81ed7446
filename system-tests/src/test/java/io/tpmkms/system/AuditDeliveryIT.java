package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.tpmkms.proto.audit.v1.AuditRecord;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import io.tpmkms.proto.audit.v1.QueryRecordsRequest;
import io.tpmkms.proto.audit.v1.QueryRecordsResponse;
import io.tpmkms.proto.audit.v1.VerifyChainRequest;
import io.tpmkms.proto.audit.v1.VerifyChainResponse;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.CreateImportJobRequest;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.GetImportJobRequest;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.key.v1.KeyVersion;
import io.tpmkms.proto.key.v1.MacSignRequest;
import io.tpmkms.devtools.ServiceProcess;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The key service and the audit service as real processes on their own
 * PostgreSQL databases. Under load, one of them is killed with SIGKILL and
 * started again: afterwards every operation that was acknowledged to its
 * client has exactly one record in the audit chain, and the chain verifies.
 */
class AuditDeliveryIT {
  private static final Metadata.Key<String> REQUEST_ID =
      Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);

  @TempDir static Path dir;
  static EmbeddedPostgres keyDb;
  static EmbeddedPostgres auditDb;
  static ServiceProcess keyService;
  static ServiceProcess auditService;
  static ManagedChannel keyChannel;
  static ManagedChannel auditChannel;
  static String keyMetrics;
  static String auditMetrics;

  @BeforeAll
  static void start() throws Exception {
    keyDb = EmbeddedPostgres.builder().start();
    auditDb = EmbeddedPostgres.builder().start();
    int[] ports = ServiceProcess.freePorts(4);
    int auditPort = ports[0];
    int keyPort = ports[1];
    Path root = Path.of("..").toAbsolutePath().normalize();
    auditService = ServiceProcess.start(root.resolve("audit-service/target/quarkus-app/quarkus-run.jar"), SystemTls.with(Map.of(
        "QUARKUS_DATASOURCE_JDBC_URL", auditDb.getJdbcUrl("postgres", "postgres"),
        "QUARKUS_DATASOURCE_USERNAME", "postgres", "QUARKUS_DATASOURCE_PASSWORD", "postgres",
        "TPMKMS_AUDIT_GRPC_PORT", Integer.toString(auditPort),
        "TPMKMS_AUDIT_HTTP_PORT", Integer.toString(ports[2]),
        "TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("audit")).toString(),
        // delivery only; who may append and read has AuditAuthorizationIT
        "TPMKMS_AUTH_MODE", "none"), "audit-service"),
        dir.resolve("audit.log"));
    keyService = ServiceProcess.start(root.resolve("key-service/target/quarkus-app/quarkus-run.jar"), SystemTls.with(Map.of(
        "QUARKUS_DATASOURCE_JDBC_URL", keyDb.getJdbcUrl("postgres", "postgres"),
        "QUARKUS_DATASOURCE_USERNAME", "postgres", "QUARKUS_DATASOURCE_PASSWORD", "postgres",
        "TPMKMS_GRPC_PORT", Integer.toString(keyPort),
        "TPMKMS_HTTP_PORT", Integer.toString(ports[3]),
        "TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("key")).toString(),
        // this test is about delivery; identity and authorization have AuthorizationIT
        "TPMKMS_AUTH_MODE", "none",
        "TPMKMS_AUDIT_FORWARD_TO", "127.0.0.1:" + auditPort,
        // JSON lines (issue 18): jsonLogs_carryTheCall reads them
        "TPMKMS_LOG_JSON", "true"), "key-service"),
        dir.resolve("key.log"));
    keyChannel = SystemTls.channel(keyPort);
    auditChannel = SystemTls.channel(auditPort);
    keyMetrics = "http://127.0.0.1:" + ports[3] + "/q/metrics";
    auditMetrics = "http://127.0.0.1:" + ports[2] + "/q/metrics";
    keys().createKey(CreateKeyRequest.newBuilder().setNamespace("sys").setName("load")
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
  }

  @AfterAll
  static void stop() throws Exception {
    if (keyChannel != null) keyChannel.shutdownNow();
    if (auditChannel != null) auditChannel.shutdownNow();
    if (keyService != null) keyService.close();
    if (auditService != null) auditService.close();
    if (keyDb != null) keyDb.close();
    if (auditDb != null) auditDb.close();
  }

  @Test
  void auditServiceKilledDuringLoad_nothingAcknowledgedIsLostOrDoubled() throws Exception {
    Set<String> acked = runLoad("a-", () -> {
      auditService.kill9();
      Thread.sleep(1_500);
      auditService.restart();
    });
    assertEveryAcknowledgedOnceInTheChain(acked);
  }

  @Test
  void keyServiceKilledDuringLoad_nothingAcknowledgedIsLostOrDoubled() throws Exception {
    Set<String> acked = runLoad("k-", () -> {
      keyService.kill9();
      Thread.sleep(500);
      keyService.restart();
    });
    assertEveryAcknowledgedOnceInTheChain(acked);
  }

  /**
   * Issue 18: the key service's audit meters show the lag while the audit service is down (journal
   * backlog, failed forwards) and its end once it is back (backlog 0, events forwarded, a fresh
   * last-success time); the audit service's chain and checkpoint meters move.
   */
  @Test
  void auditLagMetrics_riseWhileTheAuditServiceIsDown_andFallAfter() throws Exception {
    var journal = Map.of("source", "journal");
    io.tpmkms.testing.PrometheusScrape before = io.tpmkms.testing.PrometheusScrape.of(keyMetrics);
    auditService.kill9();
    long down = System.currentTimeMillis();
    for (int i = 0; i < 30; i++) {
      keys().encrypt(EncryptRequest.newBuilder().setKey("sys/load").setPlaintext(ByteString.copyFromUtf8("lag " + i))
          .build());
    }
    Thread.sleep(1_000);
    io.tpmkms.testing.PrometheusScrape during = io.tpmkms.testing.PrometheusScrape.of(keyMetrics);
    assertTrue(during.value("tpmkms_audit_journal_backlog_bytes", Map.of()) > 0, "a backlog while the audit service is down");
    assertTrue(during.value("tpmkms_audit_forward_failures_total", Map.of())
        > before.value("tpmkms_audit_forward_failures_total", Map.of()), "failed forwards counted");
    auditService.restart();
    io.tpmkms.testing.PrometheusScrape after = during;
    for (int i = 0; i < 120 && after.value("tpmkms_audit_journal_backlog_bytes", Map.of()) > 0; i++) {
      Thread.sleep(500);
      after = io.tpmkms.testing.PrometheusScrape.of(keyMetrics);
    }
    assertEquals(0.0, after.value("tpmkms_audit_journal_backlog_bytes", Map.of()), "the backlog drained");
    String fwd = "tpmkms_audit_forwarded_events_total";
    assertTrue(after.value(fwd, journal) - before.value(fwd, journal) >= 30, "the 30 events were forwarded");
    assertTrue(after.value("tpmkms_audit_forward_last_success_timestamp_seconds", Map.of()) * 1000 >= down,
        "the last success is after the outage");
    io.tpmkms.testing.PrometheusScrape audit = io.tpmkms.testing.PrometheusScrape.of(auditMetrics);
    assertTrue(audit.value("tpmkms_audit_chain_records", Map.of()) >= 31, "the chain holds the events");
    assertTrue(audit.families().contains("tpmkms_audit_checkpoint_last_timestamp_seconds"), audit.families().toString());
    assertTrue(audit.value("tpmkms_rpc_server_duration_seconds_count",
        Map.of("method", "tpmkms.audit.v1.AuditService/AppendEvents", "code", "OK")) >= 1, "appends counted");
    // the audit chain's metrics that deploy/observability uses exist (the rest: TpmKeyServiceTest)
    Set<String> missing = new java.util.TreeSet<>();
    for (String name : io.tpmkms.testing.ObservabilityFiles.metricNames()) {
      if (io.tpmkms.testing.ObservabilityFiles.auditServiceOnly(name) && !audit.exports(name)) {
        missing.add(name);
      }
    }
    assertTrue(missing.isEmpty(), "used in deploy/observability but not exported: " + missing);
  }

  /**
   * Issue 18: with TPMKMS_LOG_JSON=true every log line is one JSON object, and the lines a call logs
   * carry its rpc, request id and principal; a plaintext sent in the call appears in no line.
   */
  @Test
  void jsonLogs_carryTheCall_andNoPlaintext() throws Exception {
    String requestId = "json-log-" + System.nanoTime();
    String plaintext = "plaintext-never-logged-" + System.nanoTime();
    Metadata h = new Metadata();
    h.put(REQUEST_ID, requestId);
    keys().withInterceptors(MetadataUtils.newAttachHeadersInterceptor(h)).createKey(CreateKeyRequest.newBuilder()
        .setNamespace("sys").setName("logged-" + System.nanoTime()).setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
    keys().withInterceptors(MetadataUtils.newAttachHeadersInterceptor(h)).encrypt(EncryptRequest.newBuilder()
        .setKey("sys/load").setPlaintext(ByteString.copyFromUtf8(plaintext)).build());
    Thread.sleep(500);
    List<String> lines = Files.readAllLines(keyService.log());
    com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
    com.fasterxml.jackson.databind.JsonNode created = null;
    int parsed = 0;
    for (String line : lines) {
      if (!line.startsWith("{")) continue; // the launcher's own lines
      com.fasterxml.jackson.databind.JsonNode n = json.readTree(line);
      parsed++;
      assertTrue(n.has("message") && n.has("level") && n.has("timestamp"), line);
      if (n.path("message").asText().startsWith("created key sys/logged-")) created = n;
    }
    assertTrue(parsed > 10, "JSON lines: " + parsed);
    assertTrue(created != null, "the CreateKey line");
    assertEquals(requestId, created.path("mdc").path("requestId").asText(), created.toString());
    assertEquals("tpmkms.key.v1.KeyService/CreateKey", created.path("mdc").path("rpc").asText());
    assertTrue(!created.path("mdc").path("principal").asText().isEmpty(), created.toString());
    String all = String.join("\n", lines);
    assertTrue(!all.contains(plaintext), "the plaintext in the log");
    assertTrue(!all.contains(java.util.Base64.getEncoder().encodeToString(plaintext.getBytes(java.nio.charset.StandardCharsets.UTF_8))),
        "the plaintext's base64 in the log");
  }

  /**
   * An import job's wrapping key is a stored blob: after a kill -9 and a restart of the
   * key service between CreateImportJob and ImportKeyVersion, the job still imports, and the
   * imported key is the material (its HMAC equals plain JCA's).
   */
  @Test
  void importJob_survivesAKill9OfTheKeyService_betweenCreateAndImport() throws Exception {
    ImportJob job = keys().createImportJob(CreateImportJobRequest.newBuilder().setNamespace("sys")
        .setJobId("survivor").setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256)
        .setWait(com.google.protobuf.Duration.newBuilder().setSeconds(60)).build()).getImportJob();
    assertEquals(ImportJobState.ACTIVE, job.getState());
    keys().createKey(CreateKeyRequest.newBuilder().setNamespace("sys").setName("imported")
        .setPurpose(KeyPurpose.MAC).setImportOnly(true).build());

    keyService.kill9();
    keyService.restart();

    ImportJob after = keys().getImportJob(GetImportJobRequest.newBuilder().setImportJob("sys/survivor").build())
        .getImportJob();
    assertEquals(ImportJobState.ACTIVE, after.getState());
    assertEquals(job.getPublicKeyPem(), after.getPublicKeyPem(), "the same wrapping key");
    byte[] material = new byte[32];
    new java.security.SecureRandom().nextBytes(material);
    KeyVersion v = keys().importKeyVersion(ImportKeyVersionRequest.newBuilder().setKey("sys/imported")
        .setImportJob("sys/survivor").setAlgorithm(Algorithm.HMAC_SHA256)
        .setWrappedKey(ImportWrap.wrap(ImportWrap.publicKey(after.getPublicKeyPem()), material)).build()).getVersion();
    assertEquals(1, v.getVersion());
    assertTrue(v.getImported() && v.getPrimary());
    ByteString data = ByteString.copyFromUtf8("after a kill -9");
    javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
    mac.init(new javax.crypto.spec.SecretKeySpec(material, "HmacSHA256"));
    assertEquals(ByteString.copyFrom(mac.doFinal(data.toByteArray())),
        keys().macSign(MacSignRequest.newBuilder().setKey("sys/imported").setData(data).build()).getMac());
  }

  interface Disruption {
    void run() throws Exception;
  }

  /** 8 clients encrypt for about 8 s; the disruption happens after 2 s. Returns the acknowledged request ids. */
  private Set<String> runLoad(String prefix, Disruption disruption) throws Exception {
    Set<String> acked = ConcurrentHashMap.newKeySet();
    AtomicBoolean go = new AtomicBoolean(true);
    AtomicInteger seq = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(8);
    for (int t = 0; t < 8; t++) {
      pool.submit(() -> {
        while (go.get()) {
          String id = prefix + seq.incrementAndGet();
          Metadata h = new Metadata();
          h.put(REQUEST_ID, id);
          try {
            keys().withInterceptors(MetadataUtils.newAttachHeadersInterceptor(h)).encrypt(EncryptRequest.newBuilder()
                .setKey("sys/load").setPlaintext(ByteString.copyFromUtf8(id)).build());
            acked.add(id);
          } catch (StatusRuntimeException e) {
            // during the outage: not acknowledged, so no promise was made
            sleep(20);
          }
        }
        return null;
      });
    }
    Thread.sleep(2_000);
    disruption.run();
    Thread.sleep(4_000);
    go.set(false);
    pool.shutdown();
    assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS));
    // enough calls around the disruption to matter (over 1,000 on an idle 2-core machine; a loaded one made 571)
    assertTrue(acked.size() > 200, "a real load: " + acked.size() + " acknowledged");
    return acked;
  }

  private void assertEveryAcknowledgedOnceInTheChain(Set<String> acked) throws Exception {
    String prefix = acked.iterator().next().substring(0, 2);
    Map<String, Integer> seen = new HashMap<>();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    List<String> missing;
    do {
      seen.clear();
      for (AuditRecord r : allEncryptRecords()) {
        String id = r.getEvent().getRequestId();
        if (id.startsWith(prefix)) seen.merge(id, 1, Integer::sum);
      }
      missing = acked.stream().filter(id -> !seen.containsKey(id)).limit(5).toList();
      if (missing.isEmpty()) break;
      Thread.sleep(500); // the forwarder is still draining the outbox
    } while (System.nanoTime() < deadline);
    assertTrue(missing.isEmpty(), "acknowledged but not in the audit chain, e.g. " + missing);
    List<String> doubled = seen.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey)
        .limit(5).toList();
    assertTrue(doubled.isEmpty(), "recorded more than once: " + doubled);
    VerifyChainResponse v = AuditServiceGrpc.newBlockingStub(auditChannel).withDeadlineAfter(120, TimeUnit.SECONDS)
        .verifyChain(VerifyChainRequest.newBuilder().build());
    assertTrue(v.getValid(), "chain: " + v);
    assertTrue(v.getRecordsChecked() >= acked.size());
  }

  private static List<AuditRecord> allEncryptRecords() {
    List<AuditRecord> out = new ArrayList<>();
    String token = "";
    do {
      QueryRecordsResponse page = AuditServiceGrpc.newBlockingStub(auditChannel)
          .withDeadlineAfter(60, TimeUnit.SECONDS)
          .queryRecords(QueryRecordsRequest.newBuilder().setOperation("tpmkms.key.v1.KeyService/Encrypt")
              .setPageSize(1000).setPageToken(token).build());
      out.addAll(page.getRecordsList());
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return out;
  }

  private static KeyServiceGrpc.KeyServiceBlockingStub keys() {
    return KeyServiceGrpc.newBlockingStub(keyChannel).withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
