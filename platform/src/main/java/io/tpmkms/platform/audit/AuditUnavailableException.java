package io.tpmkms.platform.audit;

import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import java.util.Map;

/** An operation refused because its audit event could not be made durable (fail closed). */
public final class AuditUnavailableException extends ServiceException {
  public static final String REASON = "AUDIT_UNAVAILABLE";

  AuditUnavailableException(Throwable cause) {
    super(ErrorCode.UNAVAILABLE, io.tpmkms.platform.error.CommonReason.AUDIT_UNAVAILABLE,
        "the operation could not be recorded in the audit trail, so it was refused; retry later", Map.of(), cause);
  }
}
