package io.tpmkms.cli;

import com.google.protobuf.Any;
import com.google.protobuf.Message;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.tpmkms.proto.key.v1.*;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Test double of the key service: records every request and answers with the responses queued
 * for its type (the default instance when none is queued), or with the error set by {@link #fail}.
 * Thread-safe enough for one CLI call at a time.
 */
final class FakeKeyService extends KeyServiceGrpc.KeyServiceImplBase {

    private final List<Message> requests = new ArrayList<>();
    private final Map<Class<?>, Deque<Message>> responses = new HashMap<>();
    private com.google.rpc.Status error;
    private long delayMillis;

    synchronized void reset() {
        requests.clear();
        responses.clear();
        error = null;
        delayMillis = 0;
    }

    /** Queues responses; each is answered once, in order, to the RPC returning its type. */
    synchronized FakeKeyService respond(Message... answers) {
        for (Message m : answers) {
            responses.computeIfAbsent(m.getClass(), c -> new ArrayDeque<>()).add(m);
        }
        return this;
    }

    /** Every following call fails with this status and an ErrorInfo carrying {@code reason}. */
    synchronized void fail(Status.Code code, String message, String reason) {
        error = com.google.rpc.Status.newBuilder()
                .setCode(code.value())
                .setMessage(message)
                .addDetails(Any.pack(ErrorInfo.newBuilder()
                        .setReason(reason).setDomain("tpmkms.io").putMetadata("key", "ns/x").build()))
                .build();
    }

    synchronized void delay(long millis) {
        delayMillis = millis;
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

    @Override public void createKey(CreateKeyRequest r, StreamObserver<CreateKeyResponse> o) { answer(r, o, CreateKeyResponse.getDefaultInstance()); }
    @Override public void getKey(GetKeyRequest r, StreamObserver<GetKeyResponse> o) { answer(r, o, GetKeyResponse.getDefaultInstance()); }
    @Override public void listKeys(ListKeysRequest r, StreamObserver<ListKeysResponse> o) { answer(r, o, ListKeysResponse.getDefaultInstance()); }
    @Override public void updateKey(UpdateKeyRequest r, StreamObserver<UpdateKeyResponse> o) { answer(r, o, UpdateKeyResponse.getDefaultInstance()); }
    @Override public void rotateKey(RotateKeyRequest r, StreamObserver<RotateKeyResponse> o) { answer(r, o, RotateKeyResponse.getDefaultInstance()); }
    @Override public void listKeyVersions(ListKeyVersionsRequest r, StreamObserver<ListKeyVersionsResponse> o) { answer(r, o, ListKeyVersionsResponse.getDefaultInstance()); }
    @Override public void getKeyVersion(GetKeyVersionRequest r, StreamObserver<GetKeyVersionResponse> o) { answer(r, o, GetKeyVersionResponse.getDefaultInstance()); }
    @Override public void setPrimaryVersion(SetPrimaryVersionRequest r, StreamObserver<SetPrimaryVersionResponse> o) { answer(r, o, SetPrimaryVersionResponse.getDefaultInstance()); }
    @Override public void disableKeyVersion(DisableKeyVersionRequest r, StreamObserver<DisableKeyVersionResponse> o) { answer(r, o, DisableKeyVersionResponse.getDefaultInstance()); }
    @Override public void enableKeyVersion(EnableKeyVersionRequest r, StreamObserver<EnableKeyVersionResponse> o) { answer(r, o, EnableKeyVersionResponse.getDefaultInstance()); }
    @Override public void scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest r, StreamObserver<ScheduleKeyVersionDestructionResponse> o) { answer(r, o, ScheduleKeyVersionDestructionResponse.getDefaultInstance()); }
    @Override public void restoreKeyVersion(RestoreKeyVersionRequest r, StreamObserver<RestoreKeyVersionResponse> o) { answer(r, o, RestoreKeyVersionResponse.getDefaultInstance()); }
    @Override public void revokeKeyVersion(RevokeKeyVersionRequest r, StreamObserver<RevokeKeyVersionResponse> o) { answer(r, o, RevokeKeyVersionResponse.getDefaultInstance()); }
    @Override public void encrypt(EncryptRequest r, StreamObserver<EncryptResponse> o) { answer(r, o, EncryptResponse.getDefaultInstance()); }
    @Override public void decrypt(DecryptRequest r, StreamObserver<DecryptResponse> o) { answer(r, o, DecryptResponse.getDefaultInstance()); }
    @Override public void generateDataKey(GenerateDataKeyRequest r, StreamObserver<GenerateDataKeyResponse> o) { answer(r, o, GenerateDataKeyResponse.getDefaultInstance()); }
    @Override public void sign(SignRequest r, StreamObserver<SignResponse> o) { answer(r, o, SignResponse.getDefaultInstance()); }
    @Override public void verify(VerifyRequest r, StreamObserver<VerifyResponse> o) { answer(r, o, VerifyResponse.getDefaultInstance()); }
    @Override public void asymmetricDecrypt(AsymmetricDecryptRequest r, StreamObserver<AsymmetricDecryptResponse> o) { answer(r, o, AsymmetricDecryptResponse.getDefaultInstance()); }
    @Override public void getPublicKey(GetPublicKeyRequest r, StreamObserver<GetPublicKeyResponse> o) { answer(r, o, GetPublicKeyResponse.getDefaultInstance()); }
    @Override public void macSign(MacSignRequest r, StreamObserver<MacSignResponse> o) { answer(r, o, MacSignResponse.getDefaultInstance()); }
    @Override public void macVerify(MacVerifyRequest r, StreamObserver<MacVerifyResponse> o) { answer(r, o, MacVerifyResponse.getDefaultInstance()); }
    @Override public void getKeyAttestation(GetKeyAttestationRequest r, StreamObserver<GetKeyAttestationResponse> o) { answer(r, o, GetKeyAttestationResponse.getDefaultInstance()); }
    @Override public void generateRandom(GenerateRandomRequest r, StreamObserver<GenerateRandomResponse> o) { answer(r, o, GenerateRandomResponse.getDefaultInstance()); }
}
