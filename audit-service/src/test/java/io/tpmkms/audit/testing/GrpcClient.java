package io.tpmkms.audit.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Timestamp;
import com.google.rpc.ErrorInfo;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import io.tpmkms.proto.audit.v1.Decision;
import java.time.Instant;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.function.Executable;

/** A real gRPC channel over a socket to the audit service under test, event builders, status assertions. */
public final class GrpcClient implements AutoCloseable {
  public final ManagedChannel channel;

  public GrpcClient() {
    this(ConfigProvider.getConfig().getValue("quarkus.grpc.server.test-port", Integer.class));
  }

  public GrpcClient(int port) {
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext()
        .maxInboundMessageSize(16 * 1024 * 1024).build();
  }

  /** A stub with a fresh deadline. */
  public AuditServiceGrpc.AuditServiceBlockingStub audit() {
    return AuditServiceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  /** A complete event with a fresh id. */
  public static AuditEvent.Builder event(String principal, String key, String operation) {
    Instant now = Instant.now();
    return AuditEvent.newBuilder()
        .setEventId(UUID.randomUUID().toString())
        .setTime(Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()))
        .setService("key-service")
        .setPrincipal(principal)
        .setClient("127.0.0.1:5555")
        .setOperation(operation)
        .setKey(key)
        .setKeyVersion(1)
        .setDecision(Decision.ALLOW)
        .setDecisionReason("rule admin-all")
        .setOutcome("OK")
        .setRequestId(UUID.randomUUID().toString());
  }

  /** Asserts the call fails with exactly this status and ErrorInfo reason; returns the ErrorInfo. */
  public static ErrorInfo assertStatus(Status.Code code, String reason, Executable call) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call);
    assertEquals(code, e.getStatus().getCode(), () -> "status: " + e.getStatus());
    com.google.rpc.Status st = StatusProto.fromThrowable(e);
    assertTrue(st != null && st.getDetailsCount() > 0, "no ErrorInfo on " + e.getStatus());
    try {
      ErrorInfo info = st.getDetails(0).unpack(ErrorInfo.class);
      assertEquals(reason, info.getReason(), () -> "reason for " + e.getStatus());
      assertEquals("tpmkms.io", info.getDomain());
      return info;
    } catch (com.google.protobuf.InvalidProtocolBufferException ex) {
      throw new AssertionError(ex);
    }
  }

  @Override
  public void close() {
    channel.shutdownNow();
  }
}
