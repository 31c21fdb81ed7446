package io.tpmkms.cli;

import io.grpc.ServerServiceDefinition;
import io.grpc.stub.StreamObserver;
import io.tpmkms.proto.key.v1.*;
import java.util.Map;

/**
 * Test double of the key service (see {@link FakeService}); its errors name the key {@code ns/x}.
 */
public final class FakeKeyService extends FakeService<FakeKeyService> implements KeyServiceGrpc.AsyncService {

    @Override
    public ServerServiceDefinition bindService() {
        return KeyServiceGrpc.bindService(this);
    }

    @Override
    protected Map<String, String> errorMetadata() {
        return Map.of("key", "ns/x");
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

    /** Answers ActivateAttestationCredential by computing (a real TPM behind the test), else as queued. */
    public volatile java.util.function.Function<ActivateAttestationCredentialRequest, ActivateAttestationCredentialResponse>
            activation;

    @Override public void activateAttestationCredential(ActivateAttestationCredentialRequest r,
            StreamObserver<ActivateAttestationCredentialResponse> o) {
        var f = activation;
        answer(r, o, f == null ? ActivateAttestationCredentialResponse.getDefaultInstance() : f.apply(r));
    }
    /**
     * Answer the node RPCs (ADR 0038) by computing, as the service would (a real node TPM behind the
     * test: credentials for its EK, quotes to verify), else as queued.
     */
    public volatile java.util.function.Function<EnrollNodeRequest, EnrollNodeResponse> enrollNode;
    public volatile java.util.function.Function<ActivateNodeRequest, ActivateNodeResponse> activateNode;
    public volatile java.util.function.Function<GetAttestationChallengeRequest, GetAttestationChallengeResponse> challenge;
    public volatile java.util.function.Function<AttestNodeRequest, AttestNodeResponse> attestNode;
    public volatile java.util.function.Function<ReleaseKeyRequest, ReleaseKeyResponse> releaseKey;

    @Override public void enrollNode(EnrollNodeRequest r, StreamObserver<EnrollNodeResponse> o) { var f = enrollNode; answer(r, o, f == null ? EnrollNodeResponse.getDefaultInstance() : f.apply(r)); }
    @Override public void activateNode(ActivateNodeRequest r, StreamObserver<ActivateNodeResponse> o) { var f = activateNode; answer(r, o, f == null ? ActivateNodeResponse.getDefaultInstance() : f.apply(r)); }
    @Override public void getNode(GetNodeRequest r, StreamObserver<GetNodeResponse> o) { answer(r, o, GetNodeResponse.getDefaultInstance()); }
    @Override public void listNodes(ListNodesRequest r, StreamObserver<ListNodesResponse> o) { answer(r, o, ListNodesResponse.getDefaultInstance()); }
    @Override public void revokeNode(RevokeNodeRequest r, StreamObserver<RevokeNodeResponse> o) { answer(r, o, RevokeNodeResponse.getDefaultInstance()); }
    @Override public void getAttestationChallenge(GetAttestationChallengeRequest r, StreamObserver<GetAttestationChallengeResponse> o) { var f = challenge; answer(r, o, f == null ? GetAttestationChallengeResponse.getDefaultInstance() : f.apply(r)); }
    @Override public void attestNode(AttestNodeRequest r, StreamObserver<AttestNodeResponse> o) { var f = attestNode; answer(r, o, f == null ? AttestNodeResponse.getDefaultInstance() : f.apply(r)); }
    @Override public void releaseKey(ReleaseKeyRequest r, StreamObserver<ReleaseKeyResponse> o) { var f = releaseKey; answer(r, o, f == null ? ReleaseKeyResponse.getDefaultInstance() : f.apply(r)); }
    @Override public void createImportJob(CreateImportJobRequest r, StreamObserver<CreateImportJobResponse> o) { answer(r, o, CreateImportJobResponse.getDefaultInstance()); }
    @Override public void getImportJob(GetImportJobRequest r, StreamObserver<GetImportJobResponse> o) { answer(r, o, GetImportJobResponse.getDefaultInstance()); }
    @Override public void listImportJobs(ListImportJobsRequest r, StreamObserver<ListImportJobsResponse> o) { answer(r, o, ListImportJobsResponse.getDefaultInstance()); }
    @Override public void importKeyVersion(ImportKeyVersionRequest r, StreamObserver<ImportKeyVersionResponse> o) { answer(r, o, ImportKeyVersionResponse.getDefaultInstance()); }
    @Override public void generateRandom(GenerateRandomRequest r, StreamObserver<GenerateRandomResponse> o) { answer(r, o, GenerateRandomResponse.getDefaultInstance()); }
    @Override public void exportKeyVersion(ExportKeyVersionRequest r, StreamObserver<ExportKeyVersionResponse> o) { answer(r, o, ExportKeyVersionResponse.getDefaultInstance()); }
}
