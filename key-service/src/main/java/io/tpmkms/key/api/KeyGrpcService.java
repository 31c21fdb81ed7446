package io.tpmkms.key.api;

import com.google.protobuf.ByteString;
import io.grpc.stub.StreamObserver;
import io.quarkus.grpc.GrpcService;
import io.tpmkms.key.crypto.CryptoService;
import io.tpmkms.key.crypto.CryptoService.Result;
import io.tpmkms.key.crypto.CryptoService.Verdict;
import io.tpmkms.key.crypto.KeyCache.CachedVersion;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.key.error.KeyReason;
import io.tpmkms.key.catalogue.KeyEntity;
import io.tpmkms.key.lifecycle.KeyLifecycleService;
import io.tpmkms.key.lifecycle.KeyLifecycleService.CreateKeyCommand;
import io.tpmkms.key.lifecycle.KeyLifecycleService.KeyView;
import io.tpmkms.key.lifecycle.KeyLifecycleService.UpdateKeyCommand;
import io.tpmkms.key.catalogue.KeyVersionEntity;
import io.tpmkms.key.catalogue.ImportJobEntity;
import io.tpmkms.key.imports.ImportService;
import io.tpmkms.key.lifecycle.KeyLifecycleService.VersionView;
import io.tpmkms.platform.paging.PageTokens;
import io.tpmkms.platform.rpc.Pipeline;
import io.tpmkms.proto.key.v1.DuplicationBlob;
import io.tpmkms.proto.key.v1.ExportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ExportKeyVersionResponse;
import io.tpmkms.proto.key.v1.*;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashSet;
import java.util.List;

/**
 * The gRPC adapter of tpmkms.key.v1.KeyService: turns messages into domain
 * calls and back, nothing else. Every method hands its handler to the
 * platform's {@link Pipeline} with its declaration in {@link KeyRpcs}, which
 * authorizes, runs it where it belongs, audits and answers (every failure a
 * status with an ErrorInfo, none UNKNOWN).
 */
@GrpcService
public class KeyGrpcService implements KeyServiceGrpc.AsyncService, io.grpc.BindableService {
  /** Requests are parsed and checked by the shared {@link io.tpmkms.platform.input.RequestGate}. */
  @Override
  public io.grpc.ServerServiceDefinition bindService() {
    return io.tpmkms.platform.input.RequestGate.strict(KeyServiceGrpc.bindService(this));
  }

  static final int DEFAULT_PAGE = 50;
  static final int MAX_PAGE = 1000;

  private final KeyLifecycleService lifecycle;
  private final CryptoService crypto;
  private final Pipeline pipeline;
  private final PageTokens pageTokens;
  private final ImportService imports;
  private final io.tpmkms.key.nodes.NodeService nodes;

  public KeyGrpcService(KeyLifecycleService lifecycle, CryptoService crypto, Pipeline pipeline,
      javax.sql.DataSource dataSource, ImportService imports, io.tpmkms.key.nodes.NodeService nodes) {
    this.imports = imports;
    this.nodes = nodes;
    this.lifecycle = lifecycle;
    this.crypto = crypto;
    this.pipeline = pipeline;
    this.pageTokens = PageTokens.backedBy(dataSource);
  }

  // ---- lifecycle --------------------------------------------------------------------------------

  @Override
  public void createKey(CreateKeyRequest r, StreamObserver<CreateKeyResponse> out) {
    pipeline.unary(KeyRpcs.CREATE_KEY, r, out, () -> CreateKeyResponse.newBuilder().setKey(ProtoMapper.key(lifecycle.createKey(new CreateKeyCommand(
        r.getNamespace(), r.getName(), ProtoMapper.purpose(r.getPurpose()), ProtoMapper.algorithm(r.getAlgorithm()),
        ProtoMapper.level(r.getProtectionLevel()),
        r.hasRotationPeriod() ? ProtoMapper.duration(r.getRotationPeriod()) : null,
        r.hasNextRotationTime() ? ProtoMapper.instant(r.getNextRotationTime()) : null,
        r.getLabelsMap(), r.getImportOnly(), ProtoMapper.exportPolicy(r.getExportPolicy()),
        ProtoMapper.platformBinding(r.hasPlatformBinding(), r.getPlatformBinding()))))).build());
  }

