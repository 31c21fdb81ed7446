package io.tpmkms.policy.api;

import com.google.protobuf.Message;
import io.grpc.Context;
import io.grpc.stub.StreamObserver;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.tpmkms.policy.error.GrpcErrors;
import io.tpmkms.policy.error.PolicyException;
import io.tpmkms.policy.error.Reasons;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.platform.error.ErrorCode;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Supplier;

/**
 * Where an RPC runs and the one place where it ends. Calls that touch the
 * database move to the worker pool in one hop; decisions (memory and the
 * native engine only) run right on the event loop. Every call ends in exactly
 * one response or one status mapped by {@link GrpcErrors}, never UNKNOWN.
 */
final class Dispatch {
  private static final Executor WORKERS = Infrastructure.getDefaultWorkerPool();

  private Dispatch() {}

  /** Runs the call here (decisions: no blocking). */
  static <T extends Message> void inline(StreamObserver<T> out, Supplier<T> call) {
    T response;
    try {
      response = call.get();
    } catch (Throwable t) {
      out.onError(GrpcErrors.toStatus(t));
      return;
    }
    out.onNext(response);
    out.onCompleted();
  }

  /** Runs the call on the worker pool, carrying the gRPC context (caller, call info) along. */
  static <T extends Message> void worker(Message request, StreamObserver<T> out, Supplier<T> call) {
    CallInfo info = CallInfo.current();
    if (info != null) info.request(request);
    try {
      WORKERS.execute(Context.current().wrap(() -> inline(out, call)));
    } catch (RejectedExecutionException e) {
      out.onError(GrpcErrors.toStatus(new PolicyException(ErrorCode.UNAVAILABLE, Reasons.INTERNAL,
          "the server is overloaded; retry", Map.of(), e)));
    }
  }
}
