package io.tpmkms.platform.rpc;

import com.google.protobuf.Message;
import com.google.rpc.ErrorInfo;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.GrpcErrors;
import io.tpmkms.platform.error.Reason;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.platform.tracing.Tracing;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;

/**
 * The one way a call goes through every tpmkms service, driven by its
 * {@link Rpc} declaration:
 *
 * <ol>
 *   <li><b>authenticate</b>: done before the call reaches here (the bearer-token interceptor sets the
 *       caller; the request gate has parsed the message and refused NUL and invalid UTF-8);
 *   <li><b>authorize</b> the declared action on the declared target ({@link Authorization}): fail
 *       closed, nothing runs before an ALLOW. A known decision costs nothing; otherwise it is asked
 *       for without blocking the event loop, and the call goes on, once allowed, off the loop;
 *   <li><b>run</b> where the declaration says ({@link Placement}, ADR 0010): the event loop, the
 *       worker pool, or for a key's use where its {@link KeyRouter} says (the TPM queue for TPM keys);
 *       an inline call that finds it must block ({@link MustBlock}) is re-run on a worker;
 *   <li><b>audit</b>: with {@link Auditing#everyCall()}, the call's event is made durable before
 *       the answer (unless the state change already wrote it in its own transaction); if it cannot be,
 *       the caller gets UNAVAILABLE (AUDIT_UNAVAILABLE) instead (fail closed);
 *   <li><b>answer</b>: exactly one response or one status mapped by the service's
 *       {@link GrpcErrors}, never UNKNOWN.
 * </ol>
 */
public final class Pipeline {
  private static final Executor WORKERS = Infrastructure.getDefaultWorkerPool();

  /** What a call does once authorized: its response, or a failure the service's errors map. */
  @FunctionalInterface
  public interface Handler<R> {
    R handle() throws Exception;
  }

  /** The body of a server-streaming call: sends its messages itself; the pipeline completes or fails the stream. */
  @FunctionalInterface
  public interface StreamBody {
    void run() throws Exception;
  }

  private final GrpcErrors errors;
  private final Authorization authorization;
  private final Auditing auditing;
  private final KeyRouter router;
  private final Reason overloaded;
  private final Executor tpmQueue;
  private final Tracing tracing;

  private Pipeline(Builder b) {
    this.errors = b.errors;
    this.tracing = b.tracing;
    this.authorization = b.authorization;
    this.auditing = b.auditing;
    this.router = b.router;
    this.overloaded = b.overloaded;
    this.tpmQueue = b.router == KeyRouter.WORKERS ? WORKERS : Executors.newSingleThreadExecutor(r -> {
      // One thread for every call on a TPM key: the TPM executes one command at a time anyway, and one
      // thread in front of it replaces a crowd of workers blocked on the TPM lock (fewer threads and
      // context switches on the CPU the TPM emulator also needs).
      Thread t = new Thread(r, "tpm-queue");
      t.setDaemon(true);
      return t;
    });
  }

  public static Builder builder(GrpcErrors errors, Reason overloaded) {
    return new Builder(errors, overloaded);
  }

  public GrpcErrors errors() { return errors; }

  /** A unary call whose handler returns its response. */
  public <Q extends Message, R extends Message> void unary(Rpc<Q, R> rpc, Q request, StreamObserver<R> out,
      Handler<R> handler) {
    CallInfo info = begin(rpc, request, out);
    if (info == BAD_CALL) return;
    Target target;
    Authorization.Verdict known;
    try {
      target = rpc.target(request);
      known = authorization.known(info, rpc.action(), target);
    } catch (Throwable t) {
      finish(rpc, info, request, out, null, t);
      return;
    }
    Executor executor = executorFor(rpc, request, target);
    if (known != null) {
      decided(known);
      allowedThen(known, rpc, target, executor, info, request, out, handler);
      return;
    }
    Context context = Context.current();
    java.util.concurrent.CompletableFuture<Authorization.Verdict> asked;
    try {
      asked = ask(info, rpc, target);
    } catch (Throwable t) {
      // an authorizer that throws instead of failing its future still answers through the error model
      finish(rpc, info, request, out, null, t);
      return;
    }
    asked.whenComplete((verdict, failure) -> context.run(() -> {
      if (failure != null) {
        finish(rpc, info, request, out, null, failure);
      } else {
        allowedThen(verdict, rpc, target, executor == null ? WORKERS : executor, info, request, out, handler);
      }
    }));
  }

