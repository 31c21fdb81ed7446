package io.tpmkms.key.catalogue;

import io.agroal.api.AgroalDataSource;
import io.tpmkms.key.lifecycle.KeyNames.KeyName;
import io.tpmkms.key.lifecycle.KeyVersionState;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.persistence.EntityManager;
import jakarta.persistence.LockModeType;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import org.hibernate.exception.ConstraintViolationException;

/**
 * The key catalogue: the one owner of the key tables ({@code kms_key},
 * {@code kms_key_label}, {@code kms_key_version}). Every query, insert, row
 * lock and paging query on keys and key versions is here; the lifecycle
 * ({@link io.tpmkms.key.lifecycle.KeyLifecycleService}), the key cache
 * ({@link io.tpmkms.key.crypto.KeyCache}) and the backend registry
 * ({@link io.tpmkms.key.backend.BackendRegistry}) go through it.
 *
 * <p><b>Transactions belong to the caller.</b> Every method except
 * {@link #countVersionsHoldingMaterial} runs in the caller's transaction and
 * persistence context and starts none of its own: the lifecycle decides where
 * a transaction begins and ends, takes the key's row lock here first
 * ({@link #lockKey}, {@link #claimDueForRotation}, {@link #claimDueForDestruction}),
 * changes the returned (managed) entities and writes its audit event into the
 * same transaction. Changed fields of managed entities are written at
 * {@link #flush} or commit.
 *
 * <p><b>Version numbers</b> come from the key's {@code last_version}: the first
 * version is 1 ({@link #insertKey}), each further one is {@code last_version + 1}
 * under the key's row lock ({@link #insertNextVersion}); a number is never
 * reused, not even after its version is destroyed.
 */
@ApplicationScoped
public class KeyCatalogue {
  private static final String KEY_BY_NAME = "select k from KeyEntity k where k.namespace = :ns and k.name = :n";
  /** The unique constraint on a key's (namespace, name) (V1__key_catalogue.sql). */
  private static final String NAME_CONSTRAINT = "kms_key_name_uk";

  private final EntityManager em;
  private final AgroalDataSource db;

  public KeyCatalogue(EntityManager em, AgroalDataSource db) {
    this.em = em;
    this.db = db;
  }

  /** A key and its primary version. */
  public record KeyAndPrimary(KeyEntity key, KeyVersionEntity primary) {}

  /** A key and all its versions (destroyed ones as tombstones), in no particular order. */
  public record KeyAndVersions(KeyEntity key, List<KeyVersionEntity> versions) {}

  // ---------------------------------------------------------------------------------------------
  // reads (no lock)

  /** The key of that name. */
  public Optional<KeyEntity> findKey(KeyName kn) {
    return em.createQuery(KEY_BY_NAME, KeyEntity.class)
        .setParameter("ns", kn.namespace())
        .setParameter("n", kn.name())
        .getResultStream().findFirst();
  }

  /** The key with that id. */
  public Optional<KeyEntity> findKey(long id) {
    return Optional.ofNullable(em.find(KeyEntity.class, id));
  }

  /** Version {@code number} of the key with id {@code keyId}. */
  public Optional<KeyVersionEntity> findVersion(long keyId, int number) {
    return em.createQuery("select v from KeyVersionEntity v where v.keyId = :id and v.number = :n",
            KeyVersionEntity.class)
        .setParameter("id", keyId)
        .setParameter("n", number)
        .getResultStream().findFirst();
  }

  /**
   * The key of that name with all its versions, as the key cache loads it:
   * the key, then its versions in one query.
   */
  public Optional<KeyAndVersions> findKeyWithVersions(KeyName kn) {
    return findKey(kn).map(k -> new KeyAndVersions(k, em.createQuery(
            "select v from KeyVersionEntity v where v.keyId = :id", KeyVersionEntity.class)
        .setParameter("id", k.id)
        .getResultList()));
  }

  /** Ids of keys whose rotation is due at {@code now}, the longest due first; no lock. */
  public List<Long> dueForRotation(Instant now, int limit) {
    return em.createQuery(
            "select k.id from KeyEntity k where k.nextRotationTime <= :now order by k.nextRotationTime", Long.class)
        .setParameter("now", now)
        .setMaxResults(limit)
        .getResultList();
  }

  /**
   * A page of keys ordered by (namespace, name), strictly after
   * ({@code afterNamespace}, {@code afterName}) (null: from the start), in
   * {@code namespace} if not null, carrying every one of {@code labels}; each
   * with its primary version.
   */
  /** What ListKeys narrows by besides namespace and labels; null fields: any. */
  public record KeyFilter(io.tpmkms.key.lifecycle.KeyPurpose purpose, io.tpmkms.protection.ProtectionLevel protection,
      io.tpmkms.key.lifecycle.KeyVersionState primaryState, String nameContains,
      io.tpmkms.key.lifecycle.KeyVersionState anyVersionState) {
    public static final KeyFilter ANY = new KeyFilter(null, null, null, null, null);
  }