  @Override
  public void getKey(GetKeyRequest r, StreamObserver<GetKeyResponse> out) {
    pipeline.unary(KeyRpcs.GET_KEY, r, out, () -> GetKeyResponse.newBuilder().setKey(ProtoMapper.key(lifecycle.getKey(r.getKey()))).build());
  }

  @Override
  public void listKeys(ListKeysRequest r, StreamObserver<ListKeysResponse> out) {
    pipeline.unary(KeyRpcs.LIST_KEYS, r, out, () -> {
      int size = pageSize(r.getPageSize());
      String[] after = pageTokens.openString(r, "\0").split("\0", 2);
      if (after.length != 2) throw badToken();
      io.tpmkms.key.catalogue.KeyCatalogue.KeyFilter filter = new io.tpmkms.key.catalogue.KeyCatalogue.KeyFilter(
          ProtoMapper.purpose(r.getPurpose()), ProtoMapper.level(r.getProtectionLevel()),
          ProtoMapper.versionState(r.getPrimaryState()), r.getNameContains().isEmpty() ? null : r.getNameContains(),
          ProtoMapper.versionState(r.getAnyVersionState()));
      List<KeyView> page = lifecycle.listKeys(r.getNamespace().isEmpty() ? null : r.getNamespace(),
          r.getLabelsMap(), filter, after[0], after[1], size + 1);
      ListKeysResponse.Builder b = ListKeysResponse.newBuilder();
      page.stream().limit(size).forEach(v -> b.addKeys(ProtoMapper.key(v)));
      if (page.size() > size) {
        KeyEntity last = page.get(size - 1).key();
        b.setNextPageToken(pageTokens.issue(r, last.namespace + "\0" + last.name));
      }
      return b.build();
    });
  }

  @Override
  public void updateKey(UpdateKeyRequest r, StreamObserver<UpdateKeyResponse> out) {
    pipeline.unary(KeyRpcs.UPDATE_KEY, r, out, () -> UpdateKeyResponse.newBuilder().setKey(ProtoMapper.key(lifecycle.updateKey(new UpdateKeyCommand(
        r.getKey(), new LinkedHashSet<>(r.getUpdateMaskList()), r.getLabelsMap(),
        r.hasRotationPeriod() ? ProtoMapper.duration(r.getRotationPeriod()) : null,
        r.hasNextRotationTime() ? ProtoMapper.instant(r.getNextRotationTime()) : null,
        r.getEtag())))).build());
  }

  @Override
  public void rotateKey(RotateKeyRequest r, StreamObserver<RotateKeyResponse> out) {
    pipeline.unary(KeyRpcs.ROTATE_KEY, r, out, () -> {
      KeyView v = lifecycle.rotateKey(r.getKey());
      return RotateKeyResponse.newBuilder()
          .setKey(ProtoMapper.key(v))
          .setVersion(ProtoMapper.version(v.key(), v.primary()))
          .build();
    });
  }

  @Override
  public void listKeyVersions(ListKeyVersionsRequest r, StreamObserver<ListKeyVersionsResponse> out) {
    pipeline.unary(KeyRpcs.LIST_KEY_VERSIONS, r, out, () -> {
      int size = pageSize(r.getPageSize());
      int after = Math.toIntExact(pageTokens.openLong(r, 0));
      KeyView key = lifecycle.getKey(r.getKey());
      List<KeyVersionEntity> page = lifecycle.listVersions(r.getKey(), after, size + 1, r.getIncludeDestroyed());
      ListKeyVersionsResponse.Builder b = ListKeyVersionsResponse.newBuilder();
      page.stream().limit(size).forEach(v -> b.addVersions(ProtoMapper.version(key.key(), v)));
      if (page.size() > size) b.setNextPageToken(pageTokens.issue(r, page.get(size - 1).number));
      return b.build();
    });
  }