  /**
   * A unary call answered later by someone else (the audit writer after its COMMIT): the handler runs
   * on the event loop, authorized and checked like any call, and returns the answer's future.
   */
  public <Q extends Message, R extends Message> void async(Rpc<Q, R> rpc, Q request, StreamObserver<R> out,
      Handler<? extends CompletionStage<R>> handler) {
    CallInfo info = begin(rpc, request, out);
    if (info == BAD_CALL) return;
    CompletionStage<R> answer;
    try {
      Target target = rpc.target(request);
      Authorization.Verdict v = authorization.known(info, rpc.action(), target);
      if (v == null) throw new IllegalStateException(rpc + ": asynchronous calls need a decision known in place");
      decided(v);
      if (!v.allowed()) throw authorization.denied(v, rpc.action(), target);
      answer = handler.handle();
    } catch (Throwable t) {
      finish(rpc, info, request, out, null, t);
      return;
    }
    answer.whenComplete((response, failure) -> finish(rpc, info, request, out, response, failure));
  }

  /**
   * A server-streaming call: authorized like a unary call (a decision that must be asked for is
   * awaited without blocking), its body on a worker. With {@link Auditing#everyCall()} its event is
   * written after the body has sent everything, before the stream completes; if it cannot be, the
   * stream ends UNAVAILABLE instead of OK.
   */
  public <Q extends Message, R extends Message> void stream(Rpc<Q, R> rpc, Q request, StreamObserver<R> out,
      StreamBody body) {
    CallInfo info = begin(rpc, request, out);
    if (info == BAD_CALL) return;
    Target target;
    Authorization.Verdict known;
    try {
      target = rpc.target(request);
      known = authorization.known(info, rpc.action(), target);
    } catch (Throwable t) {
      endStream(info, out, t);
      return;
    }
    if (known != null) {
      decided(known);
      streamIfAllowed(known, rpc, target, info, out, body);
      return;
    }
    Context context = Context.current();
    java.util.concurrent.CompletableFuture<Authorization.Verdict> asked;
    try {
      asked = ask(info, rpc, target);
    } catch (Throwable t) {
      endStream(info, out, t);
      return;
    }
    asked.whenComplete((verdict, failure) -> context.run(() -> {
      if (failure != null) {
        endStream(info, out, failure);
      } else {
        streamIfAllowed(verdict, rpc, target, info, out, body);
      }
    }));
  }

  private <R extends Message> void streamIfAllowed(Authorization.Verdict verdict, Rpc<?, R> rpc, Target target,
      CallInfo info, StreamObserver<R> out, StreamBody body) {
    if (!verdict.allowed()) {
      endStream(info, out, authorization.denied(verdict, rpc.action(), target));
      return;
    }
    try {
      WORKERS.execute(Context.current().wrap(() -> {
        try {
          body.run();
        } catch (Throwable t) {
          endStream(info, out, t);
          return;
        }
        endStream(info, out, null);
      }));
    } catch (RejectedExecutionException e) {
      endStream(info, out, overloaded(e));
    }
  }

  /** Completes (error null) or fails the stream, after its audit event when every call is audited. */
  private <R> void endStream(CallInfo info, StreamObserver<R> out, Throwable error) {
    StatusRuntimeException status = error == null ? null : errors.toStatus(error);
    if (info == null || !auditing.everyCall() || !auditing.enabled() || info.recorded()) {
      endStream(out, status);
      return;
    }
    String outcome = status == null ? "OK" : status.getStatus().getCode().name();
    record(info, 0, outcome, reasonOf(status)).whenComplete((ok, auditFailure) ->
        endStream(out, auditFailure != null ? errors.toStatus(auditFailure) : status));
  }

