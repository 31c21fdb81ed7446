package io.tpmkms.policy.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.ErrorInfo;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.MetadataUtils;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.platform.auth.Principal;
import java.util.concurrent.TimeUnit;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.function.Executable;

/** A real gRPC channel over a socket to the policy service under test, and status assertions. */
public final class GrpcClient implements AutoCloseable {
  public final ManagedChannel channel;

  public GrpcClient() {
    int port = ConfigProvider.getConfig().getValue("quarkus.grpc.server.test-port", Integer.class);
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
  }

  /** A stub as the anonymous caller (tpmkms.auth.mode=none: trusted, loopback). */
  public PolicyServiceGrpc.PolicyServiceBlockingStub policies() {
    return PolicyServiceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  /** A stub whose calls come from {@code caller} (see {@link TestPrincipalInterceptor}). */
  public PolicyServiceGrpc.PolicyServiceBlockingStub as(Principal caller) {
    Metadata m = new Metadata();
    m.put(TestPrincipalInterceptor.HEADER, TestPrincipalInterceptor.encode(caller));
    return policies().withInterceptors(MetadataUtils.newAttachHeadersInterceptor(m));
  }

  /** Asserts the call fails with exactly this status and ErrorInfo reason; returns the exception. */
  public static StatusRuntimeException assertStatus(Status.Code code, String reason, Executable call) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call);
    assertEquals(code, e.getStatus().getCode(), () -> "status: " + e.getStatus());
    com.google.rpc.Status st = StatusProto.fromThrowable(e);
    assertTrue(st != null && st.getDetailsCount() > 0, "no ErrorInfo on " + e.getStatus());
    try {
      ErrorInfo info = st.getDetails(0).unpack(ErrorInfo.class);
      assertEquals(reason, info.getReason(), () -> "reason for " + e.getStatus());
      assertEquals("tpmkms.io", info.getDomain());
      return e;
    } catch (com.google.protobuf.InvalidProtocolBufferException ex) {
      throw new AssertionError(ex);
    }
  }

  @Override
  public void close() {
    channel.shutdownNow();
  }
}
