package io.tpmkms.audit.error;

import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import java.util.Map;

/**
 * The audit service's one failure type: a code (which gRPC status), a stable
 * reason (the {@code google.rpc.ErrorInfo.reason}), a message safe to show the
 * caller, and metadata (which event, which field).
 */
public final class AuditException extends ServiceException {
  public AuditException(ErrorCode code, String reason, String message) {
    this(code, reason, message, Map.of(), null);
  }

  public AuditException(ErrorCode code, String reason, String message, Map<String, String> metadata,
      Throwable cause) {
    super(code, reason, message, metadata, cause);
  }

  /** A copy with one more metadata entry. */
  public AuditException with(String key, String value) {
    return new AuditException(code(), reason(), getMessage(), metadataWith(key, value), getCause());
  }

  public static AuditException invalid(String reason, String message) {
    return new AuditException(ErrorCode.INVALID_ARGUMENT, reason, message);
  }

  public static AuditException databaseUnavailable(Throwable cause) {
    return new AuditException(ErrorCode.UNAVAILABLE, Reasons.DATABASE_UNAVAILABLE,
        "the audit database is unavailable; retry later", Map.of(), cause);
  }
}