  private static void endStream(StreamObserver<?> out, StatusRuntimeException status) {
    if (status != null) {
      out.onError(status);
    } else {
      out.onCompleted();
    }
  }

  // ---- steps ------------------------------------------------------------------------------------

  /** A decision known in place (remembered, or authorization off): noted on the call's span. */
  private void decided(Authorization.Verdict v) {
    if (!tracing.enabled()) return;
    io.opentelemetry.api.trace.Span span = Tracing.current();
    if (span == null) return;
    span.setAttribute("tpmkms.authz.decision", v == Authorization.Verdict.NOT_EVALUATED ? "not_evaluated"
        : v.allowed() ? "allow" : "deny");
    span.setAttribute("tpmkms.authz.source", "cache");
  }

  /** Asks the authorizer, in an {@code authorize} span (the parent of the policy service's call). */
  private <Q extends Message> java.util.concurrent.CompletableFuture<Authorization.Verdict> ask(CallInfo info,
      Rpc<Q, ?> rpc, Target target) {
    if (!tracing.enabled()) return authorization.ask(info, rpc.action(), target);
    io.opentelemetry.api.trace.Span span = tracing.child("authorize");
    span.setAttribute("tpmkms.authz.action", rpc.action());
    java.util.concurrent.CompletableFuture<Authorization.Verdict> asked;
    Context traced = Tracing.context(span);
    Context previous = traced.attach();
    try {
      asked = authorization.ask(info, rpc.action(), target);
    } catch (RuntimeException | Error e) {
      span.setStatus(io.opentelemetry.api.trace.StatusCode.ERROR);
      span.end();
      throw e;
    } finally {
      traced.detach(previous);
    }
    return asked.whenComplete((v, failure) -> {
      if (failure != null) {
        span.setStatus(io.opentelemetry.api.trace.StatusCode.ERROR, "no decision");
      } else {
        span.setAttribute("tpmkms.authz.decision", v.allowed() ? "allow" : "deny");
        span.setAttribute("tpmkms.authz.source", "policy_service");
      }
      span.end();
    });
  }

  /**
   * The call's audit event. No span of its own (it would double the spans of a cached Encrypt, and
   * the call's span already includes the wait): the event carries the call's span as its
   * {@code trace_parent}, so the audit service's {@code audit.append} is a child of the call.
   */
  private java.util.concurrent.CompletableFuture<Void> record(CallInfo info, int version, String outcome,
      String reason) {
    return auditing.record(info, info.key(), version, outcome, reason);
  }

  /** Marks a call that was answered already (a handler that does not match its declaration). */
  private static final CallInfo BAD_CALL = CallInfo.system("pipeline/bad-call");

  private <Q extends Message> CallInfo begin(Rpc<Q, ?> rpc, Q request, StreamObserver<?> out) {
    CallInfo info = CallInfo.current();
    if (info == null) return null;
    if (!rpc.fullName().equals(info.operation)) {
      // a handler that passes another RPC's declaration: a bug, never a decision made on wrong facts
      out.onError(errors.toStatus(new IllegalStateException(
          info.operation + " was served with the declaration of " + rpc.fullName())));
      return BAD_CALL;
    }
    // the digest and key name go into every event: every call's with everyCall(), else only the changes'
    if (auditing.enabled() && (auditing.everyCall() || rpc.changesState())) {
      info.request(request, rpc.secret(), auditKey(rpc, request));
    }
    return info;
  }

  private static <Q extends Message> String auditKey(Rpc<Q, ?> rpc, Q request) {
    try {
      return rpc.target(request).auditKey();
    } catch (RuntimeException e) {
      return "";
    }
  }

  private <Q extends Message> Executor executorFor(Rpc<Q, ?> rpc, Q request, Target target) {
    return switch (rpc.placement()) {
      case EVENT_LOOP -> null;
      case WORKER -> WORKERS;
      case KEY_USE_LIGHT, KEY_USE_HEAVY -> switch (router.route(target.key(),
          rpc.placement() == Placement.KEY_USE_LIGHT)) {
        case HERE -> null;
        case WORKER -> WORKERS;
        case TPM_QUEUE -> tpmQueue;
      };
    };
  }

