package io.tpmkms.audit.api;

import com.google.protobuf.ByteString;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.quarkus.grpc.GrpcService;
import io.tpmkms.audit.authz.AuditAuthorizer;
import io.tpmkms.audit.chain.AuditWriter;
import io.tpmkms.audit.chain.Event;
import io.tpmkms.audit.chain.StoredRecord;
import io.tpmkms.audit.checkpoint.Checkpoint;
import io.tpmkms.audit.checkpoint.CheckpointStore;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.audit.error.AuditErrors;
import io.tpmkms.audit.error.AuditReason;
import io.tpmkms.audit.query.JsonLines;
import io.tpmkms.audit.query.RecordQueries;
import io.tpmkms.audit.verify.ChainVerifier;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.platform.auth.Principal;
import io.tpmkms.platform.paging.PageTokens;
import io.tpmkms.platform.rpc.Pipeline;
import io.tpmkms.proto.audit.v1.*;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The gRPC adapter of tpmkms.audit.v1.AuditService: messages to domain calls
 * and back. Each method hands its handler to the platform's {@link Pipeline}
 * with its declaration in {@link AuditRpcs}: AppendEvents is validated on the
 * event loop and answered by the single writer after COMMIT; every other call
 * runs on the worker pool. Every failure becomes a status with an ErrorInfo
 * ({@link AuditErrors}); none leaks as UNKNOWN.
 */
@GrpcService
public class AuditGrpcService implements AuditServiceGrpc.AsyncService, io.grpc.BindableService {
  /** Requests are parsed and checked by the shared {@link io.tpmkms.platform.input.RequestGate}. */
  @Override
  public io.grpc.ServerServiceDefinition bindService() {
    return io.tpmkms.platform.input.RequestGate.strict(AuditServiceGrpc.bindService(this));
  }

  static final int DEFAULT_PAGE = 100;
  static final int MAX_PAGE = 1000;
  /** Export chunks hold whole lines, about this many bytes (one longer line makes a chunk of its own). */
  static final int CHUNK_BYTES = 64 * 1024;

  private final AuditWriter writer;
  private final RecordQueries queries;
  private final CheckpointStore checkpoints;
  private final ChainVerifier verifier;
  private final PageTokens pageTokens;
  private final AuditAuthorizer authorizer;
  private final Pipeline pipeline;
  private final io.tpmkms.platform.tracing.Tracing tracing;

  public AuditGrpcService(AuditWriter writer, RecordQueries queries, CheckpointStore checkpoints,
      ChainVerifier verifier, io.agroal.api.AgroalDataSource dataSource, AuditAuthorizer authorizer,
      SelfAudit selfAudit, io.tpmkms.platform.tracing.Tracing tracing) {
    this.writer = writer;
    this.queries = queries;
    this.checkpoints = checkpoints;
    this.verifier = verifier;
    this.pageTokens = PageTokens.backedBy(dataSource);
    this.authorizer = authorizer;
    this.pipeline = Pipeline.builder(AuditErrors.GRPC, AuditReason.OVERLOADED)
        .authorization(authorizer).auditing(selfAudit).tracing(tracing).build();
    this.tracing = tracing;
  }

  /**
   * Only an audit producer gets here (the pipeline refused everyone else), and only with events of
   * its own service: an event naming another one refuses the whole request (PERMISSION_DENIED,
   * ORIGIN_MISMATCH) and is recorded as a denied attempt. Every stored record names the client that
   * delivered it.
   */
  @Override
  public void appendEvents(AppendEventsRequest r, StreamObserver<AppendEventsResponse> out) {
    CallInfo info = CallInfo.current();
    if (info != null) info.details(appendSummary(r));
    pipeline.async(AuditRpcs.APPEND_EVENTS, r, out, () -> {
      Principal caller = info == null ? null : info.caller;
      String deliveredBy = caller == null || caller.anonymous() ? "anonymous" : caller.clientId();
      List<Event> events = EventValidation.events(r.getEventsList(), Instant.now(), deliveredBy);
      String origin = authorizer.originOf(caller);
      if (origin != null) {
        for (int i = 0; i < events.size(); i++) {
          String declared = events.get(i).service();
          if (!declared.equals(origin)) {
            String why = "client " + caller.clientId() + " delivers events of service " + origin
                + " only; event " + i + " claims service " + declared;
            info.decided(Decision.DENY, why);
            throw new ServiceException(ErrorCode.PERMISSION_DENIED, AuditReason.ORIGIN_MISMATCH,
                "permission denied: " + why + "; nothing was appended",
                Map.of("index", Integer.toString(i), "service", origin), null);
          }
        }
      }
      List<io.opentelemetry.api.trace.Span> spans = appendSpans(r);
      return writer.append(events).whenComplete((sequences, failure) -> {
        for (int i = 0; i < spans.size(); i++) {
          var span = spans.get(i);
          if (failure != null) {
            span.setStatus(io.opentelemetry.api.trace.StatusCode.ERROR, "not appended");
          } else if (i < sequences.length) {
            span.setAttribute("tpmkms.audit.sequence", sequences[i]);
          }
          span.end();
        }
      }).thenApply(sequences -> {
        AppendEventsResponse.Builder b = AppendEventsResponse.newBuilder();
        for (long s : sequences) b.addSequences(s);
        return b.build();
      });
    });
  }

