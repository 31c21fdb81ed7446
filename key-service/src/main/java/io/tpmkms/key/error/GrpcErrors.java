package io.tpmkms.key.error;

import io.tpmkms.platform.error.ErrorCode;
import io.grpc.StatusRuntimeException;
import io.tpmkms.platform.error.StatusMapper;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.protection.BackendException;
import jakarta.persistence.OptimisticLockException;
import jakarta.persistence.PessimisticLockException;
import java.sql.SQLTransientException;
import java.util.Map;
import org.hibernate.StaleStateException;
import org.hibernate.exception.JDBCConnectionException;
import org.hibernate.exception.LockAcquisitionException;

/**
 * The one place where failures become gRPC statuses. Every RPC's failure
 * passes through {@link #toStatus(Throwable)}; nothing reaches a caller as
 * UNKNOWN. Internal failures carry a correlation id, logged with the cause.
 */
public final class GrpcErrors {
  private GrpcErrors() {}

  public static StatusRuntimeException toStatus(Throwable t) {
    KmsException e = classify(t);
    return StatusMapper.toStatus(t, e);
  }

  /** Turns any throwable into a KmsException: backend kinds, persistence failures, the rest INTERNAL. */
  public static KmsException classify(Throwable t) {
    if (t instanceof KmsException k) return k;
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof KmsException k) return k;
      if (c instanceof ServiceException s) {
        return new KmsException(s.code(), s.reason(), s.getMessage(), s.metadata(), t);
      }
      if (c instanceof BackendException b) return fromBackend(b);
      if (c instanceof OptimisticLockException || c instanceof StaleStateException
          || c instanceof PessimisticLockException || c instanceof LockAcquisitionException) {
        return new KmsException(ErrorCode.ABORTED, Reasons.CONCURRENT_MODIFICATION,
            "the key was changed concurrently; retry", Map.of(), t);
      }
      if (c instanceof JDBCConnectionException || c instanceof SQLTransientException
          || (c.getMessage() != null && c.getMessage().contains("Unable to acquire JDBC Connection"))) {
        return new KmsException(ErrorCode.UNAVAILABLE, Reasons.DATABASE_UNAVAILABLE,
            "the key database is unavailable; retry later", Map.of(), t);
      }
    }
    return new KmsException(ErrorCode.INTERNAL, Reasons.INTERNAL, "internal error", Map.of(), t);
  }

  /** Backend failure kinds → codes (the TPM adapter translates TPM response codes into these kinds). */
  public static KmsException fromBackend(BackendException b) {
    return switch (b.kind()) {
      case INVALID_INPUT -> new KmsException(ErrorCode.INVALID_ARGUMENT,
          b.getMessage() != null && b.getMessage().startsWith("decryption failed")
              ? Reasons.DECRYPTION_FAILED : Reasons.INVALID_REQUEST,
          b.getMessage(), Map.of(), b);
      case KEY_INVALID -> new KmsException(ErrorCode.FAILED_PRECONDITION, Reasons.KEY_MATERIAL_UNUSABLE,
          "the key version's material cannot be used: " + b.getMessage(), Map.of(), b);
      case UNSUPPORTED -> new KmsException(ErrorCode.UNIMPLEMENTED, Reasons.CAPABILITY_UNAVAILABLE,
          b.getMessage(), Map.of(), b);
      case UNAVAILABLE -> new KmsException(ErrorCode.UNAVAILABLE, Reasons.BACKEND_UNAVAILABLE,
          "the key protection backend is unavailable; retry later", Map.of(), b);
      case RESOURCE_EXHAUSTED -> new KmsException(ErrorCode.RESOURCE_EXHAUSTED, Reasons.BACKEND_RESOURCE_EXHAUSTED,
          "the key protection backend is out of resources; retry later", Map.of(), b);
      case INTERNAL -> new KmsException(ErrorCode.INTERNAL, Reasons.INTERNAL, "internal error", Map.of(), b);
    };
  }

}
