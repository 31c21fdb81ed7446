package io.tpmkms.key.api;

import io.grpc.stub.StreamObserver;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.tpmkms.key.crypto.MustBlock;
import io.tpmkms.key.error.ErrorCode;
import io.tpmkms.key.error.GrpcErrors;
import io.tpmkms.key.error.KmsException;
import io.tpmkms.key.error.Reasons;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Supplier;

/**
 * Where an RPC runs. gRPC delivers calls on the event loop; work that may
 * block (the database, a TPM) moves to the worker pool in exactly one hop,
 * and the answer is sent from there. Hot cryptographic calls on a cached,
 * in-process key run right on the event loop: no hop at all. If such a call
 * finds mid-way that it must block after all ({@link MustBlock}), it is
 * re-run on the worker pool; calls that have reached a backend never throw it.
 *
 * <p>Every outcome goes through {@link GrpcErrors}: exactly one response or one
 * mapped error per call, never UNKNOWN.
 */
final class Dispatch {
  private Dispatch() {}

  private static final Executor WORKERS = Infrastructure.getDefaultWorkerPool();

  /** Runs the call here (the event loop), falling back to a worker if it must block. */
  static <T> void inline(StreamObserver<T> out, Supplier<T> call) {
    T response;
    try {
      response = call.get();
    } catch (MustBlock e) {
      worker(out, call);
      return;
    } catch (Throwable t) {
      out.onError(GrpcErrors.toStatus(t));
      return;
    }
    out.onNext(response);
    out.onCompleted();
  }

  /** Runs the call on the worker pool. */
  static <T> void worker(StreamObserver<T> out, Supplier<T> call) {
    try {
      WORKERS.execute(() -> complete(out, call));
    } catch (RejectedExecutionException e) {
      out.onError(GrpcErrors.toStatus(new KmsException(ErrorCode.UNAVAILABLE, Reasons.INTERNAL,
          "the server is overloaded; retry", Map.of(), e)));
    }
  }

  /** Runs the call on this thread: the response, or exactly one mapped error. */
  static <T> void complete(StreamObserver<T> out, Supplier<T> call) {
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
}