  @Override
  public void getKeyVersion(GetKeyVersionRequest r, StreamObserver<GetKeyVersionResponse> out) {
    pipeline.unary(KeyRpcs.GET_KEY_VERSION, r, out, () -> GetKeyVersionResponse.newBuilder()
        .setVersion(versionMessage(r.getKey(), lifecycle.getVersion(r.getKey(), r.getVersion()))).build());
  }

  @Override
  public void setPrimaryVersion(SetPrimaryVersionRequest r, StreamObserver<SetPrimaryVersionResponse> out) {
    pipeline.unary(KeyRpcs.SET_PRIMARY_VERSION, r, out, () -> SetPrimaryVersionResponse.newBuilder()
        .setKey(ProtoMapper.key(lifecycle.setPrimaryVersion(r.getKey(), r.getVersion()))).build());
  }

  @Override
  public void disableKeyVersion(DisableKeyVersionRequest r, StreamObserver<DisableKeyVersionResponse> out) {
    pipeline.unary(KeyRpcs.DISABLE_KEY_VERSION, r, out, () -> DisableKeyVersionResponse.newBuilder()
        .setVersion(versionMessage(r.getKey(), lifecycle.disableVersion(r.getKey(), r.getVersion()))).build());
  }

  @Override
  public void enableKeyVersion(EnableKeyVersionRequest r, StreamObserver<EnableKeyVersionResponse> out) {
    pipeline.unary(KeyRpcs.ENABLE_KEY_VERSION, r, out, () -> EnableKeyVersionResponse.newBuilder()
        .setVersion(versionMessage(r.getKey(), lifecycle.enableVersion(r.getKey(), r.getVersion()))).build());
  }

