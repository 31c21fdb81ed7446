package io.tpmkms.key.api;

import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import com.google.rpc.ErrorInfo;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.tpmkms.platform.audit.AuditLog;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.key.authz.Authorizer;
import io.tpmkms.key.crypto.MustBlock;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.key.error.GrpcErrors;
import io.tpmkms.key.error.KmsException;
import io.tpmkms.key.error.Reasons;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Supplier;

/**
 * Where an RPC runs, and the one place where it ends. gRPC delivers calls on
 * the event loop; work that may block (the database, a TPM) moves to the
 * worker pool in exactly one hop (ADR 0010). Hot cryptographic calls on a
 * cached, in-process key run right on the event loop; if such a call finds
 * mid-way that it must block ({@link MustBlock}, thrown before any effect), it
 * is re-run on a worker.
 *
 * <p>Every call is authorized first ({@link Authorizer}: fail closed, nothing
 * runs without an ALLOW when authentication is on).
 *
 * <p>Every call ends here: its audit event is made durable first — unless a
 * state change already wrote it in its own transaction — and only then is the
 * response or the mapped error sent. If the event cannot be made durable the
 * caller gets UNAVAILABLE (AUDIT_UNAVAILABLE) instead (fail closed). Exactly
 * one response or one mapped status per call, never UNKNOWN.
 */
@ApplicationScoped
public class Dispatch {
  private static final Executor WORKERS = Infrastructure.getDefaultWorkerPool();
  private static final Executor TPM_QUEUE = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "tpm-queue");
    t.setDaemon(true);
    return t;
  });

  private final AuditLog audit;
  private final Authorizer authorizer;

  public Dispatch(AuditLog audit, Authorizer authorizer) {
    this.audit = audit;
    this.authorizer = authorizer;
  }

  /** Runs the call here (the event loop), falling back to a worker if it must block. */
  public <T extends Message> void inline(Message request, StreamObserver<T> out, Supplier<T> call) {
    run(null, request, out, call);
  }

  /** Runs the call on the worker pool, carrying the gRPC context along. */
  public <T extends Message> void worker(Message request, StreamObserver<T> out, Supplier<T> call) {
    run(WORKERS, request, out, call);
  }

  /**
   * Runs the call on the TPM queue: one thread for every call on a TPM key.
   * The TPM executes one command at a time anyway; one thread in front of it
   * replaces a crowd of workers blocked on the TPM lock (fewer threads and
   * context switches on the CPU the TPM emulator also needs).
   */
  public <T extends Message> void tpm(Message request, StreamObserver<T> out, Supplier<T> call) {
    run(TPM_QUEUE, request, out, call);
  }

  /**
   * Authorizes, then runs the call where it belongs ({@code executor}, or
   * here when null). A remembered decision costs nothing; otherwise the
   * policy service is asked without blocking this thread and the call goes
   * on, once allowed, on a worker (or its executor).
   */
  private <T extends Message> void run(Executor executor, Message request, StreamObserver<T> out, Supplier<T> call) {
    CallInfo info = begin(request);
    Authorizer.Verdict known;
    try {
      known = authorizer.known(info, request);
    } catch (Throwable t) {
      finish(info, request, out, null, t);
      return;
    }
    if (known != null) {
      allowedThen(known, executor, info, request, out, call);
      return;
    }
    Context context = Context.current();
    authorizer.ask(info, request).whenComplete((verdict, failure) -> context.run(() -> {
      if (failure != null) {
        finish(info, request, out, null, failure);
      } else {
        allowedThen(verdict, executor == null ? WORKERS : executor, info, request, out, call);
      }
    }));
  }

  private <T extends Message> void allowedThen(Authorizer.Verdict verdict, Executor executor, CallInfo info,
      Message request, StreamObserver<T> out, Supplier<T> call) {
    if (!verdict.allowed()) {
      finish(info, request, out, null, Authorizer.denied(verdict));
    } else if (executor == null) {
      here(info, request, out, call);
    } else {
      on(executor, info, request, out, call);
    }
  }

  private <T extends Message> void here(CallInfo info, Message request, StreamObserver<T> out, Supplier<T> call) {
    T response;
    try {
      response = call.get();
    } catch (MustBlock e) {
      on(WORKERS, info, request, out, call);
      return;
    } catch (Throwable t) {
      finish(info, request, out, null, t);
      return;
    }
    finish(info, request, out, response, null);
  }

  private <T extends Message> void on(Executor executor, CallInfo info, Message request, StreamObserver<T> out,
      Supplier<T> call) {
    try {
      executor.execute(Context.current().wrap(() -> {
        T response;
        try {
          response = call.get();
        } catch (Throwable t) {
          finish(info, request, out, null, t);
          return;
        }
        finish(info, request, out, response, null);
      }));
    } catch (RejectedExecutionException e) {
      finish(info, request, out, null, new KmsException(ErrorCode.UNAVAILABLE, Reasons.INTERNAL,
          "the server is overloaded; retry", Map.of(), e));
    }
  }

  private CallInfo begin(Message request) {
    CallInfo info = CallInfo.current();
    if (info != null && audit.enabled()) info.request(request);
    return info;
  }

  private <T extends Message> void finish(CallInfo info, Message request, StreamObserver<T> out, T response,
      Throwable error) {
    StatusRuntimeException status = error == null ? null : GrpcErrors.toStatus(error);
    if (info == null || info.recorded()) {
      send(out, response, status);
      return;
    }
    String outcome = status == null ? "OK" : status.getStatus().getCode().name();
    audit.record(info, info.key(), versionOf(response, request), outcome, reasonOf(status))
        .whenComplete((ok, auditFailure) -> {
          if (auditFailure != null) {
            send(out, null, GrpcErrors.toStatus(auditFailure));
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

  /** The key version the call used: the response's, else the one the request named. */
  static int versionOf(Message response, Message request) {
    if (response != null) {
      FieldDescriptor v = response.getDescriptorForType().findFieldByName("version");
      if (v != null && v.getType() == FieldDescriptor.Type.UINT32) return (Integer) response.getField(v);
      if (v != null && v.getType() == FieldDescriptor.Type.MESSAGE) {
        Message m = (Message) response.getField(v);
        FieldDescriptor n = m.getDescriptorForType().findFieldByName("version");
        if (n != null && n.getType() == FieldDescriptor.Type.UINT32) return (Integer) m.getField(n);
      }
      FieldDescriptor k = response.getDescriptorForType().findFieldByName("key");
      if (k != null && k.getType() == FieldDescriptor.Type.MESSAGE) {
        Message m = (Message) response.getField(k);
        FieldDescriptor p = m.getDescriptorForType().findFieldByName("primary_version");
        if (p != null) return (Integer) m.getField(p);
      }
    }
    FieldDescriptor rv = request.getDescriptorForType().findFieldByName("version");
    if (rv != null && rv.getType() == FieldDescriptor.Type.UINT32) return (Integer) request.getField(rv);
    return 0;
  }
}
