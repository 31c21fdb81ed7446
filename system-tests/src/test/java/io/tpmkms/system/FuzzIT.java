package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import com.google.rpc.ErrorInfo;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.MetadataUtils;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.devtools.Keycloak;
import io.tpmkms.devtools.ServiceProcess;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A fuzzer driven by the service descriptors, against the three packaged
 * services as real processes (own PostgreSQL each, real Keycloak, gRPC over
 * sockets). For every RPC of every tpmkms service it sends generated requests:
 * empty, boundary and out-of-range numbers, NUL, control characters and
 * invalid UTF-8 in strings, huge strings, bytes and repeated fields, unknown
 * enum values, random bytes as the whole message and mutated wire bytes —
 * authenticated as a principal allowed everything (so requests reach the
 * handlers), plus a share with no, garbage or oversized tokens.
 *
 * <p>It asserts: only documented codes (never UNKNOWN, DEADLINE_EXCEEDED or
 * the like; INTERNAL never — each would carry a correlation id found in the
 * service's log); every failure carries a tpmkms.io ErrorInfo (except the
 * documented over-size message); a bad token is UNAUTHENTICATED; a batch of
 * calls that all failed leaves the state digest (catalogue, policies and
 * bindings, appended audit records, read from the databases) unchanged; all
 * services answer SERVING afterwards.
 *
 * <p>CI runs {@value #DEFAULT_CASES} cases per RPC with a fixed seed. By hand:
 * {@code ./mvnw -B -pl key-service,policy-service,audit-service,system-tests -am verify -Dtest=none
 * -Dsurefire.failIfNoSpecifiedTests=false -Dit.test=FuzzIT -Dtpmkms.fuzz.cases=10000}
 * (optionally {@code -Dtpmkms.fuzz.seed=N}); the figures go to
 * {@code system-tests/target/fuzz-report.txt}. {@code -Dtpmkms.fuzz.threads} (4) and
 * {@code -Dtpmkms.fuzz.batch} (25 calls between two state digests) tune the run.
 */
class FuzzIT {
  private static final Logger LOG = Logger.getLogger(FuzzIT.class);
  static final int DEFAULT_CASES = 40;
  static final int CASES = Integer.getInteger("tpmkms.fuzz.cases", DEFAULT_CASES);
  static final long SEED = Long.getLong("tpmkms.fuzz.seed", 20261205L);
  static final int BATCH = Integer.getInteger("tpmkms.fuzz.batch", 25);
  static final int THREADS = Integer.getInteger("tpmkms.fuzz.threads", 4);
  static final int MAX_MESSAGE = 1024 * 1024;
  static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  /** Codes docs/errors.md documents for some condition. */
  static final Set<Status.Code> DOCUMENTED = Set.of(Status.Code.OK, Status.Code.INVALID_ARGUMENT,
      Status.Code.NOT_FOUND, Status.Code.ALREADY_EXISTS, Status.Code.FAILED_PRECONDITION,
      Status.Code.UNAUTHENTICATED, Status.Code.PERMISSION_DENIED, Status.Code.UNIMPLEMENTED, Status.Code.ABORTED,
      Status.Code.UNAVAILABLE, Status.Code.RESOURCE_EXHAUSTED);
  static final String[] FIXTURE_KEYS = {"fz/enc", "fz/sig", "fz/mac", "fz/rsa"};

  @TempDir static Path dir;
  static Keycloak keycloak;
  static EmbeddedPostgres keyDb;
  static EmbeddedPostgres policyDb;
  static EmbeddedPostgres auditDb;
  static ServiceProcess keyService;
  static ServiceProcess policyService;
  static ServiceProcess auditService;
  static ManagedChannel keyChannel;
  static ManagedChannel policyChannel;
  static ManagedChannel auditChannel;
  static volatile String token;
  static volatile long tokenAt;

  @BeforeAll
  static void start() throws Exception {
    Path root = Path.of("..").toAbsolutePath().normalize();
    keycloak = SharedKeycloak.get();
    keyDb = EmbeddedPostgres.builder().start();
    policyDb = EmbeddedPostgres.builder().start();
    auditDb = EmbeddedPostgres.builder().start();
    int[] ports = ServiceProcess.freePorts(6);
    Map<String, String> auditEnv = db(auditDb);
    auditEnv.put("TPMKMS_AUDIT_GRPC_PORT", Integer.toString(ports[0]));
    auditEnv.put("TPMKMS_AUDIT_HTTP_PORT", Integer.toString(ports[1]));
    auditEnv.put("TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("audit")).toString());
    // fuzzed appends must reach the handler with any declared service: no token check here (loopback);
    // who may append and read is AuditAuthorizationIT's
    auditEnv.put("TPMKMS_AUTH_MODE", "none");
    auditService = ServiceProcess.start(root.resolve("audit-service/target/quarkus-app/quarkus-run.jar"), auditEnv,
        dir.resolve("audit.log"));
    Map<String, String> policyEnv = db(policyDb);
    policyEnv.put("TPMKMS_POLICY_GRPC_PORT", Integer.toString(ports[2]));
    policyEnv.put("TPMKMS_POLICY_HTTP_PORT", Integer.toString(ports[3]));
    policyEnv.put("TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("policy")).toString());
    policyEnv.put("TPMKMS_OIDC_URL", keycloak.issuer(SharedKeycloak.REALM));
    policyEnv.put("TPMKMS_AUDIT_ADDRESS", "127.0.0.1:" + ports[0]);
    policyService = ServiceProcess.start(root.resolve("policy-service/target/quarkus-app/quarkus-run.jar"),
        policyEnv, dir.resolve("policy.log"));
    Map<String, String> keyEnv = db(keyDb);
    keyEnv.put("TPMKMS_GRPC_PORT", Integer.toString(ports[4]));
    keyEnv.put("TPMKMS_HTTP_PORT", Integer.toString(ports[5]));
    keyEnv.put("TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("key")).toString());
    keyEnv.put("TPMKMS_OIDC_URL", keycloak.issuer(SharedKeycloak.REALM));
    keyEnv.put("TPMKMS_POLICY_SERVICE", "127.0.0.1:" + ports[2]);
    keyEnv.put("TPMKMS_AUDIT_FORWARD_TO", "127.0.0.1:" + ports[0]);
    // no scheduler pass during the run: a fuzzed next_rotation_time in the past must not rotate a key
    // in the middle of a batch whose calls all failed
    keyEnv.put("TPMKMS_ROTATION_CHECK_INTERVAL", "1h");
    keyEnv.put("TPMKMS_DESTRUCTION_CHECK_INTERVAL", "1h");
    keyService = ServiceProcess.start(root.resolve("key-service/target/quarkus-app/quarkus-run.jar"), keyEnv,
        dir.resolve("key.log"));
    auditChannel = channel(ports[0]);
    policyChannel = channel(ports[2]);
    keyChannel = channel(ports[4]);
    // a principal allowed everything: admin (lifecycle, policies, bindings) and user (key use)
    keycloak.createUser(SharedKeycloak.REALM, "fuzz-all", "fuzz-all-pw", List.of("tpmkms-admin", "tpmkms-user"),
        List.of());
    String[][] fixtures = {{"enc", "ENCRYPT_DECRYPT"}, {"sig", "ASYMMETRIC_SIGN"}, {"mac", "MAC"},
        {"rsa", "ASYMMETRIC_DECRYPT"}};
    for (String[] f : fixtures) {
      KeyServiceGrpc.newBlockingStub(authed(keyChannel, "Bearer " + token()))
          .withDeadlineAfter(60, TimeUnit.SECONDS)
          .createKey(CreateKeyRequest.newBuilder().setNamespace("fz").setName(f[0])
              .setPurpose(KeyPurpose.valueOf(f[1])).build());
    }
  }

  @AfterAll
  static void stop() throws Exception {
    for (Connection c : CONNECTIONS.values()) c.close();
    for (ManagedChannel c : new ManagedChannel[] {keyChannel, policyChannel, auditChannel}) {
      if (c != null) c.shutdownNow();
    }
    for (ServiceProcess p : new ServiceProcess[] {keyService, policyService, auditService}) {
      if (p != null) p.close();
    }
    for (EmbeddedPostgres pg : new EmbeddedPostgres[] {keyDb, policyDb, auditDb}) {
      if (pg != null) pg.close();
    }
  }

  static Map<String, String> db(EmbeddedPostgres pg) {
    Map<String, String> env = new LinkedHashMap<>();
    env.put("QUARKUS_DATASOURCE_JDBC_URL", pg.getJdbcUrl("postgres", "postgres"));
    env.put("QUARKUS_DATASOURCE_USERNAME", "postgres");
    env.put("QUARKUS_DATASOURCE_PASSWORD", "postgres");
    return env;
  }

  static ManagedChannel channel(int port) {
    return ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().maxInboundMessageSize(32 << 20).build();
  }

  /** A fresh token of the all-allowed principal (Keycloak's access tokens live minutes; the run may last longer). */
  static synchronized String token() throws Exception {
    if (token == null || System.currentTimeMillis() - tokenAt > 60_000) {
      token = keycloak.passwordGrant(SharedKeycloak.REALM, "tpmkms-cli", null, "fuzz-all", "fuzz-all-pw").accessToken();
      tokenAt = System.currentTimeMillis();
    }
    return token;
  }

  static Channel authed(Channel ch, String header) {
    if (header == null) return ch;
    Metadata m = new Metadata();
    m.put(AUTHORIZATION, header);
    return ClientInterceptors.intercept(ch, MetadataUtils.newAttachHeadersInterceptor(m));
  }

  // ---- the run ----------------------------------------------------------------------------------

  /** One generated call: the request bytes and the authorization header (VALID: the fuzz principal's token). */
  record Case(String what, byte[] body, String auth) {}

  static final String VALID = "<valid>";

  record Target(ServiceDescriptor service, ManagedChannel channel, boolean authenticated) {}

  @Test
  void everyRpc_generatedBadInput_onlyDocumentedCodes_noStateChangeOnFailure_servicesHealthy() throws Exception {
    // The audit service first: its read RPCs (VerifyChain, ExportRecords, QueryRecords without a range) cost
    // O(chain) per call, and the key and policy phases append ~3.5 records per case; fuzzed last, 10,000 cases
    // each met a chain of 176,000 records and took hours instead of minutes.
    List<Target> targets = List.of(
        new Target(AuditServiceGrpc.getServiceDescriptor(), auditChannel, false),
        new Target(KeyServiceGrpc.getServiceDescriptor(), keyChannel, true),
        new Target(PolicyServiceGrpc.getServiceDescriptor(), policyChannel, true));
    List<String> findings = new ArrayList<>();
    Map<String, Map<String, Integer>> codes = new TreeMap<>();
    long started = System.nanoTime();
    int total = 0;
    ExecutorService pool = Executors.newFixedThreadPool(THREADS);
    try {
      for (Target t : targets) {
        for (MethodDescriptor<?, ?> m : t.service().getMethods()) {
          Map<String, Integer> seen = new TreeMap<>();
          codes.put(m.getFullMethodName(), seen);
          Random r = new Random(SEED ^ m.getFullMethodName().hashCode());
          Message prototype = (Message) ((MethodDescriptor.PrototypeMarshaller<?>) m.getRequestMarshaller())
              .getMessagePrototype();
          for (int done = 0; done < CASES; done += BATCH) {
            List<Case> batch = new ArrayList<>();
            for (int i = 0; i < Math.min(BATCH, CASES - done); i++) batch.add(generate(prototype, t.authenticated(), r));
            String before = digest();
            List<Future<String>> results = new ArrayList<>();
            for (Case c : batch) results.add(pool.submit(() -> call(t, m, c, findings)));
            boolean allFailed = true;
            for (Future<String> f : results) {
              String code = f.get();
              seen.merge(code, 1, Integer::sum);
              if (code.equals("OK")) allFailed = false;
            }
            total += batch.size();
            if (allFailed) {
              String after = digest();
              if (!before.equals(after)) {
                synchronized (findings) {
                  findings.add(m.getFullMethodName() + ": state changed by a batch of " + batch.size()
                      + " calls that all failed: " + batch.stream().map(Case::what).toList());
                }
              }
            }
          }
        }
      }
    } finally {
      pool.shutdownNow();
    }
    double seconds = (System.nanoTime() - started) / 1e9;
    for (Target t : targets) {
      // grpc.health.v1.Health/Check of the whole server; the answer HealthCheckResponse{status: SERVING} is 08 01
      MethodDescriptor<byte[], byte[]> check = MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY).setFullMethodName("grpc.health.v1.Health/Check")
          .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
      byte[] h = ClientCalls.blockingUnaryCall(t.channel(), check, CallOptions.DEFAULT.withDeadlineAfter(10,
          TimeUnit.SECONDS), new byte[0]);
      assertEquals("0801", java.util.HexFormat.of().formatHex(h), t.service().getName() + " not SERVING");
    }
    long internalLogged = 0;
    for (ServiceProcess p : new ServiceProcess[] {keyService, policyService, auditService}) {
      internalLogged += p.countInLog("internal error, correlation id");
    }
    StringBuilder report = new StringBuilder();
    report.append(String.format("fuzz: seed %d, %d cases per RPC, %d RPCs, %d calls in %.1f s, %d findings, "
        + "%d INTERNAL logged%n", SEED, CASES, codes.size(), total, seconds, findings.size(), internalLogged));
    codes.forEach((rpc, c) -> report.append(String.format("  %-60s %s%n", rpc, c)));
    findings.stream().limit(200).forEach(f -> report.append("  FINDING ").append(f).append('\n'));
    Files.writeString(Path.of("target", "fuzz-report.txt"), report.toString());
    LOG.info(report);
    assertTrue(findings.isEmpty(), findings.size() + " findings:\n" + String.join("\n",
        findings.subList(0, Math.min(50, findings.size()))));
    assertEquals(0, internalLogged, "INTERNAL errors in the services' logs");
  }

  /** Sends one case; returns the code's name and records anything undocumented in {@code findings}. */
  static String call(Target t, MethodDescriptor<?, ?> m, Case c, List<String> findings) throws Exception {
    String header = VALID.equals(c.auth()) ? "Bearer " + token() : c.auth();
    Channel ch = authed(t.channel(), header);
    MethodDescriptor<byte[], byte[]> raw = MethodDescriptor.<byte[], byte[]>newBuilder().setType(m.getType())
        .setFullMethodName(m.getFullMethodName()).setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
    CallOptions options = CallOptions.DEFAULT.withDeadlineAfter(60, TimeUnit.SECONDS);
    Status.Code code;
    String problem = null;
    try {
      if (m.getType() == MethodDescriptor.MethodType.UNARY) {
        ClientCalls.blockingUnaryCall(ch, raw, options, c.body());
      } else {
        Iterator<byte[]> it = ClientCalls.blockingServerStreamingCall(ch, raw, options, c.body());
        while (it.hasNext()) it.next();
      }
      code = Status.Code.OK;
      if (t.authenticated() && !VALID.equals(c.auth())) problem = "succeeded with a bad token";
    } catch (StatusRuntimeException e) {
      code = e.getStatus().getCode();
      ErrorInfo info = errorInfo(e);
      boolean oversize = code == Status.Code.RESOURCE_EXHAUSTED && c.body().length > MAX_MESSAGE;
      if (!DOCUMENTED.contains(code)) {
        problem = "undocumented " + e.getStatus()
            + (info != null && info.containsMetadata("correlation_id") ? " correlation id "
            + info.getMetadataOrThrow("correlation_id") : "");
      } else if (info == null && !oversize) {
        problem = code + " without ErrorInfo: " + e.getStatus().getDescription();
      } else if (info != null && (!"tpmkms.io".equals(info.getDomain()) || info.getReason().isEmpty())) {
        problem = code + " with a foreign ErrorInfo " + info;
      } else if (t.authenticated() && !VALID.equals(c.auth()) && code != Status.Code.UNAUTHENTICATED) {
        problem = "bad token answered " + code + " (" + (info == null ? "" : info.getReason()) + ")";
      }
      if (info != null && code != Status.Code.OK) {
        String result = code + "/" + info.getReason();
        note(findings, m, c, problem);
        return result;
      }
    }
    note(findings, m, c, problem);
    return code.name();
  }

  private static void note(List<String> findings, MethodDescriptor<?, ?> m, Case c, String problem) {
    if (problem == null) return;
    synchronized (findings) {
      findings.add(m.getFullMethodName() + " [" + c.what() + "]: " + problem);
    }
  }

  static ErrorInfo errorInfo(StatusRuntimeException e) {
    com.google.rpc.Status s = StatusProto.fromThrowable(e);
    if (s == null) return null;
    for (com.google.protobuf.Any d : s.getDetailsList()) {
      if (d.is(ErrorInfo.class)) {
        try {
          return d.unpack(ErrorInfo.class);
        } catch (com.google.protobuf.InvalidProtocolBufferException x) {
          return null;
        }
      }
    }
    return null;
  }

  // ---- state digest -----------------------------------------------------------------------------

  /**
   * What a failed call must not change: the key catalogue (keys, versions,
   * labels; which import jobs exist, not their state: a job created by an
   * earlier successful call turns ACTIVE in the background), the policy store
   * (policies, versions, bindings) and the audit records appended by callers
   * (not those the services forward: every call is audited, failed ones too;
   * nor the audit service's own records of its calls, ADR 0023), read from the
   * databases.
   */
  static String digest() throws Exception {
    return digest(keyDb, "kms_key", "kms_key_version", "kms_key_label")
        + query(keyDb, "SELECT coalesce(md5(string_agg(namespace || '/' || job_id, '|' ORDER BY namespace, job_id)), '') "
            + "FROM import_job") + "/"
        + digest(policyDb, "policy", "policy_version", "role_binding") + "/"
        + query(auditDb, "SELECT count(*) || ':' || coalesce(max(sequence), 0) FROM audit_record "
            + "WHERE service NOT IN ('key-service', 'policy-service') AND delivered_by <> 'audit-service'");
  }

  static String digest(EmbeddedPostgres pg, String... tables) throws Exception {
    StringBuilder b = new StringBuilder();
    for (String t : tables) {
      b.append(query(pg, "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM " + t + " t"))
          .append(',');
    }
    return b.toString();
  }

  static final Map<EmbeddedPostgres, Connection> CONNECTIONS = new java.util.IdentityHashMap<>();

  static synchronized String query(EmbeddedPostgres pg, String sql) throws Exception {
    Connection c = CONNECTIONS.get(pg);
    if (c == null || c.isClosed()) {
      c = pg.getPostgresDatabase().getConnection();
      CONNECTIONS.put(pg, c);
    }
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
      rs.next();
      return rs.getString(1);
    }
  }

  // ---- generation -------------------------------------------------------------------------------

  static final String[] HOSTILE = {"", "\0", "a\0b", "fz/enc\0", "\u0001\u007f\t\n\r", "../../etc/passwd",
      "' OR '1'='1' --", "%s%n%x", "\uD83D\uDE00", "\u202Eevil", "é", "fz/", "/", "fz//enc", " fz/enc",
      "FZ/ENC", "fz/enc/extra", "x".repeat(64), "x".repeat(129), "y".repeat(256), "z".repeat(1025)};

  static Case generate(Message prototype, boolean authenticated, Random r) {
    String auth = VALID;
    if (authenticated && r.nextInt(100) < 10) {
      String[] bad = {null, "", "Bearer", "Bearer ", "Bearer garbage", "Basic Zm9vOmJhcg==",
          "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "Bearer " + "x".repeat(20_000),
          "Bearer " + "x".repeat(70_000)};
      auth = bad[r.nextInt(bad.length)];
    }
    int kind = r.nextInt(100);
    Descriptor type = prototype.getDescriptorForType();
    if (kind < 10) {
      byte[] b = new byte[r.nextInt(400)];
      r.nextBytes(b);
      return new Case("random bytes (" + b.length + ")" + authNote(auth), b, auth);
    }
    Message.Builder builder = prototype.newBuilderForType();
    plausible(builder, r);
    List<String> what = new ArrayList<>();
    int mutations = 1 + r.nextInt(3);
    for (int i = 0; i < mutations && !type.getFields().isEmpty(); i++) {
      FieldDescriptor f = type.getFields().get(r.nextInt(type.getFields().size()));
      what.add(mutate(builder, f, r, 0, kind >= 95));
    }
    byte[] body = builder.build().toByteArray();
    if (kind < 18) {
      body = mangle(body, r);
      what.add("mangled wire bytes");
    } else if (kind < 26) {
      List<FieldDescriptor> strings = type.getFields().stream()
          .filter(f -> f.getType() == FieldDescriptor.Type.STRING).toList();
      if (!strings.isEmpty()) {
        FieldDescriptor f = strings.get(r.nextInt(strings.size()));
        body = concat(body, invalidUtf8(f.getNumber(), r));
        what.add("invalid UTF-8 in " + f.getName());
      }
    }
    return new Case(String.join(", ", what) + " (" + body.length + " bytes)" + authNote(auth), body, auth);
  }

  static String authNote(String auth) {
    if (VALID.equals(auth)) return "";
    if (auth == null) return " no token";
    return " token '" + (auth.length() > 24 ? auth.substring(0, 24) + "...(" + auth.length() + ")" : auth) + "'";
  }

  /** Fills some fields with values that pass validation, so that mutations reach deeper checks. */
  static void plausible(Message.Builder b, Random r) {
    for (FieldDescriptor f : b.getDescriptorForType().getFields()) {
      if (r.nextBoolean() || f.isRepeated()) continue;
      boolean string = f.getJavaType() == FieldDescriptor.JavaType.STRING;
      switch (string ? f.getName() : f.getJavaType() == FieldDescriptor.JavaType.ENUM ? "" : "-" + f.getName()) {
        case "key", "key_name" -> b.setField(f, FIXTURE_KEYS[r.nextInt(FIXTURE_KEYS.length)]);
        case "namespace" -> b.setField(f, "fz");
        case "name" -> b.setField(f, "n" + r.nextInt(1000));
        case "-version" -> {
          if (f.getJavaType() == FieldDescriptor.JavaType.INT) b.setField(f, 1);
          else if (f.getJavaType() == FieldDescriptor.JavaType.LONG) b.setField(f, 1L);
        }
        case "id" -> b.setField(f, "fz-policy-" + r.nextInt(5));
        default -> {
          if (f.getJavaType() == FieldDescriptor.JavaType.ENUM && f.getEnumType().getValues().size() > 1) {
            b.setField(f, f.getEnumType().getValues().get(1 + r.nextInt(f.getEnumType().getValues().size() - 1)));
          }
        }
      }
    }
  }

  /** Sets a hostile value in {@code f}; returns what it did (never the value: it may be huge). */
  static String mutate(Message.Builder b, FieldDescriptor f, Random r, int depth, boolean huge) {
    if (f.isMapField()) {
      b.clearField(f);
      int n = huge ? 5_000 : r.nextInt(4);
      for (int i = 0; i < n; i++) {
        Message.Builder entry = b.newBuilderForField(f);
        Descriptor et = f.getMessageType();
        entry.setField(et.findFieldByName("key"), scalar(et.findFieldByName("key"), r, false, i));
        FieldDescriptor v = et.findFieldByName("value");
        if (v.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
          entry.setField(v, message(v, entry, r, depth + 1));
        } else {
          entry.setField(v, scalar(v, r, false, i));
        }
        b.addRepeatedField(f, entry.build());
      }
      return f.getName() + "{" + n + "}";
    }
    if (f.isRepeated()) {
      b.clearField(f);
      int n = huge ? 5_000 : r.nextInt(4);
      for (int i = 0; i < n; i++) {
        b.addRepeatedField(f, f.getJavaType() == FieldDescriptor.JavaType.MESSAGE
            ? message(f, b, r, depth + 1) : scalar(f, r, false, i));
      }
      return f.getName() + "[" + n + "]";
    }
    if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
      if (depth > 3) return f.getName() + "=(deep)";
      b.setField(f, message(f, b, r, depth + 1));
      return f.getName() + "={...}";
    }
    b.setField(f, scalar(f, r, huge, 0));
    return f.getName() + "=" + kindOf(b.getField(f));
  }

  static Message message(FieldDescriptor f, Message.Builder parent, Random r, int depth) {
    Message.Builder sub = parent.newBuilderForField(f);
    List<FieldDescriptor> fields = sub.getDescriptorForType().getFields();
    int n = fields.isEmpty() ? 0 : r.nextInt(Math.min(4, fields.size() + 1));
    for (int i = 0; i < n; i++) {
      FieldDescriptor g = fields.get(r.nextInt(fields.size()));
      if (depth > 3 && g.getJavaType() == FieldDescriptor.JavaType.MESSAGE) continue;
      mutate(sub, g, r, depth, false);
    }
    return sub.build();
  }

  static String kindOf(Object v) {
    if (v instanceof String s) {
      if (s.length() > 64) return "string(" + s.length() + ")";
      return "'" + s.replace("\0", "\\0").replaceAll("\\p{Cntrl}", "?") + "'";
    }
    if (v instanceof ByteString b) return "bytes(" + b.size() + ")";
    if (v instanceof EnumValueDescriptor e) return "enum " + e.getNumber();
    return String.valueOf(v);
  }

  static Object scalar(FieldDescriptor f, Random r, boolean huge, int i) {
    switch (f.getJavaType()) {
      case STRING -> {
        if (huge) return "h".repeat(200_000 + r.nextInt(1_000_000));
        if (r.nextInt(4) == 0) return plausibleString(f, r) + i;
        return HOSTILE[r.nextInt(HOSTILE.length)];
      }
      case BYTE_STRING -> {
        int[] sizes = {0, 1, 5, 16, 32, 33, 48, 64, 256, 1024, 65_536, 65_537, 131_073};
        int n = huge ? 200_000 + r.nextInt(1_000_000) : sizes[r.nextInt(sizes.length)];
        byte[] b = new byte[n];
        r.nextBytes(b);
        if (n > 0 && r.nextBoolean()) b[0] = 0x01;
        return ByteString.copyFrom(b);
      }
      case INT -> {
        int[] v = {0, 1, -1, 2, 16, 32, 999, 1000, 1001, 1024, 1025, Integer.MAX_VALUE, Integer.MIN_VALUE, r.nextInt()};
        return v[r.nextInt(v.length)];
      }
      case LONG -> {
        long[] v = {0, 1, -1, 2, 3600, 86_400, 315_576_000_000L, 315_576_000_001L, 1L << 31, 1L << 32,
            253_402_300_799L, 253_402_300_800L, Long.MAX_VALUE, Long.MIN_VALUE, r.nextLong()};
        return v[r.nextInt(v.length)];
      }
      case BOOLEAN -> {
        return r.nextBoolean();
      }
      case FLOAT -> {
        float[] v = {0f, -1f, Float.NaN, Float.POSITIVE_INFINITY, Float.MAX_VALUE};
        return v[r.nextInt(v.length)];
      }
      case DOUBLE -> {
        double[] v = {0d, -1d, Double.NaN, Double.NEGATIVE_INFINITY, Double.MAX_VALUE};
        return v[r.nextInt(v.length)];
      }
      case ENUM -> {
        List<EnumValueDescriptor> values = f.getEnumType().getValues();
        if (r.nextInt(10) < 6) return values.get(r.nextInt(values.size()));
        int[] unknown = {-1, values.size(), 99, 1 << 20, Integer.MAX_VALUE, Integer.MIN_VALUE};
        return f.getEnumType().findValueByNumberCreatingIfUnknown(unknown[r.nextInt(unknown.length)]);
      }
      default -> throw new IllegalStateException(f.getJavaType().toString());
    }
  }

  static String plausibleString(FieldDescriptor f, Random r) {
    return switch (f.getName()) {
      case "key", "key_name" -> FIXTURE_KEYS[r.nextInt(FIXTURE_KEYS.length)];
      case "namespace" -> "fz";
      case "update_mask" -> new String[] {"labels", "rotation_period", "next_rotation_time"}[r.nextInt(3)];
      default -> "v";
    };
  }

  /** The bytes with a few flipped, cut or duplicated. */
  static byte[] mangle(byte[] body, Random r) {
    if (body.length == 0) return new byte[] {(byte) r.nextInt(256)};
    byte[] b = body.clone();
    switch (r.nextInt(3)) {
      case 0 -> {
        for (int i = 0; i < 1 + r.nextInt(4); i++) b[r.nextInt(b.length)] ^= (byte) (1 << r.nextInt(8));
        return b;
      }
      case 1 -> {
        return java.util.Arrays.copyOf(b, r.nextInt(b.length));
      }
      default -> {
        return concat(b, java.util.Arrays.copyOfRange(b, r.nextInt(b.length), b.length));
      }
    }
  }

  /** Field {@code number} as a length-delimited value of bytes that are not UTF-8. */
  static byte[] invalidUtf8(int number, Random r) {
    byte[][] bad = {{(byte) 0xff}, {(byte) 0xc3, 0x28}, {(byte) 0xe2, (byte) 0x82}, {(byte) 0xed, (byte) 0xa0,
        (byte) 0x80}, {'a', (byte) 0xf8, (byte) 0x88, (byte) 0x80, (byte) 0x80, (byte) 0x80}, {(byte) 0xc0, (byte) 0x80}};
    try {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      CodedOutputStream out = CodedOutputStream.newInstance(bytes);
      out.writeByteArray(number, bad[r.nextInt(bad.length)]);
      out.flush();
      return bytes.toByteArray();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  static byte[] concat(byte[] a, byte[] b) {
    byte[] c = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }

  static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) { return new ByteArrayInputStream(value); }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
  };
}