  public List<KeyAndPrimary> pageKeys(String namespace, Map<String, String> labels, String afterNamespace,
      String afterName, int limit) {
    return pageKeys(namespace, labels, KeyFilter.ANY, afterNamespace, afterName, limit);
  }

  public List<KeyAndPrimary> pageKeys(String namespace, Map<String, String> labels, KeyFilter filter,
      String afterNamespace, String afterName, int limit) {
    StringBuilder sql = new StringBuilder("SELECT k.id FROM kms_key k WHERE (k.namespace, k.name) > (:ans, :an)");
    if (namespace != null) sql.append(" AND k.namespace = :ns");
    if (filter.purpose() != null) sql.append(" AND k.purpose = :purpose");
    if (filter.protection() != null) sql.append(" AND k.protection_level = :protection");
    if (filter.nameContains() != null) sql.append(" AND strpos(k.name, :nc) > 0");
    if (filter.primaryState() != null) {
      sql.append(" AND EXISTS (SELECT 1 FROM kms_key_version v WHERE v.key_id = k.id AND v.number = k.primary_version"
          + " AND v.state = :pstate)");
    }
    if (filter.anyVersionState() != null) {
      sql.append(" AND EXISTS (SELECT 1 FROM kms_key_version v WHERE v.key_id = k.id AND v.state = :vstate)");
    }
    int i = 0;
    for (String ignored : labels.keySet()) {
      sql.append(" AND EXISTS (SELECT 1 FROM kms_key_label l WHERE l.key_id = k.id AND l.label_key = :lk")
          .append(i).append(" AND l.label_value = :lv").append(i).append(')');
      i++;
    }
    sql.append(" ORDER BY k.namespace, k.name LIMIT :lim");
    var q = em.createNativeQuery(sql.toString())
        .setParameter("ans", afterNamespace == null ? "" : afterNamespace)
        .setParameter("an", afterName == null ? "" : afterName)
        .setParameter("lim", limit);
    if (namespace != null) q.setParameter("ns", namespace);
    if (filter.purpose() != null) q.setParameter("purpose", filter.purpose().name());
    if (filter.protection() != null) q.setParameter("protection", filter.protection().name());
    if (filter.nameContains() != null) q.setParameter("nc", filter.nameContains());
    if (filter.primaryState() != null) q.setParameter("pstate", filter.primaryState().name());
    if (filter.anyVersionState() != null) q.setParameter("vstate", filter.anyVersionState().name());
    i = 0;
    for (Map.Entry<String, String> e : labels.entrySet()) {
      q.setParameter("lk" + i, e.getKey()).setParameter("lv" + i, e.getValue());
      i++;
    }
    List<Long> ids = ((List<?>) q.getResultList()).stream().map(o -> ((Number) o).longValue()).toList();
    if (ids.isEmpty()) return List.of();
    List<KeyEntity> keys = em.createQuery(
            "select k from KeyEntity k where k.id in :ids order by k.namespace, k.name", KeyEntity.class)
        .setParameter("ids", ids).getResultList();
    Map<Long, KeyVersionEntity> primaries = new HashMap<>();
    em.createQuery("select v from KeyVersionEntity v, KeyEntity k where v.keyId = k.id"
            + " and v.number = k.primaryVersion and k.id in :ids", KeyVersionEntity.class)
        .setParameter("ids", ids).getResultList().forEach(v -> primaries.put(v.keyId, v));
    return keys.stream().map(k -> new KeyAndPrimary(k, primaries.get(k.id))).toList();
  }

  /**
   * A page of a key's versions in ascending number, strictly after
   * {@code afterNumber}; DESTROYED ones only if {@code includeDestroyed}.
   */
  public List<KeyVersionEntity> pageVersions(long keyId, int afterNumber, int limit, boolean includeDestroyed) {
    return em.createQuery("select v from KeyVersionEntity v where v.keyId = :id and v.number > :after"
            + " and (:all = true or v.state <> :destroyed) order by v.number", KeyVersionEntity.class)
        .setParameter("id", keyId)
        .setParameter("after", afterNumber)
        .setParameter("all", includeDestroyed)
        .setParameter("destroyed", KeyVersionState.DESTROYED)
        .setMaxResults(limit)
        .getResultList();
  }

  // ---------------------------------------------------------------------------------------------
  // row locks (held until the caller's transaction ends)

  /**
   * The key of that name, its row locked ({@code SELECT ... FOR UPDATE}, JPA
   * {@code PESSIMISTIC_WRITE}): waits for a lock another transaction holds.
   */
  public Optional<KeyEntity> lockKey(KeyName kn) {
    return em.createQuery(KEY_BY_NAME, KeyEntity.class)
        .setParameter("ns", kn.namespace())
        .setParameter("n", kn.name())
        .setLockMode(LockModeType.PESSIMISTIC_WRITE)
        .getResultStream().findFirst();
  }

