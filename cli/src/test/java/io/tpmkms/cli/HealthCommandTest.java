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
    return NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .addService(ServerInterceptors.intercept(m.getHealthService(), recorder)).build().start();
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
    FakePlatform p = new FakePlatform(); // no token at all: health needs no login
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
}
