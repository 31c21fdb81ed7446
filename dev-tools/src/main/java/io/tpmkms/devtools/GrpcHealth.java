package io.tpmkms.devtools;

import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The readiness probe of {@link ServiceProcess}: the gRPC health service. A class of its own so
 * that callers that never probe (the tests, which wait for the log) need no gRPC on their classpath.
 */
final class GrpcHealth {
  private GrpcHealth() {
  }

  /** Waits until {@code target} answers SERVING; IllegalStateException when the process exits or time runs out. */
  static void awaitServing(String name, String target, Process process, Duration timeout,
      io.tpmkms.tls.ClientTls tls) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    ManagedChannel channel = Grpc.newChannelBuilder(target, tls.credentials(null)).build();
    try {
      String last = "no answer yet";
      while (System.nanoTime() < deadline) {
        if (!process.isAlive()) {
          throw new IllegalStateException(name + " exited with " + process.exitValue() + " before it was ready");
        }
        try {
          HealthCheckResponse r = HealthGrpc.newBlockingStub(channel)
              .withDeadlineAfter(1, TimeUnit.SECONDS)
              .check(HealthCheckRequest.getDefaultInstance());
          if (r.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
            return;
          }
          last = "health " + r.getStatus();
        } catch (StatusRuntimeException e) {
          last = e.getStatus().getCode().toString();
        }
        TimeUnit.MILLISECONDS.sleep(200);
      }
      throw new IllegalStateException(name + " not SERVING after " + timeout.toSeconds() + " s (" + last + ")");
    } finally {
      channel.shutdownNow();
    }
  }
}
