package io.tpmkms.policy.error;

import io.grpc.StatusRuntimeException;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.StatusMapper;
import jakarta.persistence.OptimisticLockException;
import jakarta.persistence.PessimisticLockException;
import java.sql.SQLTransientException;
import java.util.Map;
import org.hibernate.StaleStateException;
import org.hibernate.exception.ConstraintViolationException;
import org.hibernate.exception.JDBCConnectionException;
import org.hibernate.exception.LockAcquisitionException;

/**
 * The one place where the policy service's failures become gRPC statuses.
 * Every RPC ends in {@link #toStatus}; nothing reaches a caller as UNKNOWN.
 * A lost optimistic lock or a unique-key race is ABORTED (retry), a lost
 * database UNAVAILABLE, anything unrecognized INTERNAL with a correlation id.
 */
public final class GrpcErrors {
  private GrpcErrors() {}

  public static StatusRuntimeException toStatus(Throwable t) {
    return StatusMapper.toStatus(t, classify(t));
  }

  public static PolicyException classify(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof PolicyException p) return p;
      if (c instanceof io.tpmkms.platform.error.ServiceException s) {
        return new PolicyException(s.code(), s.reason(), s.getMessage(), s.metadata(), t);
      }
      if (c instanceof OptimisticLockException || c instanceof StaleStateException
          || c instanceof PessimisticLockException || c instanceof LockAcquisitionException
          || c instanceof ConstraintViolationException) {
        // a unique key another transaction took between our check and our insert is a lost race too
        return new PolicyException(ErrorCode.ABORTED, Reasons.CONCURRENT_MODIFICATION,
            "changed concurrently; retry", Map.of(), t);
      }
      if (c instanceof JDBCConnectionException || c instanceof SQLTransientException
          || (c.getMessage() != null && c.getMessage().contains("Unable to acquire JDBC Connection"))) {
        return new PolicyException(ErrorCode.UNAVAILABLE, Reasons.DATABASE_UNAVAILABLE,
            "the policy database is unavailable; retry later", Map.of(), t);
      }
    }
    return new PolicyException(ErrorCode.INTERNAL, Reasons.INTERNAL, "internal error", Map.of(), t);
  }
}
