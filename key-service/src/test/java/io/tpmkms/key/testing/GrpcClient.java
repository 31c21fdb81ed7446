package io.tpmkms.key.testing;

import com.google.rpc.ErrorInfo;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A real gRPC channel over a socket to the key service under test, and status assertions. */
public final class GrpcClient implements AutoCloseable {
  public final ManagedChannel channel;
  public final KeyServiceGrpc.KeyServiceBlockingStub stub;

  public GrpcClient() {
    int port = ConfigProvider.getConfig().getValue("quarkus.grpc.server.test-port", Integer.class);
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    stub = KeyServiceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  /** A stub with a fresh deadline. */
  public KeyServiceGrpc.KeyServiceBlockingStub keys() {
    return KeyServiceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
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
