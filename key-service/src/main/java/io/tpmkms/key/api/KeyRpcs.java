package io.tpmkms.key.api;

import static io.tpmkms.platform.rpc.Placement.KEY_USE_HEAVY;
import static io.tpmkms.platform.rpc.Placement.KEY_USE_LIGHT;
import static io.tpmkms.platform.rpc.Placement.WORKER;

import io.tpmkms.platform.rpc.Rpc;
import io.tpmkms.platform.rpc.RpcTable;
import io.tpmkms.platform.rpc.Target;
import io.tpmkms.proto.key.v1.ExportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ExportKeyVersionResponse;
import io.tpmkms.proto.key.v1.*;

/**
 * Every RPC of tpmkms.key.v1.KeyService, declared once: the policy action (its
 * name), the key or namespace it acts on, its secret request fields (cleared
 * before the audit digest), the key version its audit event names (from the
 * response; from the request when the call failed) and where it runs
 * (ADR 0010: lifecycle and reads on a worker; cheap use of a hot in-process key
 * on the event loop; private-key work off it; TPM keys on the TPM queue).
 * {@code KeyRpcsTest} checks the table against the service descriptor.
 */
public final class KeyRpcs {
  private KeyRpcs() {}

  // ---- lifecycle --------------------------------------------------------------------------------

  public static final Rpc<CreateKeyRequest, CreateKeyResponse> CREATE_KEY = Rpc.of(KeyServiceGrpc.getCreateKeyMethod())
      .target(q -> Target.key(q.getNamespace(), q.getName()))
      .version((q, r) -> r == null ? 0 : r.getKey().getPrimaryVersion())
      .changesState()
          .runs(WORKER).build();

  public static final Rpc<GetKeyRequest, GetKeyResponse> GET_KEY = Rpc.of(KeyServiceGrpc.getGetKeyMethod())
      .target(q -> Target.key(q.getKey()))
      .version((q, r) -> r == null ? 0 : r.getKey().getPrimaryVersion())
      .runs(WORKER).build();

  public static final Rpc<ListKeysRequest, ListKeysResponse> LIST_KEYS = Rpc.of(KeyServiceGrpc.getListKeysMethod())
      .target(q -> Target.namespace(q.getNamespace()))
      .runs(WORKER).build();

  public static final Rpc<UpdateKeyRequest, UpdateKeyResponse> UPDATE_KEY = Rpc.of(KeyServiceGrpc.getUpdateKeyMethod())
      .target(q -> Target.key(q.getKey()))
      .version((q, r) -> r == null ? 0 : r.getKey().getPrimaryVersion())
      .changesState()
          .runs(WORKER).build();

  public static final Rpc<RotateKeyRequest, RotateKeyResponse> ROTATE_KEY = Rpc.of(KeyServiceGrpc.getRotateKeyMethod())
      .target(q -> Target.key(q.getKey()))
      .version((q, r) -> r == null ? 0 : r.getVersion().getVersion())
      .changesState()
          .runs(WORKER).build();

  public static final Rpc<ListKeyVersionsRequest, ListKeyVersionsResponse> LIST_KEY_VERSIONS =
      Rpc.of(KeyServiceGrpc.getListKeyVersionsMethod())
          .target(q -> Target.key(q.getKey()))
          .runs(WORKER).build();

  public static final Rpc<GetKeyVersionRequest, GetKeyVersionResponse> GET_KEY_VERSION =
      Rpc.of(KeyServiceGrpc.getGetKeyVersionMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion().getVersion())
          .runs(WORKER).build();

  public static final Rpc<SetPrimaryVersionRequest, SetPrimaryVersionResponse> SET_PRIMARY_VERSION =
      Rpc.of(KeyServiceGrpc.getSetPrimaryVersionMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? q.getVersion() : r.getKey().getPrimaryVersion())
          .changesState()
          .runs(WORKER).build();

  public static final Rpc<DisableKeyVersionRequest, DisableKeyVersionResponse> DISABLE_KEY_VERSION =
      Rpc.of(KeyServiceGrpc.getDisableKeyVersionMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion().getVersion())
          .changesState()
          .runs(WORKER).build();

  public static final Rpc<EnableKeyVersionRequest, EnableKeyVersionResponse> ENABLE_KEY_VERSION =
      Rpc.of(KeyServiceGrpc.getEnableKeyVersionMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion().getVersion())
          .changesState()
          .runs(WORKER).build();

  public static final Rpc<ScheduleKeyVersionDestructionRequest, ScheduleKeyVersionDestructionResponse>
      SCHEDULE_KEY_VERSION_DESTRUCTION = Rpc.of(KeyServiceGrpc.getScheduleKeyVersionDestructionMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion().getVersion())
          .changesState()
          .runs(WORKER).build();

