package io.tpmkms.cli;

import com.google.protobuf.ByteString;
import io.grpc.ServerServiceDefinition;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.tpmkms.proto.audit.v1.*;
import java.util.ArrayList;
import java.util.List;

/**
 * Test double of the audit service (see {@link FakeService}). ExportRecords streams the chunks
 * given to {@link #exportChunks}, then completes or, after {@link #failExportAfterChunks}, fails.
 */
public final class FakeAuditService extends FakeService<FakeAuditService> implements AuditServiceGrpc.AsyncService {

    private final List<ByteString> chunks = new ArrayList<>();
    private boolean errorAfterChunks;

    @Override
    public ServerServiceDefinition bindService() {
        return AuditServiceGrpc.bindService(this);
    }

    @Override
    public synchronized void reset() {
        super.reset();
        chunks.clear();
        errorAfterChunks = false;
    }

    /** The chunks every ExportRecords call sends. */
    public synchronized FakeAuditService exportChunks(byte[]... data) {
        for (byte[] d : data) {
            chunks.add(ByteString.copyFrom(d));
        }
        return this;
    }

    /** ExportRecords sends its chunks first, then fails with the error of {@link #fail}. */
    public synchronized void failExportAfterChunks() {
        errorAfterChunks = true;
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
            failure = record(r);
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
