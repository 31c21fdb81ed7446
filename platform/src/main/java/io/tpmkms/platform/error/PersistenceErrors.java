package io.tpmkms.platform.error;

import jakarta.persistence.OptimisticLockException;
import jakarta.persistence.PessimisticLockException;
import java.util.Map;
import org.hibernate.StaleStateException;
import org.hibernate.exception.JDBCConnectionException;
import org.hibernate.exception.LockAcquisitionException;

/**
 * Failures of JPA/Hibernate services (key and policy service; the audit
 * service has no JPA and never loads this class): a lost optimistic or
 * pessimistic lock is ABORTED (CONCURRENT_MODIFICATION, retry), a lost
 * connection UNAVAILABLE (DATABASE_UNAVAILABLE).
 */
public final class PersistenceErrors {
  private PersistenceErrors() {}

  /** @param concurrent the message of CONCURRENT_MODIFICATION ("the key was changed concurrently; retry") */
  public static GrpcErrors.Classifier classifier(String concurrent, String databaseUnavailable) {
    return (c, thrown) -> {
      if (c instanceof OptimisticLockException || c instanceof StaleStateException
          || c instanceof PessimisticLockException || c instanceof LockAcquisitionException) {
        return new ServiceException(ErrorCode.ABORTED, CommonReason.CONCURRENT_MODIFICATION, concurrent, Map.of(),
            thrown);
      }
      if (c instanceof JDBCConnectionException) {
        return new ServiceException(ErrorCode.UNAVAILABLE, CommonReason.DATABASE_UNAVAILABLE, databaseUnavailable,
            Map.of(), thrown);
      }
      return null;
    };
  }
}
