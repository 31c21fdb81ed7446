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

  /** One item's outcome in a batch: its response, or the status it failed with (as the single call's). */
  public record ItemResult<O>(O response, com.google.rpc.Status error) {
    public boolean ok() { return error == null; }
  }

  /** What one allowed item does: the single call's handler, for that item. */
  @FunctionalInterface
  public interface ItemHandler<I, O> {
    O handle(I item) throws Exception;
  }

  /** The batch's response from its items' outcomes, in the items' order. */
  @FunctionalInterface
  public interface BatchAnswer<R, O> {
    R answer(java.util.List<ItemResult<O>> results);
  }

  /**
   * A batch call ({@link Rpc.Builder#batchOf}): 1 to max items of the single RPC {@code item}, each
   * authorized, run and audited as that RPC declares, and answered on its own.
   *
   * <ol>
   *   <li>a malformed batch (no item, too many) fails the call, audited as one record of the call;
   *   <li>one decision per distinct target among the items (a remembered decision costs nothing, the
   *       others are asked for at once, in parallel); an item whose key is denied, invalid, or could
   *       not be decided gets that error, the others go on;
   *   <li>allowed items run in order where their key's use runs: a TPM key's on the TPM queue (one
   *       task for all of them), the rest on one worker;
   *   <li>one audit record per item (operation the batch's, key and version the item's, details
   *       "item i of n", decision the item key's), all made durable before the answer; if they cannot
   *       be the call fails UNAVAILABLE (fail closed), as a single call would.
   * </ol>
   */
  @SuppressWarnings("unchecked")
  public <Q extends Message, R extends Message, I extends Message, O extends Message> void batch(Rpc<Q, R> rpc,
      Rpc<I, O> item, Q request, StreamObserver<R> out, ItemHandler<I, O> handler, BatchAnswer<R, O> answer) {
    CallInfo info = begin(rpc, request, out);
    if (info == BAD_CALL) return;
    java.util.List<I> items;
    try {
      Rpc.Batch<Q, ?> batch = rpc.batch();
      if (batch == null || batch.item() != item) {
        throw new IllegalStateException(rpc + " is not declared as a batch of " + item);
      }
      items = (java.util.List<I>) batch.items().apply(request);
      if (items.isEmpty() || items.size() > batch.max()) {
        throw new ServiceException(ErrorCode.INVALID_ARGUMENT, io.tpmkms.platform.error.CommonReason.INVALID_REQUEST,
            "a batch holds 1 to " + batch.max() + " items; this one has " + items.size(),
            Map.of("items", Integer.toString(items.size()), "max_items", Integer.toString(batch.max())), null);
      }
    } catch (Throwable t) {
      finish(rpc, info, request, out, null, t);
      return;
    }
    int n = items.size();
    CallInfo asking = info == null ? null : info.item(0, n); // the caller, for the decisions
    Target[] targets = new Target[n];
    java.util.concurrent.CompletableFuture<Authorization.Verdict>[] verdicts = new java.util.concurrent.CompletableFuture[n];
    Map<Target, java.util.concurrent.CompletableFuture<Authorization.Verdict>> decisions = new java.util.HashMap<>();
    for (int i = 0; i < n; i++) {
      try {
        Target t = item.target(items.get(i));
        targets[i] = t;
        verdicts[i] = decisions.computeIfAbsent(t, x -> decide(asking, item, x));
      } catch (Throwable e) {
        verdicts[i] = java.util.concurrent.CompletableFuture.failedFuture(e);
      }
    }
    Context context = Context.current();
    java.util.concurrent.CompletableFuture.allOf(decisions.values().toArray(new java.util.concurrent.CompletableFuture[0]))
        .whenComplete((ignored, failure) -> context.run(() ->
            runItems(rpc, item, info, items, targets, verdicts, out, handler, answer)));
  }

  /** The decision about one target of a batch: known in place, or asked (never throws: a failed future). */
  private <I extends Message> java.util.concurrent.CompletableFuture<Authorization.Verdict> decide(CallInfo asking,
      Rpc<I, ?> item, Target target) {
    try {
      Authorization.Verdict known = authorization.known(asking, item.action(), target);
      if (known != null) return java.util.concurrent.CompletableFuture.completedFuture(known);
      return ask(asking, item, target);
    } catch (Throwable t) {
      return java.util.concurrent.CompletableFuture.failedFuture(t);
    }
  }

  private <Q extends Message, R extends Message, I extends Message, O extends Message> void runItems(Rpc<Q, R> rpc,
      Rpc<I, O> item, CallInfo info, java.util.List<I> items, Target[] targets,
      java.util.concurrent.CompletableFuture<Authorization.Verdict>[] verdicts, StreamObserver<R> out,
      ItemHandler<I, O> handler, BatchAnswer<R, O> answer) {
    int n = items.size();
    Object[] results = new Object[n]; // O, or the Throwable the item failed with
    java.util.List<Integer> onTpm = new java.util.ArrayList<>();
    java.util.List<Integer> onWorker = new java.util.ArrayList<>();
    for (int i = 0; i < n; i++) {
      Authorization.Verdict v;
      try {
        v = verdicts[i].join();
      } catch (java.util.concurrent.CompletionException e) {
        results[i] = e.getCause() != null ? e.getCause() : e;
        continue;
      } catch (Throwable t) {
        results[i] = t;
        continue;
      }
      if (!v.allowed()) {
        results[i] = authorization.denied(v, item.action(), targets[i]);
      } else if (executorFor(item, items.get(i), targets[i]) == tpmQueue && tpmQueue != WORKERS) {
        onTpm.add(i);
      } else {
        onWorker.add(i);
      }
    }
    Runnable done = () -> auditItems(rpc, item, info, items, targets, verdicts, results, out, answer);
    java.util.concurrent.atomic.AtomicInteger pending = new java.util.concurrent.atomic.AtomicInteger(
        (onTpm.isEmpty() ? 0 : 1) + (onWorker.isEmpty() ? 0 : 1));
    if (pending.get() == 0) {
      done.run();
      return;
    }
    if (!onWorker.isEmpty()) {
      Runnable task = () -> {
        for (int i : onWorker) {
          try {
            results[i] = handler.handle(items.get(i));
          } catch (Throwable t) {
            results[i] = t;
          }
        }
        if (pending.decrementAndGet() == 0) done.run();
      };
      try {
        WORKERS.execute(Context.current().wrap(task));
      } catch (RejectedExecutionException e) {
        for (int i : onWorker) results[i] = overloaded(e);
        if (pending.decrementAndGet() == 0) done.run();
      }
    }
    if (!onTpm.isEmpty()) {
      onTpmQueue(onTpm, 0, items, handler, results, Context.current(), () -> {
        if (pending.decrementAndGet() == 0) done.run();
      });
    }
  }

  /**
   * Runs a batch's TPM items one at a time on the TPM queue, each queued when the one before it is done:
   * calls that arrive meanwhile wait for one item, not for the whole batch (a thousand TPM signatures
   * take seconds).
   */
  private <I extends Message, O extends Message> void onTpmQueue(java.util.List<Integer> indexes, int next,
      java.util.List<I> items, ItemHandler<I, O> handler, Object[] results, Context context, Runnable done) {
    int i = indexes.get(next);
    try {
      tpmQueue.execute(context.wrap(() -> {
        try {
          results[i] = handler.handle(items.get(i));
        } catch (Throwable t) {
          results[i] = t;
        }
        if (next + 1 < indexes.size()) {
          onTpmQueue(indexes, next + 1, items, handler, results, context, done);
        } else {
          done.run();
        }
      }));
    } catch (RejectedExecutionException e) {
      for (int k = next; k < indexes.size(); k++) results[indexes.get(k)] = overloaded(e);
      done.run();
    }
  }

  private <Q extends Message, R extends Message, I extends Message, O extends Message> void auditItems(Rpc<Q, R> rpc,
      Rpc<I, O> item, CallInfo info, java.util.List<I> items, Target[] targets,
      java.util.concurrent.CompletableFuture<Authorization.Verdict>[] verdicts, Object[] results,
      StreamObserver<R> out, BatchAnswer<R, O> answer) {
    int n = items.size();
    java.util.List<ItemResult<O>> outcomes = new java.util.ArrayList<>(n);
    boolean audit = info != null && auditing.everyCall() && auditing.enabled();
    java.util.concurrent.CompletableFuture<?>[] records = new java.util.concurrent.CompletableFuture<?>[audit ? n : 0];
    for (int i = 0; i < n; i++) {
      @SuppressWarnings("unchecked")
      O response = results[i] instanceof Throwable ? null : (O) results[i];
      StatusRuntimeException status = results[i] instanceof Throwable t ? errors.toStatus(t) : null;
      outcomes.add(new ItemResult<>(response, status == null ? null : statusProto(status)));
      if (!audit) continue;
      try {
        CallInfo one = info.item(i, n);
        one.request(items.get(i), item.secret(), targets[i] == null ? "" : targets[i].auditKey());
        Authorization.Verdict v = verdicts[i].isDone() && !verdicts[i].isCompletedExceptionally()
            ? verdicts[i].join() : null;
        if (v != null && v != Authorization.Verdict.NOT_EVALUATED) {
          one.decided(v.allowed() ? io.tpmkms.proto.audit.v1.Decision.ALLOW : io.tpmkms.proto.audit.v1.Decision.DENY,
              v.reason());
        }
        records[i] = auditing.record(one, one.key(), item.version(items.get(i), response),
            status == null ? "OK" : status.getStatus().getCode().name(), reasonOf(status));
      } catch (Throwable t) {
        records[i] = java.util.concurrent.CompletableFuture.failedFuture(t);
      }
    }
    java.util.concurrent.CompletableFuture.allOf(records).whenComplete((ok, auditFailure) -> {
      if (auditFailure != null) {
        Throwable cause = auditFailure instanceof java.util.concurrent.CompletionException c && c.getCause() != null
            ? c.getCause() : auditFailure;
        send(out, null, errors.toStatus(cause));
        return;
      }
      R response;
      try {
        response = answer.answer(outcomes);
      } catch (Throwable t) {
        send(out, null, errors.toStatus(t));
        return;
      }
      send(out, response, null);
    });
  }

  /** The google.rpc.Status (code, message, ErrorInfo) of a status the error model made. */
  private static com.google.rpc.Status statusProto(StatusRuntimeException status) {
    com.google.rpc.Status st = StatusProto.fromThrowable(status);
    if (st != null) return st;
    return com.google.rpc.Status.newBuilder().setCode(status.getStatus().getCode().value())
        .setMessage(String.valueOf(status.getStatus().getDescription())).build();
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