  private <Q extends Message, R extends Message> void allowedThen(Authorization.Verdict verdict, Rpc<Q, R> rpc,
      Target target, Executor executor, CallInfo info, Q request, StreamObserver<R> out, Handler<R> handler) {
    if (!verdict.allowed()) {
      finish(rpc, info, request, out, null, authorization.denied(verdict, rpc.action(), target));
    } else if (executor == null) {
      here(rpc, info, request, out, handler);
    } else {
      on(executor, rpc, info, request, out, handler);
    }
  }

  private <Q extends Message, R extends Message> void here(Rpc<Q, R> rpc, CallInfo info, Q request,
      StreamObserver<R> out, Handler<R> handler) {
    R response;
    try {
      response = handler.handle();
    } catch (MustBlock e) {
      on(WORKERS, rpc, info, request, out, handler);
      return;
    } catch (Throwable t) {
      finish(rpc, info, request, out, null, t);
      return;
    }
    finish(rpc, info, request, out, response, null);
  }

  private <Q extends Message, R extends Message> void on(Executor executor, Rpc<Q, R> rpc, CallInfo info, Q request,
      StreamObserver<R> out, Handler<R> handler) {
    try {
      executor.execute(Context.current().wrap(() -> {
        R response;
        try {
          response = handler.handle();
        } catch (Throwable t) {
          finish(rpc, info, request, out, null, t);
          return;
        }
        finish(rpc, info, request, out, response, null);
      }));
    } catch (RejectedExecutionException e) {
      finish(rpc, info, request, out, null, overloaded(e));
    }
  }

  private ServiceException overloaded(Throwable cause) {
    return new ServiceException(ErrorCode.UNAVAILABLE, overloaded, "the server is overloaded; retry", Map.of(), cause);
  }

  private <Q extends Message, R extends Message> void finish(Rpc<Q, R> rpc, CallInfo info, Q request,
      StreamObserver<R> out, R response, Throwable error) {
    StatusRuntimeException status = error == null ? null : errors.toStatus(error);
    if (info == null || !auditing.everyCall() || !auditing.enabled() || info.recorded()) {
      send(out, response, status);
      return;
    }
    String outcome = status == null ? "OK" : status.getStatus().getCode().name();
    record(info, rpc.version(request, response), outcome, reasonOf(status))
        .whenComplete((ok, auditFailure) -> {
          if (auditFailure != null) {
            send(out, null, errors.toStatus(auditFailure));
          } else {
            send(out, response, status);
          }
        });
  }

  private static <T> void send(StreamObserver<T> out, T response, StatusRuntimeException status) {
    if (status != null) {
      out.onError(status);
    } else {
      out.onNext(response);
      out.onCompleted();
    }
  }

  private static String reasonOf(StatusRuntimeException status) {
    if (status == null) return "";
    com.google.rpc.Status st = StatusProto.fromThrowable(status);
    if (st == null) return "";
    for (var any : st.getDetailsList()) {
      if (any.is(ErrorInfo.class)) {
        try {
          return any.unpack(ErrorInfo.class).getReason();
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
          return "";
        }
      }
    }
    return "";
  }

  public static final class Builder {
    private final GrpcErrors errors;
    private final Reason overloaded;
    private Authorization authorization = Authorization.OPEN;
    private Auditing auditing = Auditing.NONE;
    private KeyRouter router = KeyRouter.WORKERS;
    private Tracing tracing = Tracing.off();

    private Builder(GrpcErrors errors, Reason overloaded) {
      this.errors = errors;
      this.overloaded = overloaded;
    }

    public Builder authorization(Authorization authorization) {
      this.authorization = authorization;
      return this;
    }

    public Builder auditing(Auditing auditing) {
      this.auditing = auditing;
      return this;
    }

    public Builder keys(KeyRouter router) {
      this.router = router;
      return this;
    }

    /** The service's traces: a span for each authorization asked, cached decisions noted on the call's span. */
    public Builder tracing(Tracing tracing) {
      this.tracing = tracing;
      return this;
    }

    public Pipeline build() {
      return new Pipeline(this);
    }
  }
}
