package io.tpmkms.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.ErrorInfo;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.function.Executable;

/**
 * A real gRPC channel over a loopback socket to a service under test (by default the Quarkus test
 * app's gRPC test port), stubs with a fresh 60 s deadline, and the status assertions every
 * service's tests use.
 */
public class GrpcClient implements AutoCloseable {
  public final ManagedChannel channel;

  /** To the Quarkus app under test ({@code quarkus.grpc.server.test-port}). */
  public GrpcClient() {
    this(ConfigProvider.getConfig().getValue("quarkus.grpc.server.test-port", Integer.class));
  }

  public GrpcClient(int port) {
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext()
        .maxInboundMessageSize(16 * 1024 * 1024).build();
  }

  /** A key service stub with a fresh deadline. */
  public KeyServiceGrpc.KeyServiceBlockingStub keys() {
    return KeyServiceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  /** An audit service stub with a fresh deadline. */
  public AuditServiceGrpc.AuditServiceBlockingStub audit() {
    return AuditServiceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  /** A policy service stub with a fresh deadline, as the anonymous caller. */
  public PolicyServiceGrpc.PolicyServiceBlockingStub policies() {
    return PolicyServiceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  /** Asserts the call fails with exactly this status and ErrorInfo reason; returns the ErrorInfo. */
  public static ErrorInfo assertStatus(Status.Code code, String reason, Executable call) {
    return errorInfo(assertFailure(code, reason, call));
  }

  /** As {@link #assertStatus}, returning the exception (for its status description). */
  public static StatusRuntimeException assertFailure(Status.Code code, String reason, Executable call) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call);
    assertEquals(code, e.getStatus().getCode(), () -> "status: " + e.getStatus());
    assertEquals(reason, errorInfo(e).getReason(), () -> "reason for " + e.getStatus());
    assertEquals("tpmkms.io", errorInfo(e).getDomain());
    return e;
  }

  private static ErrorInfo errorInfo(StatusRuntimeException e) {
    com.google.rpc.Status st = StatusProto.fromThrowable(e);
    assertTrue(st != null && st.getDetailsCount() > 0, "no ErrorInfo on " + e.getStatus());
    try {
      return st.getDetails(0).unpack(ErrorInfo.class);
    } catch (com.google.protobuf.InvalidProtocolBufferException ex) {
      throw new AssertionError(ex);
    }
  }

  @Override
  public void close() {
    channel.shutdownNow();
  }
}
