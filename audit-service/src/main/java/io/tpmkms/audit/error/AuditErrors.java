package io.tpmkms.audit.error;

import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.GrpcErrors;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.protection.BackendException;
import java.util.Map;

/**
 * The audit service's own failures ({@link AuditReason}): its TPM (the
 * checkpoint signer) unavailable is UNAVAILABLE, any other TPM failure
 * INTERNAL. The platform's {@link GrpcErrors} does the rest (a lost database
 * by SQLState, INTERNAL).
 */
public final class AuditErrors {
  private AuditErrors() {}

  private static final String DATABASE_UNAVAILABLE = "the audit database is unavailable; retry later";

  /** Every failure of an audit-service call becomes a status here. */
  public static final GrpcErrors GRPC = new GrpcErrors(DATABASE_UNAVAILABLE, (cause, thrown) -> {
    if (!(cause instanceof BackendException b)) return null;
    if (b.kind() == BackendException.Kind.UNAVAILABLE || b.kind() == BackendException.Kind.RESOURCE_EXHAUSTED) {
      return new ServiceException(ErrorCode.UNAVAILABLE, AuditReason.BACKEND_UNAVAILABLE,
          "the audit service's TPM is unavailable; retry later", Map.of(), thrown);
    }
    return GrpcErrors.internal(thrown);
  });

  public static ServiceException databaseUnavailable(Throwable cause) {
    return GRPC.databaseUnavailable(cause);
  }
}