  public static final Rpc<RestoreKeyVersionRequest, RestoreKeyVersionResponse> RESTORE_KEY_VERSION =
      Rpc.of(KeyServiceGrpc.getRestoreKeyVersionMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion().getVersion())
          .changesState()
          .runs(WORKER).build();

  public static final Rpc<RevokeKeyVersionRequest, RevokeKeyVersionResponse> REVOKE_KEY_VERSION =
      Rpc.of(KeyServiceGrpc.getRevokeKeyVersionMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion().getVersion())
          .changesState()
          .runs(WORKER).build();

  // ---- use --------------------------------------------------------------------------------------

  public static final Rpc<EncryptRequest, EncryptResponse> ENCRYPT = Rpc.of(KeyServiceGrpc.getEncryptMethod())
      .target(q -> Target.key(q.getKey()))
      .secret(EncryptRequest.PLAINTEXT_FIELD_NUMBER)
      .version((q, r) -> r == null ? 0 : r.getVersion())
      .runs(KEY_USE_LIGHT).build();

  public static final Rpc<DecryptRequest, DecryptResponse> DECRYPT = Rpc.of(KeyServiceGrpc.getDecryptMethod())
      .target(q -> Target.key(q.getKey()))
      .version((q, r) -> r == null ? 0 : r.getVersion())
      .runs(KEY_USE_LIGHT).build();

  public static final Rpc<GenerateDataKeyRequest, GenerateDataKeyResponse> GENERATE_DATA_KEY =
      Rpc.of(KeyServiceGrpc.getGenerateDataKeyMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? 0 : r.getVersion())
          .runs(KEY_USE_LIGHT).build();

  public static final Rpc<SignRequest, SignResponse> SIGN = Rpc.of(KeyServiceGrpc.getSignMethod())
      .target(q -> Target.key(q.getKey()))
      .secret(SignRequest.DATA_FIELD_NUMBER, SignRequest.DIGEST_FIELD_NUMBER)
      .version((q, r) -> r == null ? q.getVersion() : r.getVersion())
      .runs(KEY_USE_HEAVY).build();

  public static final Rpc<VerifyRequest, VerifyResponse> VERIFY = Rpc.of(KeyServiceGrpc.getVerifyMethod())
      .target(q -> Target.key(q.getKey()))
      .secret(VerifyRequest.DATA_FIELD_NUMBER, VerifyRequest.DIGEST_FIELD_NUMBER)
      .version((q, r) -> r == null ? q.getVersion() : r.getVersion())
      .runs(WORKER).build();

  public static final Rpc<AsymmetricDecryptRequest, AsymmetricDecryptResponse> ASYMMETRIC_DECRYPT =
      Rpc.of(KeyServiceGrpc.getAsymmetricDecryptMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion())
          .runs(KEY_USE_HEAVY).build();

  public static final Rpc<GetPublicKeyRequest, GetPublicKeyResponse> GET_PUBLIC_KEY =
      Rpc.of(KeyServiceGrpc.getGetPublicKeyMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion())
          .runs(KEY_USE_LIGHT).build();

  public static final Rpc<MacSignRequest, MacSignResponse> MAC_SIGN = Rpc.of(KeyServiceGrpc.getMacSignMethod())
      .target(q -> Target.key(q.getKey()))
      .secret(MacSignRequest.DATA_FIELD_NUMBER)
      .version((q, r) -> r == null ? 0 : r.getVersion())
      .runs(KEY_USE_LIGHT).build();

  public static final Rpc<MacVerifyRequest, MacVerifyResponse> MAC_VERIFY = Rpc.of(KeyServiceGrpc.getMacVerifyMethod())
      .target(q -> Target.key(q.getKey()))
      .secret(MacVerifyRequest.DATA_FIELD_NUMBER)
      .version((q, r) -> r == null ? q.getVersion() : r.getVersion())
      .runs(KEY_USE_LIGHT).build();

  public static final Rpc<GenerateRandomRequest, GenerateRandomResponse> GENERATE_RANDOM =
      Rpc.of(KeyServiceGrpc.getGenerateRandomMethod())
          .target(q -> Target.deployment())
          .runs(WORKER).build();