  @Override
  public void scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest r,
      StreamObserver<ScheduleKeyVersionDestructionResponse> out) {
    pipeline.unary(KeyRpcs.SCHEDULE_KEY_VERSION_DESTRUCTION, r, out, () -> ScheduleKeyVersionDestructionResponse.newBuilder()
        .setVersion(versionMessage(r.getKey(), lifecycle.scheduleDestruction(r.getKey(), r.getVersion(),
            r.hasDelay() ? ProtoMapper.duration(r.getDelay()) : null)))
        .build());
  }

  @Override
  public void restoreKeyVersion(RestoreKeyVersionRequest r, StreamObserver<RestoreKeyVersionResponse> out) {
    pipeline.unary(KeyRpcs.RESTORE_KEY_VERSION, r, out, () -> RestoreKeyVersionResponse.newBuilder()
        .setVersion(versionMessage(r.getKey(), lifecycle.restoreVersion(r.getKey(), r.getVersion()))).build());
  }

  @Override
  public void revokeKeyVersion(RevokeKeyVersionRequest r, StreamObserver<RevokeKeyVersionResponse> out) {
    pipeline.unary(KeyRpcs.REVOKE_KEY_VERSION, r, out, () -> {
      KeyView key = lifecycle.revokeVersion(r.getKey(), r.getVersion());
      return RevokeKeyVersionResponse.newBuilder()
          .setKey(ProtoMapper.key(key))
          .setVersion(versionMessage(r.getKey(), lifecycle.getVersion(r.getKey(), r.getVersion())))
          .build();
    });
  }

  // ---- use --------------------------------------------------------------------------------------

  @Override
  public void encrypt(EncryptRequest r, StreamObserver<EncryptResponse> out) {
    pipeline.unary(KeyRpcs.ENCRYPT, r, out, () -> encrypt(r));
  }

  private EncryptResponse encrypt(EncryptRequest r) {
    Result res = crypto.encrypt(r.getKey(), r.getPlaintext().toByteArray(),
        r.getAdditionalAuthenticatedData().toByteArray());
    return EncryptResponse.newBuilder().setCiphertext(bytes(res)).setVersion(res.version()).build();
  }

  @Override
  public void decrypt(DecryptRequest r, StreamObserver<DecryptResponse> out) {
    pipeline.unary(KeyRpcs.DECRYPT, r, out, () -> decrypt(r));
  }

  private DecryptResponse decrypt(DecryptRequest r) {
    Result res = crypto.decrypt(r.getKey(), r.getCiphertext().toByteArray(),
        r.getAdditionalAuthenticatedData().toByteArray());
    return DecryptResponse.newBuilder().setPlaintext(bytes(res)).setVersion(res.version()).build();
  }

  @Override
  public void generateDataKey(GenerateDataKeyRequest r, StreamObserver<GenerateDataKeyResponse> out) {
    pipeline.unary(KeyRpcs.GENERATE_DATA_KEY, r, out, () -> {
      Result[] res = crypto.generateDataKey(r.getKey(), r.getLengthBytes(),
          r.getAdditionalAuthenticatedData().toByteArray());
      GenerateDataKeyResponse.Builder b = GenerateDataKeyResponse.newBuilder()
          .setCiphertext(bytes(res[1])).setVersion(res[1].version());
      if (!r.getOmitPlaintext()) b.setPlaintext(bytes(res[0]));
      return b.build();
    });
  }

  @Override
  public void sign(SignRequest r, StreamObserver<SignResponse> out) {
    pipeline.unary(KeyRpcs.SIGN, r, out, () -> sign(r));
  }

  private SignResponse sign(SignRequest r) {
    Result res = crypto.sign(r.getKey(), r.getVersion(), data(r.hasData(), r.getData()),
        data(r.hasDigest(), r.getDigest()));
    return SignResponse.newBuilder().setSignature(bytes(res)).setVersion(res.version()).build();
  }

  @Override
  public void verify(VerifyRequest r, StreamObserver<VerifyResponse> out) {
    pipeline.unary(KeyRpcs.VERIFY, r, out, () -> {
      Verdict v = crypto.verify(r.getKey(), r.getVersion(), data(r.hasData(), r.getData()),
          data(r.hasDigest(), r.getDigest()), r.getSignature().toByteArray());
      return VerifyResponse.newBuilder().setValid(v.valid()).setVersion(v.version()).build();
    });
  }

  @Override
  public void asymmetricDecrypt(AsymmetricDecryptRequest r, StreamObserver<AsymmetricDecryptResponse> out) {
    pipeline.unary(KeyRpcs.ASYMMETRIC_DECRYPT, r, out, () -> {
      Result res = crypto.asymmetricDecrypt(r.getKey(), r.getVersion(), r.getCiphertext().toByteArray());
      return AsymmetricDecryptResponse.newBuilder().setPlaintext(bytes(res)).setVersion(res.version()).build();
    });
  }

  @Override
  public void getPublicKey(GetPublicKeyRequest r, StreamObserver<GetPublicKeyResponse> out) {
    pipeline.unary(KeyRpcs.GET_PUBLIC_KEY, r, out, () -> {
      CachedVersion v = crypto.publicKey(r.getKey(), r.getVersion());
      return GetPublicKeyResponse.newBuilder()
          .setPem(ProtoMapper.pem(v.publicKey()))
          .setAlgorithm(ProtoMapper.algorithm(v.algorithm()))
          .setVersion(v.number())
          .build();
    });
  }

  @Override
  public void macSign(MacSignRequest r, StreamObserver<MacSignResponse> out) {
    pipeline.unary(KeyRpcs.MAC_SIGN, r, out, () -> macSign(r));
  }

  private MacSignResponse macSign(MacSignRequest r) {
    Result res = crypto.macSign(r.getKey(), r.getData().toByteArray());
    return MacSignResponse.newBuilder().setMac(bytes(res)).setVersion(res.version()).build();
  }

  @Override
  public void macVerify(MacVerifyRequest r, StreamObserver<MacVerifyResponse> out) {
    pipeline.unary(KeyRpcs.MAC_VERIFY, r, out, () -> {
      Verdict v = crypto.macVerify(r.getKey(), r.getVersion(), r.getData().toByteArray(), r.getMac().toByteArray());
      return MacVerifyResponse.newBuilder().setValid(v.valid()).setVersion(v.version()).build();
    });
  }

  @Override
  public void generateRandom(GenerateRandomRequest r, StreamObserver<GenerateRandomResponse> out) {
    pipeline.unary(KeyRpcs.GENERATE_RANDOM, r, out, () -> GenerateRandomResponse.newBuilder()
        .setData(ByteString.copyFrom(crypto.generateRandom(r.getLengthBytes(),
            ProtoMapper.level(r.getProtectionLevel()))))
        .build());
  }

  @Override
  public void getKeyAttestation(GetKeyAttestationRequest r, StreamObserver<GetKeyAttestationResponse> out) {
    pipeline.unary(KeyRpcs.GET_KEY_ATTESTATION, r, out, () -> {
      CryptoService.Attestation result = crypto.attest(r.getKey(), r.getVersion(), r.getNonce().toByteArray());
      GetKeyAttestationResponse.Builder b = GetKeyAttestationResponse.newBuilder()
          .setAttestation(io.tpmkms.key.imports.AttestationEncoding.toProto(result.statement()))
          .setVersion(result.version());
      if (result.platformBinding() != null) b.setPlatformBinding(ProtoMapper.platformBinding(result.platformBinding()));
      return b.build();
    });
  }

  @Override
  public void activateAttestationCredential(ActivateAttestationCredentialRequest r,
      StreamObserver<ActivateAttestationCredentialResponse> out) {
    pipeline.unary(KeyRpcs.ACTIVATE_ATTESTATION_CREDENTIAL, r, out, () -> ActivateAttestationCredentialResponse.newBuilder()
        .setSecret(com.google.protobuf.ByteString.copyFrom(crypto.activateAttestationCredential(
            r.getEkType() == EndorsementKeyType.EK_ECC_P256, r.getCredential().toByteArray()))).build());
  }

  // ---- nodes (ADR 0038) ----------------------------------------------------------------------------

  private static com.google.protobuf.ByteString bytes(byte[] b) { return com.google.protobuf.ByteString.copyFrom(b); }

  private static java.util.List<byte[]> list(java.util.List<com.google.protobuf.ByteString> l) {
    return l.stream().map(com.google.protobuf.ByteString::toByteArray).toList();
  }

  @Override
  public void enrollNode(EnrollNodeRequest r, StreamObserver<EnrollNodeResponse> out) {
    pipeline.unary(KeyRpcs.ENROLL_NODE, r, out, () -> {
      var e = nodes.enroll(r.getName(), r.getEkPublic().toByteArray(), r.getEkCertificate().toByteArray(),
          list(r.getEkIntermediatesList()), r.getAkPublic().toByteArray(), r.getPcrsList(), list(r.getGoldenValuesList()));
      return EnrollNodeResponse.newBuilder().setNode(ProtoMapper.node(e.node())).setCredential(bytes(e.credential()))
          .setActivationDeadline(ProtoMapper.ts(e.deadline())).build();
    });
  }

  @Override
  public void activateNode(ActivateNodeRequest r, StreamObserver<ActivateNodeResponse> out) {
    pipeline.unary(KeyRpcs.ACTIVATE_NODE, r, out, () -> ActivateNodeResponse.newBuilder()
        .setNode(ProtoMapper.node(nodes.activate(r.getName(), r.getSecret().toByteArray()))).build());
  }

  @Override
  public void getNode(GetNodeRequest r, StreamObserver<GetNodeResponse> out) {
    pipeline.unary(KeyRpcs.GET_NODE, r, out, () -> GetNodeResponse.newBuilder()
        .setNode(ProtoMapper.node(nodes.get(r.getName()))).build());
  }

  @Override
  public void listNodes(ListNodesRequest r, StreamObserver<ListNodesResponse> out) {
    pipeline.unary(KeyRpcs.LIST_NODES, r, out, () -> {
      if (r.getPageSize() < 0 || r.getPageSize() > MAX_PAGE) {
        throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "page_size must be between 0 and " + MAX_PAGE);
      }
      int size = r.getPageSize() == 0 ? DEFAULT_PAGE : r.getPageSize();
      String after = pageTokens.openString(r, "");
      List<io.tpmkms.key.nodes.NodeEntity> page = nodes.page(after, size + 1);
      ListNodesResponse.Builder b = ListNodesResponse.newBuilder();
      page.stream().limit(size).forEach(n -> b.addNodes(ProtoMapper.node(n)));
      if (page.size() > size) b.setNextPageToken(pageTokens.issue(r, page.get(size - 1).name));
      return b.build();
    });
  }

  @Override
  public void revokeNode(RevokeNodeRequest r, StreamObserver<RevokeNodeResponse> out) {
    pipeline.unary(KeyRpcs.REVOKE_NODE, r, out, () -> RevokeNodeResponse.newBuilder()
        .setNode(ProtoMapper.node(nodes.revoke(r.getName()))).build());
  }

  @Override
  public void getAttestationChallenge(GetAttestationChallengeRequest r,
      StreamObserver<GetAttestationChallengeResponse> out) {
    pipeline.unary(KeyRpcs.GET_ATTESTATION_CHALLENGE, r, out, () -> {
      var c = nodes.challenge(r.getName());
      var b = GetAttestationChallengeResponse.newBuilder().setNonce(bytes(c.nonce()))
          .setExpireTime(ProtoMapper.ts(c.expireTime()));
      for (int p : c.pcrs()) b.addPcrs(p);
      return b.build();
    });
  }

  @Override
  public void attestNode(AttestNodeRequest r, StreamObserver<AttestNodeResponse> out) {
    pipeline.unary(KeyRpcs.ATTEST_NODE, r, out, () -> {
      var a = nodes.attest(r.getName(), r.getNonce().toByteArray(), r.getQuote().toByteArray(),
          r.getSignature().toByteArray(), r.getEventLog().toByteArray());
      var b = AttestNodeResponse.newBuilder().setNode(ProtoMapper.node(a.node())).setTrusted(a.reason() == null);
      if (a.reason() != null) b.setReason(a.reason());
      return b.build();
    });
  }

  @Override
  public void releaseKey(ReleaseKeyRequest r, StreamObserver<ReleaseKeyResponse> out) {
    pipeline.unary(KeyRpcs.RELEASE_KEY, r, out, () -> {
      var rel = nodes.release(r.getNode(), r.getKey(), r.getAdditionalAuthenticatedData().toByteArray());
      return ReleaseKeyResponse.newBuilder().setCredential(bytes(rel.credential()))
          .setWrappedDataKey(bytes(rel.wrappedDataKey())).setVersion(rel.version()).build();
    });
  }

  // ---- batches ----------------------------------------------------------------------------------
  // Each item runs the single call's handler; the pipeline authorizes, places and audits each item.

  @Override
  public void batchEncrypt(BatchEncryptRequest r, StreamObserver<BatchEncryptResponse> out) {
    pipeline.batch(KeyRpcs.BATCH_ENCRYPT, KeyRpcs.ENCRYPT, r, out, this::encrypt, results -> {
      BatchEncryptResponse.Builder b = BatchEncryptResponse.newBuilder();
      for (var x : results) {
        b.addResults(x.ok() ? BatchEncryptResult.newBuilder().setResponse(x.response())
            : BatchEncryptResult.newBuilder().setError(x.error()));
      }
      return b.build();
    });
  }

  @Override
  public void batchDecrypt(BatchDecryptRequest r, StreamObserver<BatchDecryptResponse> out) {
    pipeline.batch(KeyRpcs.BATCH_DECRYPT, KeyRpcs.DECRYPT, r, out, this::decrypt, results -> {
      BatchDecryptResponse.Builder b = BatchDecryptResponse.newBuilder();
      for (var x : results) {
        b.addResults(x.ok() ? BatchDecryptResult.newBuilder().setResponse(x.response())
            : BatchDecryptResult.newBuilder().setError(x.error()));
      }
      return b.build();
    });
  }

  @Override
  public void batchSign(BatchSignRequest r, StreamObserver<BatchSignResponse> out) {
    pipeline.batch(KeyRpcs.BATCH_SIGN, KeyRpcs.SIGN, r, out, this::sign, results -> {
      BatchSignResponse.Builder b = BatchSignResponse.newBuilder();
      for (var x : results) {
        b.addResults(x.ok() ? BatchSignResult.newBuilder().setResponse(x.response())
            : BatchSignResult.newBuilder().setError(x.error()));
      }
      return b.build();
    });
  }

  @Override
  public void batchMacSign(BatchMacSignRequest r, StreamObserver<BatchMacSignResponse> out) {
    pipeline.batch(KeyRpcs.BATCH_MAC_SIGN, KeyRpcs.MAC_SIGN, r, out, this::macSign, results -> {
      BatchMacSignResponse.Builder b = BatchMacSignResponse.newBuilder();
      for (var x : results) {
        b.addResults(x.ok() ? BatchMacSignResult.newBuilder().setResponse(x.response())
            : BatchMacSignResult.newBuilder().setError(x.error()));
      }
      return b.build();
    });
  }

  // ---- import -----------------------------------------------------------------------------------

  static final int DEFAULT_JOB_PAGE = 100;

  @Override
  public void createImportJob(CreateImportJobRequest r, StreamObserver<CreateImportJobResponse> out) {
    pipeline.unary(KeyRpcs.CREATE_IMPORT_JOB, r, out, () -> CreateImportJobResponse.newBuilder()
        .setImportJob(ProtoMapper.importJob(imports.createJob(new ImportService.CreateJobCommand(
            r.getNamespace(), r.getJobId(), ProtoMapper.method(r.getImportMethod()),
            ProtoMapper.level(r.getProtectionLevel()), r.hasWait() ? ProtoMapper.duration(r.getWait()) : null))))
        .build());
  }

  @Override
  public void getImportJob(GetImportJobRequest r, StreamObserver<GetImportJobResponse> out) {
    pipeline.unary(KeyRpcs.GET_IMPORT_JOB, r, out, () -> GetImportJobResponse.newBuilder()
        .setImportJob(ProtoMapper.importJob(imports.getJob(r.getImportJob()))).build());
  }

  @Override
  public void listImportJobs(ListImportJobsRequest r, StreamObserver<ListImportJobsResponse> out) {
    pipeline.unary(KeyRpcs.LIST_IMPORT_JOBS, r, out, () -> {
      if (r.getPageSize() < 0 || r.getPageSize() > MAX_PAGE) {
        throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "page_size must be between 0 and " + MAX_PAGE);
      }
      int size = r.getPageSize() == 0 ? DEFAULT_JOB_PAGE : r.getPageSize();
      String after = pageTokens.openString(r, "");
      List<ImportJobEntity> page = imports.listJobs(r.getNamespace(), after, size + 1);
      ListImportJobsResponse.Builder b = ListImportJobsResponse.newBuilder();
      page.stream().limit(size).forEach(j -> b.addImportJobs(ProtoMapper.importJob(j)));
      if (page.size() > size) b.setNextPageToken(pageTokens.issue(r, page.get(size - 1).jobId));
      return b.build();
    });
  }

  @Override
  public void importKeyVersion(ImportKeyVersionRequest r, StreamObserver<ImportKeyVersionResponse> out) {
    pipeline.unary(KeyRpcs.IMPORT_KEY_VERSION, r, out, () -> {
      byte[] wrapped = r.getWrappedKey().toByteArray();
      ImportService.DuplicationIn dup = null;
      if (r.hasDuplication()) {
        var d = r.getDuplication();
        dup = new ImportService.DuplicationIn(d.getPublicArea().toByteArray(), d.getDuplicate().toByteArray(),
            d.getEncryptedSeed().toByteArray(), r.getTransferAuth().toByteArray(), d.getAuthorityName().toByteArray());
      }
      VersionView v = imports.importKeyVersion(new ImportService.ImportCommand(r.getKey(), r.getImportJob(),
          ProtoMapper.algorithm(r.getAlgorithm()), wrapped, Integer.toUnsignedLong(r.getVersion()),
          r.getMakePrimary(), dup));
      return ImportKeyVersionResponse.newBuilder().setVersion(ProtoMapper.version(v.key(), v.version())).build();
    });
  }

  @Override
  public void exportKeyVersion(ExportKeyVersionRequest r, StreamObserver<ExportKeyVersionResponse> out) {
    pipeline.unary(KeyRpcs.EXPORT_KEY_VERSION, r, out, () -> {
      var t = r.getTarget();
      byte[] transfer = r.getTransferAuth().toByteArray();
      try {
        CryptoService.Exported e = crypto.export(r.getKey(), r.getVersion(), new CryptoService.TargetProof(
            t.getPublicArea().toByteArray(), t.getAttest().toByteArray(), t.getSignature().toByteArray(),
            t.getAttestationKeyPublic().toByteArray(), t.getQualifyingData().isEmpty() ? null
                : t.getQualifyingData().toByteArray(),
            r.getWrappingPublicKeyPem().isEmpty() ? null : r.getWrappingPublicKeyPem(),
            ProtoMapper.method(r.getImportMethod())), transfer);
        if (e.wrappedKey() != null) {
          return ExportKeyVersionResponse.newBuilder().setWrappedKey(ByteString.copyFrom(e.wrappedKey()))
              .setVersion(e.version()).build();
        }
        ExportKeyVersionResponse.Builder b = ExportKeyVersionResponse.newBuilder()
            .setDuplication(DuplicationBlob.newBuilder()
                .setPublicArea(ByteString.copyFrom(e.duplication().tpm2bPublic()))
                .setDuplicate(ByteString.copyFrom(e.duplication().duplicate()))
                .setEncryptedSeed(ByteString.copyFrom(e.duplication().encryptedSeed()))
                .setAuthorityName(ByteString.copyFrom(e.duplication().authorityName())))
            .setVersion(e.version())
            .setTargetName(ByteString.copyFrom(e.targetName()));
        for (byte[] branch : e.policyBranches()) b.addPolicyBranches(ByteString.copyFrom(branch));
        return b.build();
      } finally {
        java.util.Arrays.fill(transfer, (byte) 0);
      }
    });
  }

  // ---- plumbing ---------------------------------------------------------------------------------

  private KeyVersion versionMessage(String key, KeyVersionEntity v) {
    return ProtoMapper.version(key, lifecycle.getKey(key).key().primaryVersion, v);
  }

  private static ByteString bytes(Result r) {
    return ByteString.copyFrom(r.bytes());
  }

  private static byte[] data(boolean present, ByteString b) {
    return present ? b.toByteArray() : null;
  }

  private static int pageSize(int requested) {
    if (requested < 0 || requested > MAX_PAGE) {
      throw ServiceException.invalid(KeyReason.INVALID_REQUEST, "page_size must be between 0 and " + MAX_PAGE);
    }
    return requested == 0 ? DEFAULT_PAGE : requested;
  }

  private static ServiceException badToken() {
    return ServiceException.invalid(KeyReason.INVALID_PAGE_TOKEN, "page_token is not one this service issued");
  }
}
