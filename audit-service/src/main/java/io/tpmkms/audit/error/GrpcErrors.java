package io.tpmkms.audit.error;

import io.tpmkms.platform.error.ErrorCode;
import io.grpc.StatusRuntimeException;
import io.tpmkms.platform.error.StatusMapper;
import io.tpmkms.protection.BackendException;
import java.sql.SQLException;
import java.sql.SQLTransientException;
import java.util.Map;

/**
 * The one place where failures become gRPC statuses. Every RPC's failure
 * passes through {@link #toStatus(Throwable)}; nothing reaches a caller as
 * UNKNOWN. Internal failures carry a correlation id, logged with the cause.
 */
public final class GrpcErrors {
  private GrpcErrors() {}

  public static StatusRuntimeException toStatus(Throwable t) {
    AuditException e = classify(t);
    return StatusMapper.toStatus(t, e);
  }

  /** Any throwable as an AuditException: database outages, TPM outages, the rest INTERNAL. */
  public static AuditException classify(Throwable t) {
    if (t instanceof AuditException a) return a;
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof AuditException a) return a;
      if (c instanceof io.tpmkms.platform.error.ServiceException s) {
        return new AuditException(s.code(), s.reason(), s.getMessage(), s.metadata(), t);
      }
      if (c instanceof BackendException b) {
        if (b.kind() == BackendException.Kind.UNAVAILABLE || b.kind() == BackendException.Kind.RESOURCE_EXHAUSTED) {
          return new AuditException(ErrorCode.UNAVAILABLE, Reasons.BACKEND_UNAVAILABLE,
              "the audit service's TPM is unavailable; retry later", Map.of(), t);
        }
        break;
      }
      if (c instanceof SQLException s && databaseDown(s)) return AuditException.databaseUnavailable(t);
    }
    return new AuditException(ErrorCode.INTERNAL, Reasons.INTERNAL, "internal error", Map.of(), t);
  }

  /**
   * Connection-class failures: SQLState class 08 (connection exception), 57P0x
   * (server shutting down, cannot connect now), transient exceptions, and
   * Agroal's acquisition timeout (no SQLState).
   */
  public static boolean databaseDown(SQLException s) {
    for (SQLException e = s; e != null; e = e.getNextException()) {
      String state = e.getSQLState();
      if (e instanceof SQLTransientException) return true;
      if (state != null && (state.startsWith("08") || state.startsWith("57P"))) return true;
      String m = e.getMessage();
      if (state == null && m != null && (m.contains("Acquisition timeout") || m.contains("acquisition timeout")
          || m.contains("Connection refused") || m.contains("This connection has been closed"))) {
        return true;
      }
    }
    return false;
  }

}