  /**
   * One {@code audit.append} span per event that carries the trace of the call that recorded it
   * (ADR 0030): that call's trace then shows where its event landed in the chain. Events without a
   * trace (or with tracing off) get none; the list is indexed like the request's events when it is
   * not empty.
   */
  private List<io.opentelemetry.api.trace.Span> appendSpans(AppendEventsRequest r) {
    if (!tracing.enabled()) return List.of();
    List<io.opentelemetry.api.trace.Span> spans = new java.util.ArrayList<>(r.getEventsCount());
    boolean any = false;
    for (AuditEvent e : r.getEventsList()) {
      var span = tracing.childOf(e.getTraceParent(), "audit.append");
      any |= span.getSpanContext().isValid();
      spans.add(span);
    }
    return any ? spans : List.of();
  }

  /** "3 events of key-service": what a refused append tried, for its record (never the events themselves). */
  static String appendSummary(AppendEventsRequest r) {
    java.util.Set<String> services = new java.util.TreeSet<>();
    for (AuditEvent e : r.getEventsList()) {
      if (services.size() < 8) services.add(e.getService());
    }
    return r.getEventsCount() + " events of " + String.join(", ", services);
  }

  /** The read's parameters for its own record: the request as text, without its page token. */
  private static void describe(com.google.protobuf.Message request) {
    CallInfo info = CallInfo.current();
    if (info == null) return;
    com.google.protobuf.Message.Builder b = request.toBuilder();
    var token = request.getDescriptorForType().findFieldByName("page_token");
    boolean paged = token != null && !((String) request.getField(token)).isEmpty();
    if (token != null) b.clearField(token);
    String text = com.google.protobuf.TextFormat.printer().emittingSingleLine(true).printToString(b.build()).trim();
    info.details((text.isEmpty() ? "(no filters)" : text) + (paged ? " (next page)" : ""));
  }

  @Override
  public void queryRecords(QueryRecordsRequest r, StreamObserver<QueryRecordsResponse> out) {
    describe(r);
    pipeline.unary(AuditRpcs.QUERY_RECORDS, r, out, () -> {
      int size = pageSize(r.getPageSize());
      long after = pageTokens.openLong(r, 0);
      Long startSeconds = null;
      Long endSeconds = null;
      if (r.hasStartTime()) startSeconds = r.getStartTime().getSeconds();
      if (r.hasEndTime()) endSeconds = r.getEndTime().getSeconds();
      RecordQueries.Filter f = new RecordQueries.Filter(startSeconds, r.getStartTime().getNanos(), endSeconds,
          r.getEndTime().getNanos(), r.getPrincipal(), r.getKey(), r.getOperation(), r.getOutcome());
      List<StoredRecord> page = queries.page(f, after, size + 1);
      QueryRecordsResponse.Builder b = QueryRecordsResponse.newBuilder();
      page.stream().limit(size).forEach(x -> b.addRecords(ProtoMapper.record(x)));
      if (page.size() > size) b.setNextPageToken(pageTokens.issue(r, page.get(size - 1).sequence()));
      return b.build();
    });
  }

  @Override
  public void verifyChain(VerifyChainRequest r, StreamObserver<VerifyChainResponse> out) {
    describe(r);
    pipeline.unary(AuditRpcs.VERIFY_CHAIN, r, out, () -> {
      if (r.getToSequence() != 0 && r.getFromSequence() > r.getToSequence()) {
        throw ServiceException.invalid(AuditReason.INVALID_RANGE, "from_sequence is after to_sequence");
      }
      ChainVerifier.Result v = verifier.verify(r.getFromSequence(), r.getToSequence());
      return VerifyChainResponse.newBuilder()
          .setValid(v.valid())
          .setRecordsChecked(v.recordsChecked())
          .setCheckpointsChecked(v.checkpointsChecked())
          .setFirstBrokenSequence(v.firstBroken())
          .setProblem(v.problem())
          .setHeadSequence(v.headSequence())
          .setHeadHash(ByteString.copyFrom(v.headHash()))
          .build();
    });
  }

