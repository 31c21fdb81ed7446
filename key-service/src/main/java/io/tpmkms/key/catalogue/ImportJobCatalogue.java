package io.tpmkms.key.catalogue;

import io.tpmkms.key.catalogue.ImportJobEntity.State;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.persistence.EntityManager;
import jakarta.persistence.LockModeType;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.hibernate.exception.ConstraintViolationException;

/**
 * The one owner of the {@code import_job} table, like {@link KeyCatalogue} is of
 * the key tables. Transactions belong to the caller
 * ({@link io.tpmkms.key.imports.ImportService}); the claim methods lock rows
 * with {@code FOR UPDATE SKIP LOCKED} so that, with any number of replicas, each
 * pending job gets exactly one wrapping key installed and each due job expires
 * exactly once (ADR 0003's pattern).
 */
@ApplicationScoped
public class ImportJobCatalogue {
  private static final String BY_NAME = "select j from ImportJobEntity j where j.namespace = :ns and j.jobId = :id";
  private static final String NAME_CONSTRAINT = "import_job_name_uk";

  private final EntityManager em;

  public ImportJobCatalogue(EntityManager em) {
    this.em = em;
  }

  public Optional<ImportJobEntity> find(String namespace, String jobId) {
    return em.createQuery(BY_NAME, ImportJobEntity.class)
        .setParameter("ns", namespace).setParameter("id", jobId)
        .getResultStream().findFirst();
  }

  public Optional<ImportJobEntity> find(long id) {
    return Optional.ofNullable(em.find(ImportJobEntity.class, id));
  }

  /** The job, its row locked until the transaction ends (waits for another holder). */
  public Optional<ImportJobEntity> lock(String namespace, String jobId) {
    return em.createQuery(BY_NAME, ImportJobEntity.class)
        .setParameter("ns", namespace).setParameter("id", jobId)
        .setLockMode(LockModeType.PESSIMISTIC_WRITE)
        .getResultStream().findFirst();
  }

  /** A page of a namespace's jobs ordered by job id, strictly after {@code afterJobId}. */
  public List<ImportJobEntity> page(String namespace, String afterJobId, int limit) {
    return em.createQuery("select j from ImportJobEntity j where j.namespace = :ns and j.jobId > :after"
            + " order by j.jobId", ImportJobEntity.class)
        .setParameter("ns", namespace).setParameter("after", afterJobId == null ? "" : afterJobId)
        .setMaxResults(limit)
        .getResultList();
  }

  public void insert(ImportJobEntity job) {
    em.persist(job);
    em.flush();
  }

  /**
   * The job with that id, its row locked, if it is still PENDING_GENERATION and no
   * other transaction holds it; re-read under the lock. Empty: generated already
   * (by another worker or replica), or being installed elsewhere.
   */
  public Optional<ImportJobEntity> claimPending(long id) {
    List<?> locked = em.createNativeQuery(
            "SELECT id FROM import_job WHERE id = ?1 AND state = 'PENDING_GENERATION' FOR UPDATE SKIP LOCKED")
        .setParameter(1, id).getResultList();
    if (locked.isEmpty()) return Optional.empty();
    ImportJobEntity j = em.find(ImportJobEntity.class, id);
    em.refresh(j);
    return Optional.of(j);
  }

  /** Ids of jobs still PENDING_GENERATION that were created before {@code before}; no lock. */
  public List<Long> pendingSince(Instant before, int limit) {
    return em.createQuery("select j.id from ImportJobEntity j where j.state = :s and j.createTime < :before"
            + " order by j.createTime", Long.class)
        .setParameter("s", State.PENDING_GENERATION).setParameter("before", before)
        .setMaxResults(limit).getResultList();
  }

  /**
   * Up to {@code limit} jobs due to expire, their rows locked ({@code FOR UPDATE SKIP
   * LOCKED}), re-read under the lock: ACTIVE jobs whose expire time has come, and
   * jobs still PENDING_GENERATION a whole lifetime after they were created (their
   * generation keeps failing: they never became usable and must not linger).
   */
  public List<ImportJobEntity> claimDueForExpiry(Instant now, int limit) {
    List<?> ids = em.createNativeQuery("SELECT id FROM import_job WHERE (state = 'ACTIVE' AND expire_time <= ?1)"
            + " OR (state = 'PENDING_GENERATION' AND create_time + lifetime_seconds * interval '1 second' <= ?1)"
            + " ORDER BY coalesce(expire_time, create_time) LIMIT ?2 FOR UPDATE SKIP LOCKED")
        .setParameter(1, now).setParameter(2, limit).getResultList();
    return ids.stream().map(o -> {
      ImportJobEntity j = em.find(ImportJobEntity.class, ((Number) o).longValue());
      em.refresh(j);
      return j;
    }).toList();
  }

  public void flush() {
    em.flush();
  }

  /** Whether a failure is the unique constraint on a job's (namespace, job_id). */
  public static boolean isNameConflict(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof ConstraintViolationException cv && cv.getConstraintName() != null
          && cv.getConstraintName().contains(NAME_CONSTRAINT)) {
        return true;
      }
    }
    return false;
  }
}
