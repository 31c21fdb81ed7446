package io.tpmkms.key.error;

import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import java.util.Map;

/**
 * The service's one failure type: a code (which gRPC status), a stable
 * machine-readable reason (the {@code google.rpc.ErrorInfo.reason}), a message
 * safe to show the caller, and metadata (key name, version). Messages never
 * contain key material, plaintext or tokens.
 */
public final class KmsException extends ServiceException {
  public KmsException(ErrorCode code, String reason, String message) {
    this(code, reason, message, Map.of(), null);
  }

  public KmsException(ErrorCode code, String reason, String message, Map<String, String> metadata, Throwable cause) {
    super(code, reason, message, metadata, cause);
  }

  /** A copy with one more metadata entry. */
  public KmsException with(String key, String value) {
    return new KmsException(code(), reason(), getMessage(), metadataWith(key, value), getCause());
  }

  public static KmsException invalid(String reason, String message) {
    return new KmsException(ErrorCode.INVALID_ARGUMENT, reason, message);
  }

  public static KmsException failedPrecondition(String reason, String message) {
    return new KmsException(ErrorCode.FAILED_PRECONDITION, reason, message);
  }

  public static KmsException keyNotFound(String key) {
    return new KmsException(ErrorCode.NOT_FOUND, Reasons.KEY_NOT_FOUND,
        "key \"" + key + "\" not found", Map.of("key", key), null);
  }

  public static KmsException versionNotFound(String key, int version) {
    return new KmsException(ErrorCode.NOT_FOUND, Reasons.KEY_VERSION_NOT_FOUND,
        "version " + version + " of key \"" + key + "\" not found",
        Map.of("key", key, "version", Integer.toString(version)), null);
  }
}