  public static final Rpc<GetKeyAttestationRequest, GetKeyAttestationResponse> GET_KEY_ATTESTATION =
      Rpc.of(KeyServiceGrpc.getGetKeyAttestationMethod())
          .target(q -> Target.key(q.getKey()))
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion())
          .runs(WORKER).build();

  /** A credential for this TPM's EK and the attestation key (ADR 0037): proves the AK is in this TPM. */
  public static final Rpc<ActivateAttestationCredentialRequest, ActivateAttestationCredentialResponse>
      ACTIVATE_ATTESTATION_CREDENTIAL = Rpc.of(KeyServiceGrpc.getActivateAttestationCredentialMethod())
          .target(q -> Target.deployment())
          .runs(WORKER).build();

  // ---- nodes (ADR 0038) -------------------------------------------------------------------------
  // Authorized on the deployment; the audit key is "node:<name>" (no key name has a colon). ReleaseKey is
  // authorized on the key.

  static Target node(String name) {
    return new Target(Target.Kind.DEPLOYMENT, "node:" + name, "", "");
  }

  public static final Rpc<EnrollNodeRequest, EnrollNodeResponse> ENROLL_NODE = Rpc.of(KeyServiceGrpc.getEnrollNodeMethod())
      .target(q -> node(q.getName())).changesState().runs(WORKER).build();

  /** The secret is the node TPM's proof; it is spent at once, but stays out of the audit digest all the same. */
  public static final Rpc<ActivateNodeRequest, ActivateNodeResponse> ACTIVATE_NODE =
      Rpc.of(KeyServiceGrpc.getActivateNodeMethod())
          .target(q -> node(q.getName())).secret(ActivateNodeRequest.SECRET_FIELD_NUMBER).changesState().runs(WORKER).build();

  public static final Rpc<GetNodeRequest, GetNodeResponse> GET_NODE = Rpc.of(KeyServiceGrpc.getGetNodeMethod())
      .target(q -> node(q.getName())).runs(WORKER).build();

  public static final Rpc<ListNodesRequest, ListNodesResponse> LIST_NODES = Rpc.of(KeyServiceGrpc.getListNodesMethod())
      .target(q -> Target.deployment()).runs(WORKER).build();

  public static final Rpc<RevokeNodeRequest, RevokeNodeResponse> REVOKE_NODE = Rpc.of(KeyServiceGrpc.getRevokeNodeMethod())
      .target(q -> node(q.getName())).changesState().runs(WORKER).build();

  public static final Rpc<GetAttestationChallengeRequest, GetAttestationChallengeResponse> GET_ATTESTATION_CHALLENGE =
      Rpc.of(KeyServiceGrpc.getGetAttestationChallengeMethod())
          .target(q -> node(q.getName())).changesState().runs(WORKER).build();

  public static final Rpc<AttestNodeRequest, AttestNodeResponse> ATTEST_NODE = Rpc.of(KeyServiceGrpc.getAttestNodeMethod())
      .target(q -> node(q.getName())).changesState().runs(WORKER).build();

  public static final Rpc<ReleaseKeyRequest, ReleaseKeyResponse> RELEASE_KEY = Rpc.of(KeyServiceGrpc.getReleaseKeyMethod())
      .target(q -> Target.key(q.getKey()))
      .version((q, r) -> r == null ? 0 : r.getVersion())
      .runs(WORKER).build();

  // ---- batches ----------------------------------------------------------------------------------

  /** The most items one batch call carries (docs/api.md, "Batches"); the whole call is at most 1 MiB. */
  public static final int MAX_BATCH_ITEMS = 1000;

  /** Each item is an Encrypt: authorized as Encrypt on its key, its plaintext left out of its digest. */
  public static final Rpc<BatchEncryptRequest, BatchEncryptResponse> BATCH_ENCRYPT =
      Rpc.of(KeyServiceGrpc.getBatchEncryptMethod())
          .batchOf(ENCRYPT, BatchEncryptRequest.ITEMS_FIELD_NUMBER, BatchEncryptRequest::getItemsList, MAX_BATCH_ITEMS)
          .build();

  public static final Rpc<BatchDecryptRequest, BatchDecryptResponse> BATCH_DECRYPT =
      Rpc.of(KeyServiceGrpc.getBatchDecryptMethod())
          .batchOf(DECRYPT, BatchDecryptRequest.ITEMS_FIELD_NUMBER, BatchDecryptRequest::getItemsList, MAX_BATCH_ITEMS)
          .build();

  public static final Rpc<BatchSignRequest, BatchSignResponse> BATCH_SIGN = Rpc.of(KeyServiceGrpc.getBatchSignMethod())
      .batchOf(SIGN, BatchSignRequest.ITEMS_FIELD_NUMBER, BatchSignRequest::getItemsList, MAX_BATCH_ITEMS)
      .build();

  public static final Rpc<BatchMacSignRequest, BatchMacSignResponse> BATCH_MAC_SIGN =
      Rpc.of(KeyServiceGrpc.getBatchMacSignMethod())
          .batchOf(MAC_SIGN, BatchMacSignRequest.ITEMS_FIELD_NUMBER, BatchMacSignRequest::getItemsList, MAX_BATCH_ITEMS)
          .build();

  // ---- import -----------------------------------------------------------------------------------

  /**
   * An import job's target: its namespace (the policy decides on the namespace, as for ListKeys); the
   * audit resource "namespace/importJobs/job_id". A name without a namespace targets the deployment
   * (a stricter decision) and then fails INVALID_IMPORT_JOB_NAME.
   */
  static Target importJob(String namespace, String jobId) {
    return new Target(Target.Kind.NAMESPACE, namespace + "/importJobs/" + jobId, namespace, "");
  }

  static Target importJob(String name) {
    int slash = name.indexOf('/');
    return slash < 0 ? new Target(Target.Kind.NAMESPACE, name, "", "")
        : importJob(name.substring(0, slash), name.substring(slash + 1));
  }

  public static final Rpc<CreateImportJobRequest, CreateImportJobResponse> CREATE_IMPORT_JOB =
      Rpc.of(KeyServiceGrpc.getCreateImportJobMethod())
          .target(q -> importJob(q.getNamespace(), q.getJobId()))
          .changesState()
          .runs(WORKER).build();

  public static final Rpc<GetImportJobRequest, GetImportJobResponse> GET_IMPORT_JOB =
      Rpc.of(KeyServiceGrpc.getGetImportJobMethod())
          .target(q -> importJob(q.getImportJob()))
          .runs(WORKER).build();

  public static final Rpc<ListImportJobsRequest, ListImportJobsResponse> LIST_IMPORT_JOBS =
      Rpc.of(KeyServiceGrpc.getListImportJobsMethod())
          .target(q -> new Target(Target.Kind.NAMESPACE, q.getNamespace() + "/importJobs/", q.getNamespace(), ""))
          .runs(WORKER).build();

  /**
   * Targets the key; its audit event names the key and the new (or re-imported) version, never the material.
   * wrapped_key is not secret in the digest's sense: like a Decrypt's ciphertext it is protected by a key the
   * caller does not hold (the job's), and the digest is a hash.
   */
  public static final Rpc<ImportKeyVersionRequest, ImportKeyVersionResponse> IMPORT_KEY_VERSION =
      Rpc.of(KeyServiceGrpc.getImportKeyVersionMethod())
          .target(q -> Target.key(q.getKey()))
          .secret(ImportKeyVersionRequest.TRANSFER_AUTH_FIELD_NUMBER)
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion().getVersion())
          .changesState()
          .runs(WORKER).build();

  // ---- export ------------------------------------------------------------------------------------

  /**
   * Targets the key (the duplicator role decides); audited with the exported version. transfer_auth is
   * secret: it authorizes use of the duplicate on the target.
   */
  public static final Rpc<ExportKeyVersionRequest, ExportKeyVersionResponse> EXPORT_KEY_VERSION =
      Rpc.of(KeyServiceGrpc.getExportKeyVersionMethod())
          .target(q -> Target.key(q.getKey()))
          .secret(ExportKeyVersionRequest.TRANSFER_AUTH_FIELD_NUMBER)
          .version((q, r) -> r == null ? q.getVersion() : r.getVersion())
          .runs(WORKER).build();

  /** The whole service. */
  public static final RpcTable TABLE = RpcTable.of(KeyServiceGrpc.getServiceDescriptor(),
      CREATE_KEY, GET_KEY, LIST_KEYS, UPDATE_KEY, ROTATE_KEY, LIST_KEY_VERSIONS, GET_KEY_VERSION, SET_PRIMARY_VERSION,
      DISABLE_KEY_VERSION, ENABLE_KEY_VERSION, SCHEDULE_KEY_VERSION_DESTRUCTION, RESTORE_KEY_VERSION,
      REVOKE_KEY_VERSION, ENCRYPT, DECRYPT, GENERATE_DATA_KEY, SIGN, VERIFY, ASYMMETRIC_DECRYPT, GET_PUBLIC_KEY,
      MAC_SIGN, MAC_VERIFY, GENERATE_RANDOM, GET_KEY_ATTESTATION, ACTIVATE_ATTESTATION_CREDENTIAL,
      ENROLL_NODE, ACTIVATE_NODE, GET_NODE, LIST_NODES, REVOKE_NODE, GET_ATTESTATION_CHALLENGE, ATTEST_NODE, RELEASE_KEY,
      BATCH_ENCRYPT, BATCH_DECRYPT, BATCH_SIGN, BATCH_MAC_SIGN,
      CREATE_IMPORT_JOB, GET_IMPORT_JOB, LIST_IMPORT_JOBS, IMPORT_KEY_VERSION, EXPORT_KEY_VERSION);
}
