package io.tpmkms.key.audit;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.quarkus.grpc.GlobalInterceptor;
import jakarta.enterprise.context.ApplicationScoped;
import java.net.SocketAddress;

/** Puts a {@link CallInfo} for every incoming call into the gRPC context. */
@GlobalInterceptor
@ApplicationScoped
public class CallInfoInterceptor implements ServerInterceptor {
  static final Metadata.Key<String> REQUEST_ID = Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    SocketAddress peer = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
    String requestId = headers.get(REQUEST_ID);
    if (requestId == null || requestId.isEmpty() || requestId.length() > 128) {
      requestId = CallInfo.randomId();
    }
    // No authentication yet (the policy-service issue): every caller is "anonymous".
    CallInfo info = new CallInfo(call.getMethodDescriptor().getFullMethodName(),
        peer == null ? "" : peer.toString(), requestId, "anonymous");
    return Contexts.interceptCall(Context.current().withValue(CallInfo.KEY, info), call, headers, next);
  }
}
