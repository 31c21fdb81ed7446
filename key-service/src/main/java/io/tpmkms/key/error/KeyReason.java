package io.tpmkms.key.error;

import io.tpmkms.platform.error.Reason;

/**
 * The stable {@code google.rpc.ErrorInfo.reason} values. Clients may switch on
 * them; they are never renamed (docs/errors.md lists each with its status).
 */
public enum KeyReason implements Reason {

  // INVALID_ARGUMENT
  INVALID_REQUEST,
  INVALID_KEY_NAME,
  INVALID_NAMESPACE,
  INVALID_LABEL,
  INVALID_ALGORITHM,
  INVALID_PURPOSE,
  INVALID_ROTATION_PERIOD,
  INVALID_DESTROY_DELAY,
  INVALID_VERSION,
  INVALID_PAGE_TOKEN,
  INVALID_UPDATE_MASK,
  PLAINTEXT_TOO_LARGE,
  AAD_TOO_LARGE,
  DATA_TOO_LARGE,
  INVALID_DIGEST,
  INVALID_LENGTH,
  CIPHERTEXT_INVALID,
  DECRYPTION_FAILED,
  /** An import job's namespace or job id is not a valid name. */
  INVALID_IMPORT_JOB_NAME,
  /** The import method is unspecified or unknown, or cannot carry the algorithm's material (plain RSA-OAEP of an asymmetric key). */
  INVALID_IMPORT_METHOD,
  /** The wrapped key does not unwrap: wrong length, RSA-OAEP failure, AES-KWP integrity failure. */
  WRAPPED_KEY_INVALID,
  /** The unwrapped material does not parse as, or does not match, the declared algorithm. */
  KEY_MATERIAL_INVALID,
  /** export_policy is unknown. */
  INVALID_EXPORT_POLICY,
  /**
   * platform_binding is malformed (PCRs not 1..8 distinct of 0..23, values not one 32-byte value per
   * PCR) or not possible for the key (SOFTWARE, DUPLICABLE, import-only).
   */
  INVALID_PLATFORM_BINDING,
  /** ActivateAttestationCredential: the credential is malformed or not for this TPM's EK and attestation key. */
  CREDENTIAL_INVALID,
  /** Nodes (ADR 0038): a node name that is not [a-z0-9][a-z0-9._-]{0,62}. */
  INVALID_NODE_NAME,
  /** EnrollNode: the EK certificate is malformed, not the EK's, or does not chain to a configured manufacturer CA. */
  EK_CERTIFICATE_INVALID,
  /** EnrollNode: the AK is not a restricted signing key generated in (and fixed to) its TPM. */
  ATTESTATION_KEY_INVALID,
  /** AttestNode: not a quote signed by the node's AK over its challenge (forged, altered, replayed); nothing changes. */
  QUOTE_INVALID,
  /** The duplication target is not a storage key in a TPM the deployment trusts (ExportKeyVersion). */
  DUPLICATION_TARGET_INVALID,
  /** The duplication blob does not import (tampered, made for another parent, wrong transfer auth). */
  DUPLICATION_BLOB_INVALID,

  // NOT_FOUND / ALREADY_EXISTS
  KEY_NOT_FOUND,
  // PERMISSION_DENIED
  /** The policy service denied the call; the message carries the decision's reasons. */
  PERMISSION_DENIED,
  KEY_VERSION_NOT_FOUND,
  KEY_ALREADY_EXISTS,
  IMPORT_JOB_NOT_FOUND,
  IMPORT_JOB_ALREADY_EXISTS,
  NODE_NOT_FOUND,
  NODE_ALREADY_EXISTS,

  // FAILED_PRECONDITION
  WRONG_KEY_PURPOSE,
  KEY_VERSION_NOT_ENABLED,
  KEY_VERSION_COMPROMISED,
  KEY_VERSION_DESTROYED,
  ILLEGAL_STATE_TRANSITION,
  PRIMARY_VERSION_PROTECTED,
  KEY_MATERIAL_UNUSABLE,
  /** The key has no primary version (an import-only key before its first import). */
  KEY_HAS_NO_PRIMARY,
  /** RotateKey on an import-only key: its versions come from ImportKeyVersion only. */
  KEY_IMPORT_ONLY,
  IMPORT_JOB_EXPIRED,
  /** The import job is still PENDING_GENERATION. */
  IMPORT_JOB_NOT_ACTIVE,
  /** The import job is in another namespace or of another protection level than the key. */
  IMPORT_JOB_MISMATCH,
  /** Re-import of material that differs from the DESTROYED version's (its fingerprint). */
  KEY_MATERIAL_MISMATCH,
  /** Re-import into a version that is not DESTROYED or was not imported. */
  KEY_VERSION_NOT_REIMPORTABLE,
  /** ExportKeyVersion of a version whose export policy is NON_EXPORTABLE (or of another deployment's key). */
  KEY_NOT_EXPORTABLE,
  /** ImportKeyVersion would give a version another export policy than its key's (ADR 0025). */
  EXPORT_POLICY_MISMATCH,
  /**
   * The TPM refused a platform-bound key: a PCR of its binding differs from the bound value
   * (details name the PCRs). It works again when the platform state does.
   */
  PLATFORM_STATE_MISMATCH,
  /** ActivateNode with the wrong secret (the AK is not in the EK's TPM), too late, or for a node not waiting. */
  NODE_ACTIVATION_FAILED,
  /** A node that has not answered its enrollment credential yet. */
  NODE_NOT_ACTIVATED,
  /** A revoked node: no attestation, no release. */
  NODE_REVOKED,
  /** ReleaseKey to a node that is not TRUSTED (enrolled but not attested, or its last attestation failed). */
  NODE_NOT_TRUSTED,
  /** ReleaseKey to a node whose last passing attestation is older than tpmkms.attestation.freshness. */
  NODE_ATTESTATION_STALE,
  /** AttestNode with a nonce that is not the node's outstanding challenge (none, expired, used or another). */
  CHALLENGE_INVALID,
  /** Node enrollment without tpmkms.attestation.ek-ca-file (or an unreadable one). */
  ATTESTATION_NOT_CONFIGURED,

  // UNIMPLEMENTED
  PROTECTION_LEVEL_UNAVAILABLE,
  CAPABILITY_UNAVAILABLE,

  // ABORTED
  CONCURRENT_MODIFICATION,
  ETAG_MISMATCH,

  // UNAVAILABLE / RESOURCE_EXHAUSTED / INTERNAL
  BACKEND_UNAVAILABLE,
  DATABASE_UNAVAILABLE,
  /** The operation's audit event could not be made durable, so the operation was refused (fail closed). */
  AUDIT_UNAVAILABLE,
  /** No authorization decision could be had (policy service unreachable or refusing us): fail closed. */
  POLICY_UNAVAILABLE,
  BACKEND_RESOURCE_EXHAUSTED,
  INTERNAL;
}
