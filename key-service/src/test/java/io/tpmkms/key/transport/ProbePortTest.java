package io.tpmkms.key.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse.ServingStatus;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.tpmkms.platform.health.HealthPort;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.testing.PostgresResource;
import jakarta.inject.Inject;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The probe port (tpmkms.health.port) that Kubernetes grpc probes reach while the service port
 * speaks TLS: it answers the health protocol in plaintext, and nothing else.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@TestProfile(ProbePortTest.WithProbePort.class)
class ProbePortTest {
  public static class WithProbePort implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
      return Map.of("tpmkms.health.port", "0", "tpmkms.health.host", "127.0.0.1");
    }
  }

  @Inject HealthPort probes;

  private ServingStatus check(ManagedChannel ch, String service) {
    return HealthGrpc.newBlockingStub(ch).withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus();
  }

  @Test
  void probePort_answersHealth_inPlaintext_andServesNoRpc() throws Exception {
    assertTrue(probes.port() > 0, "the probe port is open");
    ManagedChannel ch = ManagedChannelBuilder.forAddress("127.0.0.1", probes.port()).usePlaintext().build();
    try {
      assertEquals(ServingStatus.SERVING, check(ch, ""));
      assertEquals(ServingStatus.SERVING, check(ch, "readiness"));
      assertEquals(ServingStatus.SERVING, check(ch, "liveness"));
      assertEquals(ServingStatus.SERVING, check(ch, "tpmkms.key.v1.KeyService"));
      StatusRuntimeException unknown = assertThrows(StatusRuntimeException.class, () -> check(ch, "no.such.Service"));
      assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
      StatusRuntimeException rpc = assertThrows(StatusRuntimeException.class, () -> KeyServiceGrpc.newBlockingStub(ch)
          .withDeadlineAfter(5, TimeUnit.SECONDS).getKey(GetKeyRequest.newBuilder().setKey("a/b").build()));
      assertEquals(Status.Code.UNIMPLEMENTED, rpc.getStatus().getCode(), "the probe port serves no KMS call");
    } finally {
      ch.shutdownNow();
    }
  }
}
