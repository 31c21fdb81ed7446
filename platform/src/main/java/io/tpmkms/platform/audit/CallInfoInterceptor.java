package io.tpmkms.platform.audit;

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
import io.tpmkms.platform.auth.Caller;
import io.tpmkms.platform.auth.Principal;

/** Puts a {@link CallInfo} for every incoming call into the gRPC context. */
@GlobalInterceptor
@ApplicationScoped
public class CallInfoInterceptor implements ServerInterceptor, jakarta.enterprise.inject.spi.Prioritized {
  static final Metadata.Key<String> REQUEST_ID = Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);

  /** After authentication (which sets the caller), before everything else. */
  @Override
  public int getPriority() {
    return 900_000;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    SocketAddress peer = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
    String requestId = headers.get(REQUEST_ID);
    if (requestId == null || requestId.isEmpty() || requestId.length() > 128) {
      requestId = CallInfo.randomId();
    }
    Principal caller = Caller.current();
    if (caller == null) caller = Principal.ANONYMOUS;
    String address = peer == null ? "" : peer.toString();
    String client = caller.clientId().isEmpty() ? address : caller.clientId() + " " + address;
    CallInfo info = new CallInfo(call.getMethodDescriptor().getFullMethodName(), client, requestId, caller);
    return Contexts.interceptCall(Context.current().withValue(CallInfo.KEY, info), call, headers, next);
  }
}
