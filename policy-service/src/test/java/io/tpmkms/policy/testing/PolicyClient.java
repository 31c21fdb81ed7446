package io.tpmkms.policy.testing;

import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import io.tpmkms.platform.auth.Principal;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.testing.GrpcClient;

/** {@link GrpcClient} to the policy service under test, with calls as a chosen caller. */
public final class PolicyClient extends GrpcClient {

  /** A stub whose calls come from {@code caller} (see {@link TestPrincipalInterceptor}). */
  public PolicyServiceGrpc.PolicyServiceBlockingStub as(Principal caller) {
    Metadata m = new Metadata();
    m.put(TestPrincipalInterceptor.HEADER, TestPrincipalInterceptor.encode(caller));
    return policies().withInterceptors(MetadataUtils.newAttachHeadersInterceptor(m));
  }
}