  @Override
  public void listCheckpoints(ListCheckpointsRequest r, StreamObserver<ListCheckpointsResponse> out) {
    describe(r);
    pipeline.unary(AuditRpcs.LIST_CHECKPOINTS, r, out, () -> {
      int size = pageSize(r.getPageSize());
      long after = pageTokens.openLong(r, 0);
      List<Checkpoint> page = checkpoints.page(after, size + 1);
      ListCheckpointsResponse.Builder b = ListCheckpointsResponse.newBuilder();
      page.stream().limit(size).forEach(c -> b.addCheckpoints(ProtoMapper.checkpoint(c)));
      if (page.size() > size) b.setNextPageToken(pageTokens.issue(r, page.get(size - 1).sequence()));
      return b.build();
    });
  }

  @Override
  public void getCheckpoint(GetCheckpointRequest r, StreamObserver<GetCheckpointResponse> out) {
    describe(r);
    pipeline.unary(AuditRpcs.GET_CHECKPOINT, r, out, () -> {
      var cp = r.getSequence() == 0 ? checkpoints.latest() : checkpoints.get(r.getSequence());
      Checkpoint c = cp.orElseThrow(() -> new ServiceException(ErrorCode.NOT_FOUND, AuditReason.CHECKPOINT_NOT_FOUND,
          r.getSequence() == 0 ? "no checkpoint yet" : "no checkpoint at sequence " + r.getSequence(),
          Map.of("sequence", Long.toString(r.getSequence())), null));
      return GetCheckpointResponse.newBuilder().setCheckpoint(ProtoMapper.checkpoint(c)).build();
    });
  }

  @Override
  public void exportRecords(ExportRecordsRequest r, StreamObserver<ExportRecordsChunk> out) {
    describe(r);
    ServerCallStreamObserver<ExportRecordsChunk> call = (ServerCallStreamObserver<ExportRecordsChunk>) out;
    ReentrantLock lock = new ReentrantLock();
    Condition ready = lock.newCondition();
    Runnable signal = () -> {
      lock.lock();
      try {
        ready.signalAll();
      } finally {
        lock.unlock();
      }
    };
    call.setOnReadyHandler(signal);
    call.setOnCancelHandler(signal);
    pipeline.stream(AuditRpcs.EXPORT_RECORDS, r, out, () -> {
      if (r.getToSequence() != 0 && r.getFromSequence() > r.getToSequence()) {
        throw ServiceException.invalid(AuditReason.INVALID_RANGE, "from_sequence is after to_sequence");
      }
      long to = r.getToSequence() == 0 ? Long.MAX_VALUE : r.getToSequence();
      StringBuilder chunk = new StringBuilder(CHUNK_BYTES + 4096);
      queries.scan(Math.max(1, r.getFromSequence()), to, rec -> {
        JsonLines.append(chunk, rec);
        if (chunk.length() >= CHUNK_BYTES) return send(call, chunk, lock, ready);
        return true;
      });
      if (chunk.length() > 0 && !call.isCancelled()) send(call, chunk, lock, ready);
    });
  }

  /** Sends the chunk once the client can take it (flow control); false if the call was cancelled. */
  private static boolean send(ServerCallStreamObserver<ExportRecordsChunk> call, StringBuilder chunk,
      ReentrantLock lock, Condition ready) throws InterruptedException {
    lock.lock();
    try {
      while (!call.isReady() && !call.isCancelled()) ready.await(100, TimeUnit.MILLISECONDS);
    } finally {
      lock.unlock();
    }
    if (call.isCancelled()) return false;
    call.onNext(ExportRecordsChunk.newBuilder()
        .setJsonl(ByteString.copyFrom(chunk.toString(), StandardCharsets.UTF_8)).build());
    chunk.setLength(0);
    return true;
  }

  private static int pageSize(int requested) {
    if (requested < 0) throw ServiceException.invalid(AuditReason.INVALID_PAGE_SIZE, "page_size must not be negative");
    return requested == 0 ? DEFAULT_PAGE : Math.min(requested, MAX_PAGE);
  }
}