  /**
   * The key with that id, its row locked, if its rotation is due at
   * {@code now} and no other transaction holds its lock
   * ({@code FOR UPDATE SKIP LOCKED}); re-read under the lock. Empty: not due
   * (any more), or being rotated elsewhere.
   */
  public Optional<KeyEntity> claimDueForRotation(long keyId, Instant now) {
    List<?> locked = em.createNativeQuery(
            "SELECT id FROM kms_key WHERE id = ?1 AND next_rotation_time <= ?2 FOR UPDATE SKIP LOCKED")
        .setParameter(1, keyId)
        .setParameter(2, now)
        .getResultList();
    if (locked.isEmpty()) return Optional.empty();
    KeyEntity k = em.find(KeyEntity.class, keyId);
    em.refresh(k);
    return Optional.of(k);
  }

  /**
   * Ids of up to {@code limit} versions whose scheduled destruction is due at
   * {@code now}, the longest due first, their rows locked; rows another
   * transaction holds are skipped ({@code FOR UPDATE SKIP LOCKED}). Read each
   * with {@link #reloadVersion}.
   */
  public List<Long> claimDueForDestruction(Instant now, int limit) {
    List<?> ids = em.createNativeQuery("SELECT id FROM kms_key_version WHERE state = 'DESTROY_SCHEDULED'"
            + " AND destroy_time <= ?1 ORDER BY destroy_time LIMIT ?2 FOR UPDATE SKIP LOCKED")
        .setParameter(1, now)
        .setParameter(2, limit)
        .getResultList();
    return ids.stream().map(o -> ((Number) o).longValue()).toList();
  }

  /** The version with that id, re-read from the database (after its row was locked). */
  public KeyVersionEntity reloadVersion(long versionId) {
    KeyVersionEntity v = em.find(KeyVersionEntity.class, versionId);
    em.refresh(v);
    return v;
  }

  // ---------------------------------------------------------------------------------------------
  // writes

  /**
   * Inserts a new key with its first version: number 1, which becomes the
   * key's primary and last version. The caller fills in everything else of
   * both; {@code first} needs no key id or number.
   *
   * @return {@code first}, now managed
   */
  public KeyVersionEntity insertKey(KeyEntity k, KeyVersionEntity first) {
    k.primaryVersion = 1;
    k.lastVersion = 1;
    em.persist(k);
    first.keyId = k.id;
    first.number = 1;
    em.persist(first);
    return first;
  }

  /**
   * Inserts a key without versions (an import-only key): primary and last version
   * 0 until the first import ({@link #insertNextVersion}) makes version 1.
   */
  public void insertKeyWithoutVersion(KeyEntity k) {
    k.primaryVersion = 0;
    k.lastVersion = 0;
    em.persist(k);
  }

  /**
   * Inserts the next version of a key whose row the caller has locked: its
   * number is the key's {@code last_version + 1}, and the key's last version
   * moves on to it. Does not change the primary.
   *
   * @return {@code v}, now managed
   */
  public KeyVersionEntity insertNextVersion(KeyEntity locked, KeyVersionEntity v) {
    v.keyId = locked.id;
    v.number = ++locked.lastVersion;
    em.persist(v);
    return v;
  }

  /**
   * Writes the pending inserts and changes of this transaction's keys and
   * versions now, so that a conflict (a taken name, a lost optimistic lock)
   * surfaces in the caller's work rather than at commit.
   */
  public void flush() {
    em.flush();
  }

  /** Whether a failure is the unique constraint on a key's name: another key of that name exists. */
  public static boolean isNameConflict(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof ConstraintViolationException cv && cv.getConstraintName() != null
          && cv.getConstraintName().contains(NAME_CONSTRAINT)) {
        return true;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------------------------------------
  // at startup, outside any transaction

  /**
   * How many key versions and ACTIVE import jobs still hold material (a blob),
   * read with plain JDBC outside any transaction (at startup, before the first key
   * is used). Empty if the catalogue cannot be read: no schema yet, a fresh
   * installation. Import jobs count from the schema version that has them on.
   */
  public OptionalLong countVersionsHoldingMaterial() {
    try (Connection c = db.getConnection()) {
      long versions = count(c, "SELECT count(*) FROM kms_key_version WHERE key_blob IS NOT NULL");
      long jobs;
      try {
        jobs = count(c, "SELECT count(*) FROM import_job WHERE wrapping_key_blob IS NOT NULL");
      } catch (SQLException e) {
        jobs = 0; // a catalogue from before import jobs (V4) not migrated yet
      }
      return OptionalLong.of(versions + jobs);
    } catch (SQLException e) {
      return OptionalLong.empty();
    }
  }

  private static long count(Connection c, String sql) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(sql); ResultSet rs = ps.executeQuery()) {
      rs.next();
      return rs.getLong(1);
    }
  }
}
