package io.tpmkms.audit.api;

import io.grpc.stub.StreamObserver;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.tpmkms.audit.error.AuditException;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.audit.error.GrpcErrors;
import io.tpmkms.audit.error.Reasons;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;

/**
 * Where an RPC runs (as in key-service). gRPC delivers calls on the event
 * loop; reads (queries, verification, export) move to the worker pool in one
 * hop. AppendEvents validates on the event loop and hands the events to the
 * single writer, which answers when they are committed: no thread waits.
 *
 * <p>Every outcome goes through {@link GrpcErrors}: exactly one response or
 * one mapped error per call, never UNKNOWN.
 */
final class Dispatch {
  private Dispatch() {}

  private static final Executor WORKERS = Infrastructure.getDefaultWorkerPool();

  /** Runs the call on the worker pool. */
  static <T> void worker(StreamObserver<T> out, Callable<T> call) {
    try {
      WORKERS.execute(() -> complete(out, call));
    } catch (RejectedExecutionException e) {
      out.onError(GrpcErrors.toStatus(new AuditException(ErrorCode.UNAVAILABLE, Reasons.OVERLOADED,
          "the server is overloaded; retry", Map.of(), e)));
    }
  }

  /** Runs a streaming call on the worker pool; the body sends its own messages and completes. */
  static <T> void workerStream(StreamObserver<T> out, StreamBody body) {
    try {
      WORKERS.execute(() -> {
        try {
          body.run();
        } catch (Throwable t) {
          out.onError(GrpcErrors.toStatus(t));
          return;
        }
        out.onCompleted();
      });
    } catch (RejectedExecutionException e) {
      out.onError(GrpcErrors.toStatus(new AuditException(ErrorCode.UNAVAILABLE, Reasons.OVERLOADED,
          "the server is overloaded; retry", Map.of(), e)));
    }
  }

  @FunctionalInterface
  interface StreamBody {
    void run() throws Exception;
  }

  /** Runs the call on this thread: the response, or exactly one mapped error. */
  static <T> void complete(StreamObserver<T> out, Callable<T> call) {
    T response;
    try {
      response = call.call();
    } catch (Throwable t) {
      out.onError(GrpcErrors.toStatus(t));
      return;
    }
    out.onNext(response);
    out.onCompleted();
  }
}
