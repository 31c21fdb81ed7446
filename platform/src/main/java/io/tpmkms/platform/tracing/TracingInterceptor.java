package io.tpmkms.platform.tracing;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.opentelemetry.api.trace.Span;
import io.quarkus.grpc.GlobalInterceptor;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One SERVER span per incoming call (issue 18), named by its full gRPC method, child of the
 * caller's {@code traceparent}, ended with the call's status code (and stable error reason), and
 * current in the call's gRPC context for everything the call does. Outside authentication, so a
 * refused token is traced too. With tracing off, calls pass straight through.
 */
@GlobalInterceptor
@ApplicationScoped
public class TracingInterceptor implements ServerInterceptor, jakarta.enterprise.inject.spi.Prioritized {
  private final Tracing tracing;

  public TracingInterceptor(Tracing tracing) {
    this.tracing = tracing;
  }

  /** Inside {@code RpcMetrics} and {@code ServerInfo}, outside authentication and everything else. */
  @Override
  public int getPriority() {
    return 1_800_000;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    if (!tracing.enabled()) return next.startCall(call, headers);
    Span span = tracing.server(call.getMethodDescriptor().getFullMethodName(), headers);
    AtomicBoolean ended = new AtomicBoolean();
    ServerCall<Q, R> traced = new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
      @Override
      public void close(Status status, Metadata trailers) {
        if (ended.compareAndSet(false, true)) Tracing.end(span, status, trailers, true);
        super.close(status, trailers);
      }
    };
    ServerCall.Listener<Q> listener = Contexts.interceptCall(Context.current().withValue(Tracing.SPAN, span),
        traced, headers, next);
    return new io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
      @Override
      public void onCancel() {
        try {
          super.onCancel();
        } finally {
          if (ended.compareAndSet(false, true)) Tracing.end(span, Status.CANCELLED, null, true);
        }
      }
    };
  }
}
