package io.tpmkms.key.error;

/**
 * The stable {@code google.rpc.ErrorInfo.reason} values. Clients may switch on
 * them; they are never renamed (docs/errors.md lists each with its status).
 */
public final class Reasons {
  private Reasons() {}


  // INVALID_ARGUMENT
  public static final String INVALID_REQUEST = "INVALID_REQUEST";
  public static final String INVALID_KEY_NAME = "INVALID_KEY_NAME";
  public static final String INVALID_NAMESPACE = "INVALID_NAMESPACE";
  public static final String INVALID_LABEL = "INVALID_LABEL";
  public static final String INVALID_ALGORITHM = "INVALID_ALGORITHM";
  public static final String INVALID_PURPOSE = "INVALID_PURPOSE";
  public static final String INVALID_ROTATION_PERIOD = "INVALID_ROTATION_PERIOD";
  public static final String INVALID_DESTROY_DELAY = "INVALID_DESTROY_DELAY";
  public static final String INVALID_VERSION = "INVALID_VERSION";
  public static final String INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN";
  public static final String INVALID_UPDATE_MASK = "INVALID_UPDATE_MASK";
  public static final String PLAINTEXT_TOO_LARGE = "PLAINTEXT_TOO_LARGE";
  public static final String AAD_TOO_LARGE = "AAD_TOO_LARGE";
  public static final String DATA_TOO_LARGE = "DATA_TOO_LARGE";
  public static final String INVALID_DIGEST = "INVALID_DIGEST";
  public static final String INVALID_LENGTH = "INVALID_LENGTH";
  public static final String CIPHERTEXT_INVALID = "CIPHERTEXT_INVALID";
  public static final String DECRYPTION_FAILED = "DECRYPTION_FAILED";

  // NOT_FOUND / ALREADY_EXISTS
  public static final String KEY_NOT_FOUND = "KEY_NOT_FOUND";
  // PERMISSION_DENIED
  /** The policy service denied the call; the message carries the decision's reasons. */
  public static final String PERMISSION_DENIED = "PERMISSION_DENIED";
  public static final String KEY_VERSION_NOT_FOUND = "KEY_VERSION_NOT_FOUND";
  public static final String KEY_ALREADY_EXISTS = "KEY_ALREADY_EXISTS";

  // FAILED_PRECONDITION
  public static final String WRONG_KEY_PURPOSE = "WRONG_KEY_PURPOSE";
  public static final String KEY_VERSION_NOT_ENABLED = "KEY_VERSION_NOT_ENABLED";
  public static final String KEY_VERSION_COMPROMISED = "KEY_VERSION_COMPROMISED";
  public static final String KEY_VERSION_DESTROYED = "KEY_VERSION_DESTROYED";
  public static final String ILLEGAL_STATE_TRANSITION = "ILLEGAL_STATE_TRANSITION";
  public static final String PRIMARY_VERSION_PROTECTED = "PRIMARY_VERSION_PROTECTED";
  public static final String KEY_MATERIAL_UNUSABLE = "KEY_MATERIAL_UNUSABLE";

  // UNIMPLEMENTED
  public static final String PROTECTION_LEVEL_UNAVAILABLE = "PROTECTION_LEVEL_UNAVAILABLE";
  public static final String CAPABILITY_UNAVAILABLE = "CAPABILITY_UNAVAILABLE";

  // ABORTED
  public static final String CONCURRENT_MODIFICATION = "CONCURRENT_MODIFICATION";
  public static final String ETAG_MISMATCH = "ETAG_MISMATCH";

  // UNAVAILABLE / RESOURCE_EXHAUSTED / INTERNAL
  public static final String BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE";
  public static final String DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE";
  /** The operation's audit event could not be made durable, so the operation was refused (fail closed). */
  public static final String AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE";
  /** No authorization decision could be had (policy service unreachable or refusing us): fail closed. */
  public static final String POLICY_UNAVAILABLE = "POLICY_UNAVAILABLE";
  public static final String BACKEND_RESOURCE_EXHAUSTED = "BACKEND_RESOURCE_EXHAUSTED";
  public static final String INTERNAL = "INTERNAL";
}
