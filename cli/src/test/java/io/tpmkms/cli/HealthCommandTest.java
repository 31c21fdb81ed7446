package io.tpmkms.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@code tpmkms health} against three gRPC servers running grpc-java's own health service. */
class HealthCommandTest {
  private final HealthStatusManager key = new HealthStatusManager();
  private final HealthStatusManager policy = new HealthStatusManager();
  private final HealthStatusManager audit = new HealthStatusManager();
  private final List<String> authorizations = new CopyOnWriteArrayList<>();
  private Server keyServer;
  private Server policyServer;
  private Server auditServer;

  /** A key service of one test: keys in a map, "encryption" reverses the bytes (or lies when told). */
  static final class RoundTripKeys extends io.tpmkms.proto.key.v1.KeyServiceGrpc.KeyServiceImplBase {
    final java.util.Set<String> keys = java.util.concurrent.ConcurrentHashMap.newKeySet();
    final List<String> calls = new CopyOnWriteArrayList<>();
    volatile boolean lie;

    @Override
    public void getKey(io.tpmkms.proto.key.v1.GetKeyRequest r,
        io.grpc.stub.StreamObserver<io.tpmkms.proto.key.v1.GetKeyResponse> o) {
      calls.add("get " + r.getKey());
      if (!keys.contains(r.getKey())) {
        o.onError(io.grpc.Status.NOT_FOUND.withDescription("no key " + r.getKey()).asRuntimeException());
        return;
      }
      o.onNext(io.tpmkms.proto.key.v1.GetKeyResponse.getDefaultInstance());
      o.onCompleted();
    }

    @Override
    public void createKey(io.tpmkms.proto.key.v1.CreateKeyRequest r,
        io.grpc.stub.StreamObserver<io.tpmkms.proto.key.v1.CreateKeyResponse> o) {
      calls.add("create " + r.getNamespace() + "/" + r.getName() + " " + r.getPurpose());
      keys.add(r.getNamespace() + "/" + r.getName());
      o.onNext(io.tpmkms.proto.key.v1.CreateKeyResponse.getDefaultInstance());
      o.onCompleted();
    }

    /** The fake's "cipher": the bytes in reverse order (its own inverse). */
    private static byte[] reversed(com.google.protobuf.ByteString in) {
      byte[] b = in.toByteArray();
      for (int i = 0; i < b.length / 2; i++) {
        byte t = b[i];
        b[i] = b[b.length - 1 - i];
        b[b.length - 1 - i] = t;
      }
      return b;
    }

    @Override
    public void encrypt(io.tpmkms.proto.key.v1.EncryptRequest r,
        io.grpc.stub.StreamObserver<io.tpmkms.proto.key.v1.EncryptResponse> o) {
      calls.add("encrypt " + r.getKey());
      byte[] b = reversed(r.getPlaintext());
      o.onNext(io.tpmkms.proto.key.v1.EncryptResponse.newBuilder()
          .setCiphertext(com.google.protobuf.ByteString.copyFrom(b)).build());
      o.onCompleted();
    }

    @Override
    public void decrypt(io.tpmkms.proto.key.v1.DecryptRequest r,
        io.grpc.stub.StreamObserver<io.tpmkms.proto.key.v1.DecryptResponse> o) {
      calls.add("decrypt " + r.getKey());
      byte[] b = reversed(r.getCiphertext());
      if (lie) b[0] ^= 1;
      o.onNext(io.tpmkms.proto.key.v1.DecryptResponse.newBuilder()
          .setPlaintext(com.google.protobuf.ByteString.copyFrom(b)).build());
      o.onCompleted();
    }
  }

  private final RoundTripKeys roundTripKeys = new RoundTripKeys();

