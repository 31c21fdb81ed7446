package io.tpmkms.policy.testing;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.quarkus.grpc.GlobalInterceptor;
import io.tpmkms.platform.auth.Caller;
import io.tpmkms.platform.auth.Principal;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.Base64;

/**
 * Tests only (never in the service jar): with {@code tpmkms.auth.mode=none}
 * a test names the caller in a header, so caller authorization can be
 * exercised without Keycloak. Runs after the token interceptor (which sets
 * the anonymous caller) and before the call-info interceptor (which reads it).
 */
@GlobalInterceptor
@ApplicationScoped
public class TestPrincipalInterceptor implements ServerInterceptor, jakarta.enterprise.inject.spi.Prioritized {
  public static final Metadata.Key<String> HEADER =
      Metadata.Key.of("x-tpmkms-test-principal", Metadata.ASCII_STRING_MARSHALLER);

  @Override
  public int getPriority() {
    return 950_000;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    String h = headers.get(HEADER);
    if (h == null) return next.startCall(call, headers);
    try {
      Principal p = Principal.fromProto(io.tpmkms.proto.policy.v1.Principal.parseFrom(Base64.getDecoder().decode(h)));
      return Contexts.interceptCall(Caller.with(Context.current(), p), call, headers, next);
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      throw new IllegalArgumentException(e);
    }
  }

  /** The header value naming {@code p} as the caller. */
  public static String encode(Principal p) {
    return Base64.getEncoder().encodeToString(p.toProto().toByteArray());
  }
}
