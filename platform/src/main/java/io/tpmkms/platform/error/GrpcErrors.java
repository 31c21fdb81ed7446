package io.tpmkms.platform.error;

import io.grpc.StatusRuntimeException;
import java.sql.SQLException;
import java.sql.SQLTransientException;
import java.util.List;
import java.util.Map;

/**
 * The one place where failures become gRPC statuses, for every service: each
 * call's failure passes through {@link #toStatus}; nothing reaches a caller as
 * UNKNOWN. A {@link ServiceException} anywhere in the cause chain is the
 * answer; else the service's classifiers (its backend, its persistence) are
 * asked for each cause; else a lost database connection is UNAVAILABLE
 * (DATABASE_UNAVAILABLE) and anything else INTERNAL with a correlation id,
 * logged with the cause ({@link StatusMapper}).
 */
public final class GrpcErrors {
  /** Recognises a service's own failures in one link of a cause chain; null when it does not. */
  @FunctionalInterface
  public interface Classifier {
    ServiceException classify(Throwable cause, Throwable thrown);
  }

  private final List<Classifier> classifiers;
  private final String databaseUnavailable;

  /**
   * @param databaseUnavailable the message of DATABASE_UNAVAILABLE ("the key database is unavailable; retry later")
   * @param classifiers asked in order for every link of the cause chain
   */
  public GrpcErrors(String databaseUnavailable, Classifier... classifiers) {
    this.databaseUnavailable = databaseUnavailable;
    this.classifiers = List.of(classifiers);
  }

  public StatusRuntimeException toStatus(Throwable t) {
    return StatusMapper.toStatus(t, classify(t));
  }

  /** Any throwable as a service exception. */
  public ServiceException classify(Throwable t) {
    if (t instanceof ServiceException s) return s;
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof ServiceException s) return s;
      for (Classifier k : classifiers) {
        ServiceException e = k.classify(c, t);
        if (e != null) return e;
      }
      if (c instanceof SQLException s && databaseDown(s)) return databaseUnavailable(t);
      if (c.getMessage() != null && c.getMessage().contains("Unable to acquire JDBC Connection")) {
        return databaseUnavailable(t);
      }
    }
    return internal(t);
  }

  public ServiceException databaseUnavailable(Throwable cause) {
    return new ServiceException(ErrorCode.UNAVAILABLE, CommonReason.DATABASE_UNAVAILABLE, databaseUnavailable,
        Map.of(), cause);
  }

  public static ServiceException internal(Throwable cause) {
    return new ServiceException(ErrorCode.INTERNAL, CommonReason.INTERNAL, "internal error", Map.of(), cause);
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
