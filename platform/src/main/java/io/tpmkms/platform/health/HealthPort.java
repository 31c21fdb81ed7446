package io.tpmkms.platform.health;

import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.quarkus.grpc.runtime.health.GrpcHealthStorage;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import org.jboss.logging.Logger;

/**
 * Serves {@code grpc.health.v1.Health} alone, in plaintext, on {@code tpmkms.health.port}: what a
 * Kubernetes {@code grpc:} probe can reach when the service port speaks only TLS. It answers from
 * the same statuses as the service port's health service, plus:
 *
 * <ul>
 *   <li>{@code ""} (the probe's default) and {@code "readiness"}: the server's overall status,
 *       SERVING once started, NOT_SERVING while it stops;
 *   <li>{@code "liveness"}: SERVING as long as the process answers at all;
 *   <li>a gRPC service name ({@code tpmkms.key.v1.KeyService}): that service's status; unknown
 *       names: NOT_FOUND, as the health protocol asks.
 * </ul>
 *
 * Nothing else is served there and no call reaches the service's RPCs, so plaintext exposes
 * nothing but "up" or "down"; it is exempt from the rule that plaintext stays on loopback.
 */
@ApplicationScoped
public class HealthPort {
  private static final Logger LOG = Logger.getLogger(HealthPort.class);

  @Inject HealthConfig config;
  @Inject GrpcHealthStorage storage;
  @Inject ServerInfo info;

  private Server server;

  void start(@Observes StartupEvent e) {
    if (config.port().isEmpty()) return;
    InetSocketAddress address = new InetSocketAddress(config.host(), config.port().get());
    try {
      server = NettyServerBuilder.forAddress(address)
          .addService(io.grpc.ServerInterceptors.intercept(new Endpoint(), info))
          .maxInboundMessageSize(4096)
          .build()
          .start();
    } catch (IOException ex) {
      throw new UncheckedIOException("cannot open the probe port " + address + " (tpmkms.health.port)", ex);
    }
    LOG.infof("probe port (grpc.health.v1.Health only, plaintext) on %s:%d", config.host(), server.getPort());
  }

  void stop(@Observes ShutdownEvent e) throws InterruptedException {
    if (server == null) return;
    server.shutdown();
    if (!server.awaitTermination(2, TimeUnit.SECONDS)) server.shutdownNow();
  }

  /** The bound port (tests bind port 0). */
  public int port() {
    return server == null ? -1 : server.getPort();
  }

  ServingStatus status(String service) {
    switch (service) {
      case "liveness":
        return ServingStatus.SERVING;
      case "":
      case "readiness": {
        ServingStatus s = storage.getStatuses().get("");
        return s == null ? ServingStatus.NOT_SERVING : s;
      }
      default:
        return storage.getStatuses().get(service);
    }
  }

  private final class Endpoint extends HealthGrpc.HealthImplBase {
    @Override
    public void check(HealthCheckRequest request, StreamObserver<HealthCheckResponse> answer) {
      ServingStatus s = status(request.getService());
      if (s == null) {
        answer.onError(Status.NOT_FOUND.withDescription("unknown service").asRuntimeException());
        return;
      }
      answer.onNext(HealthCheckResponse.newBuilder().setStatus(s).build());
      answer.onCompleted();
    }

    @Override
    public void watch(HealthCheckRequest request, StreamObserver<HealthCheckResponse> answer) {
      answer.onError(Status.UNIMPLEMENTED.withDescription("the probe port answers Check only").asRuntimeException());
    }
  }
}
