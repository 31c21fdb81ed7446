package io.tpmkms.audit.testing;

import io.grpc.Status;
import io.tpmkms.proto.audit.v1.GetCheckpointRequest;
import io.tpmkms.testing.GrpcTest;

/** A test class that calls the audit service under test through {@link #client}, a real gRPC channel. */
public abstract class ClientTest extends GrpcTest {

  /** Waits up to 15 s for a checkpoint at or after {@code atLeast}. */
  public static io.tpmkms.proto.audit.v1.Checkpoint awaitCheckpoint(long atLeast) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 15_000;
    while (System.currentTimeMillis() < deadline) {
      try {
        var cp = client.audit().getCheckpoint(GetCheckpointRequest.getDefaultInstance()).getCheckpoint();
        if (cp.getSequence() >= atLeast) return cp;
      } catch (io.grpc.StatusRuntimeException e) {
        if (e.getStatus().getCode() != Status.Code.NOT_FOUND) throw e;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("no checkpoint at or after " + atLeast);
  }
}
