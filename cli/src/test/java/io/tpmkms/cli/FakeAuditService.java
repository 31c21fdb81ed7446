package io.tpmkms.cli;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.tpmkms.proto.audit.v1.*;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Test double of the audit service, like {@link FakeKeyService}: records every request and answers
 * with the responses queued for its type (the default instance when none is queued), or with the
 * error set by {@link #fail}. ExportRecords streams the chunks given to {@link #exportChunks}, then
 * completes or, after {@link #failExportAfterChunks}, fails.
 */
final class FakeAuditService extends AuditServiceGrpc.AuditServiceImplBase {

    private final List<Message> requests = new ArrayList<>();
    private final Map<Class<?>, Deque<Message>> responses = new HashMap<>();
    private final List<ByteString> chunks = new ArrayList<>();
    private com.google.rpc.Status error;
    private boolean errorAfterChunks;
    private long delayMillis;

    synchronized void reset() {
        requests.clear();
        responses.clear();
        chunks.clear();
        error = null;
        errorAfterChunks = false;
        delayMillis = 0;
    }

    synchronized void delay(long millis) {
        delayMillis = millis;
    }

    /** Queues responses; each is answered once, in order, to the RPC returning its type. */
    synchronized FakeAuditService respond(Message... answers) {
        for (Message m : answers) {
            responses.computeIfAbsent(m.getClass(), c -> new ArrayDeque<>()).add(m);
        }
        return this;
    }

    /** The chunks every ExportRecords call sends. */
    synchronized FakeAuditService exportChunks(byte[]... data) {
        for (byte[] d : data) {
            chunks.add(ByteString.copyFrom(d));
        }
        return this;
    }

    /** Every following call fails with this status and an ErrorInfo carrying {@code reason}. */
    synchronized void fail(Status.Code code, String message, String reason) {
        error = com.google.rpc.Status.newBuilder()
                .setCode(code.value())
                .setMessage(message)
                .addDetails(Any.pack(ErrorInfo.newBuilder().setReason(reason).setDomain("tpmkms.io").build()))
                .build();
    }

    /** ExportRecords sends its chunks first, then fails with the error of {@link #fail}. */
    synchronized void failExportAfterChunks() {
        errorAfterChunks = true;
    }

    synchronized List<Message> requests() {
        return List.copyOf(requests);
    }

    synchronized <T extends Message> List<T> requests(Class<T> type) {
        return requests.stream().filter(type::isInstance).map(type::cast).toList();
    }

    /** The one request of that type; fails if there was none or more than one. */
    <T extends Message> T only(Class<T> type) {
        List<T> found = requests(type);
        if (found.size() != 1) {
            throw new AssertionError("expected one " + type.getSimpleName() + ", got " + requests());
        }
        return found.get(0);
    }

    @SuppressWarnings("unchecked")
    private <Q extends Message, R extends Message> void answer(Q request, StreamObserver<R> observer, R empty) {
        com.google.rpc.Status failure;
        Message response;
        long sleep;
        synchronized (this) {
            requests.add(request);
            failure = error;
            Deque<Message> queued = responses.get(empty.getClass());
            response = queued == null || queued.isEmpty() ? empty : queued.poll();
            sleep = delayMillis;
        }
        if (sleep > 0) {
            try {
                Thread.sleep(sleep);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (failure != null) {
            observer.onError(StatusProto.toStatusRuntimeException(failure));
            return;
        }
        observer.onNext((R) response);
        observer.onCompleted();
    }

    @Override public void appendEvents(AppendEventsRequest r, StreamObserver<AppendEventsResponse> o) { answer(r, o, AppendEventsResponse.getDefaultInstance()); }
    @Override public void queryRecords(QueryRecordsRequest r, StreamObserver<QueryRecordsResponse> o) { answer(r, o, QueryRecordsResponse.getDefaultInstance()); }
    @Override public void verifyChain(VerifyChainRequest r, StreamObserver<VerifyChainResponse> o) { answer(r, o, VerifyChainResponse.getDefaultInstance()); }
    @Override public void listCheckpoints(ListCheckpointsRequest r, StreamObserver<ListCheckpointsResponse> o) { answer(r, o, ListCheckpointsResponse.getDefaultInstance()); }
    @Override public void getCheckpoint(GetCheckpointRequest r, StreamObserver<GetCheckpointResponse> o) { answer(r, o, GetCheckpointResponse.getDefaultInstance()); }

    @Override
    public void exportRecords(ExportRecordsRequest r, StreamObserver<ExportRecordsChunk> o) {
        com.google.rpc.Status failure;
        List<ByteString> send;
        boolean failLate;
        synchronized (this) {
            requests.add(r);
            failure = error;
            send = List.copyOf(chunks);
            failLate = errorAfterChunks;
        }
        if (failure != null && !failLate) {
            o.onError(StatusProto.toStatusRuntimeException(failure));
            return;
        }
        for (ByteString chunk : send) {
            o.onNext(ExportRecordsChunk.newBuilder().setJsonl(chunk).build());
        }
        if (failure != null) {
            o.onError(StatusProto.toStatusRuntimeException(failure));
        } else {
            o.onCompleted();
        }
    }
}