  private Server serve(HealthStatusManager m) throws Exception {
    ServerInterceptor recorder = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        String a = headers.get(CliHarness.AUTHORIZATION);
        authorizations.add(a == null ? "none" : a);
        return next.startCall(call, headers);
      }
    };
    ServerInterceptor info = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        if (m != key) return next.startCall(call, headers);
        return next.startCall(new io.grpc.ForwardingServerCall.SimpleForwardingServerCall<>(call) {
          @Override
          public void sendHeaders(Metadata h) {
            h.put(Metadata.Key.of("tpmkms-info-crypto", Metadata.ASCII_STRING_MARSHALLER), "ECDSA: Test 1.0");
            h.put(Metadata.Key.of("tpmkms-info-tls", Metadata.ASCII_STRING_MARSHALLER), "plaintext");
            h.put(Metadata.Key.of("x-other", Metadata.ASCII_STRING_MARSHALLER), "not a fact");
            if (notReady != null) h.put(Metadata.Key.of("tpmkms-not-ready", Metadata.ASCII_STRING_MARSHALLER), notReady);
            super.sendHeaders(h);
          }
        }, headers);
      }
    };
    NettyServerBuilder b = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .addService(ServerInterceptors.intercept(m.getHealthService(), recorder, info));
    if (m == key) b.addService(ServerInterceptors.intercept(roundTripKeys, recorder));
    return b.build().start();
  }

  @BeforeEach
  void start() throws Exception {
    keyServer = serve(key);
    policyServer = serve(policy);
    auditServer = serve(audit);
  }

  @AfterEach
  void stop() throws Exception {
    for (Server s : List.of(keyServer, policyServer, auditServer)) s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private CliHarness.Result health(String... extra) {
    return health(new FakePlatform(), extra); // no token at all: health needs no login
  }

  private CliHarness.Result health(FakePlatform p, String... extra) {
    List<String> args = new java.util.ArrayList<>(List.of("health", "--plaintext",
        "--address", "127.0.0.1:" + keyServer.getPort(),
        "--policy-address", "127.0.0.1:" + policyServer.getPort(),
        "--audit-address", "127.0.0.1:" + auditServer.getPort()));
    args.addAll(List.of(extra));
    return CliHarness.runAgainst(p, new byte[0], args.toArray(String[]::new));
  }

  @Test
  void allServing_exit0_noTokenSent() {
    CliHarness.Result r = health();
    assertEquals(0, r.exitCode(), r.toString());
    assertEquals(3, r.stdout().lines().filter(l -> l.endsWith("SERVING")).count(), r.stdout());
    assertTrue(r.stdout().contains("policy service") && r.stdout().contains("audit service"), r.stdout());
    assertEquals(List.of("none", "none", "none"), authorizations, "health carries no token");
  }

  /** What the fake key service says in tpmkms-not-ready (null: nothing). */
  private volatile String notReady;

  @Test
  void notReady_showsTheServicesReason() {
    key.setStatus("", ServingStatus.NOT_SERVING);
    notReady = "tpm: TPM unreachable: connection refused";
    CliHarness.Result r = health();
    assertEquals(1, r.exitCode(), r.toString());
    assertTrue(r.stdout().lines().anyMatch(l -> l.startsWith("key service")
        && l.endsWith("NOT_SERVING (tpm: TPM unreachable: connection refused)")), r.stdout());
  }

  @Test
  void oneNotServing_exit1_namesIt() {
    audit.setStatus("", ServingStatus.NOT_SERVING);
    CliHarness.Result r = health();
    assertEquals(1, r.exitCode(), r.toString());
    assertTrue(r.stdout().lines().anyMatch(l -> l.startsWith("audit service") && l.endsWith("NOT_SERVING")), r.stdout());
  }

  @Test
  void unreachable_exit3_andOnlyTheServicesAsked() throws Exception {
    int closed;
    try (ServerSocket s = new ServerSocket(0)) {
      closed = s.getLocalPort();
    }
    keyServer.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    keyServer = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", closed)).build(); // not started
    CliHarness.Result r = CliHarness.runAgainst(new FakePlatform(), new byte[0], "health", "--plaintext",
        "--service", "key", "--address", "127.0.0.1:" + closed);
    assertEquals(3, r.exitCode(), r.toString());
    assertEquals(1, r.stdout().lines().count(), r.stdout());
    assertTrue(r.stdout().contains("UNAVAILABLE"), r.stdout());
  }

  @Test
  void json_listsEveryService() {
    CliHarness.Result r = health("--json", "--service", "key,policy");
    assertEquals(0, r.exitCode(), r.toString());
    assertTrue(r.stdout().contains("\"service\": \"key service\"") && r.stdout().contains("\"status\": \"SERVING\"")
        && !r.stdout().contains("audit"), r.stdout());
  }

  @Test
  void roundTrip_createsTheKeyOnce_thenReusesIt_withTheToken() {
    FakePlatform p = new FakePlatform();
    p.env.put("TPMKMS_TOKEN", "t0k3n");
    CliHarness.Result first = health(p, "--round-trip", "helm-test");
    assertEquals(0, first.exitCode(), first.toString());
    assertTrue(first.stdout().lines().anyMatch(l -> l.startsWith("round trip") && l.contains("helm-test/health-check")
        && l.contains("OK (encrypt + decrypt")), first.stdout());
    CliHarness.Result second = health(p, "--round-trip", "helm-test");
    assertEquals(0, second.exitCode(), second.toString());
    assertEquals(List.of("get helm-test/health-check", "create helm-test/health-check ENCRYPT_DECRYPT",
        "encrypt helm-test/health-check", "decrypt helm-test/health-check",
        "get helm-test/health-check", "encrypt helm-test/health-check", "decrypt helm-test/health-check"),
        roundTripKeys.calls);
    assertTrue(authorizations.contains("Bearer t0k3n"), authorizations.toString());
  }

  @Test
  void roundTrip_wrongPlaintextBack_exit1() {
    FakePlatform p = new FakePlatform();
    p.env.put("TPMKMS_TOKEN", "t0k3n");
    roundTripKeys.lie = true;
    CliHarness.Result r = health(p, "--round-trip", "helm-test");
    assertEquals(1, r.exitCode(), r.toString());
    assertTrue(r.stdout().contains("FAILED: decrypt did not return the plaintext"), r.stdout());
  }

  @Test
  void roundTrip_skippedWhenAServiceIsNotServing_andNamespaceChecked() {
    FakePlatform p = new FakePlatform();
    p.env.put("TPMKMS_TOKEN", "t0k3n");
    policy.setStatus("", ServingStatus.NOT_SERVING);
    CliHarness.Result r = health(p, "--round-trip", "helm-test");
    assertEquals(1, r.exitCode(), r.toString());
    assertTrue(roundTripKeys.calls.isEmpty(), roundTripKeys.calls.toString());
    CliHarness.Result bad = health(p, "--round-trip", "a/b");
    assertEquals(2, bad.exitCode(), bad.toString());
    assertTrue(bad.stderr().contains("--round-trip takes a NAMESPACE"), bad.stderr());
  }

  @Test
  void details_printWhatEachServiceSaysItRunsOn_andJsonAlwaysCarriesIt() throws Exception {
    CliHarness.Result plain = health();
    assertTrue(plain.stdout().lines().noneMatch(l -> l.contains("crypto:")), plain.stdout());

    CliHarness.Result r = health("--details");
    assertEquals(0, r.exitCode(), r.toString());
    List<String> lines = r.stdout().lines().toList();
    int keyRow = 0;
    while (!lines.get(keyRow).startsWith("key service")) keyRow++;
    assertEquals("crypto: ECDSA: Test 1.0", lines.get(keyRow + 1).trim(), r.stdout());
    assertEquals("tls: plaintext", lines.get(keyRow + 2).trim(), r.stdout());
    assertTrue(r.stdout().lines().noneMatch(l -> l.contains("not a fact")), r.stdout());

    CliHarness.Result j = health("--json");
    assertTrue(j.stdout().contains("\"info\": {\"crypto\": \"ECDSA: Test 1.0\", \"tls\": \"plaintext\"}"), j.stdout());
  }
}
