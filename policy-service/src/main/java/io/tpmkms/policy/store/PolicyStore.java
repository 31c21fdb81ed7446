package io.tpmkms.policy.store;

import io.tpmkms.policy.error.PolicyErrors;
import io.tpmkms.policy.engine.Binding;
import io.tpmkms.policy.engine.OperatorPolicy;
import io.tpmkms.policy.engine.ResourceRef;
import io.tpmkms.policy.engine.Role;
import io.tpmkms.policy.engine.SubjectRef;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.policy.error.PolicyReason;
import io.tpmkms.platform.error.ErrorCode;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.persistence.EntityManager;
import jakarta.persistence.LockModeType;
import jakarta.persistence.TypedQuery;
import jakarta.transaction.Transactional;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;

/**
 * The policy store in PostgreSQL: policies with all their versions, role
 * bindings with their history, and the store revision. Each change is one
 * transaction that also writes its audit event and bumps the revision
 * ({@link PolicyChanges#recordAudit}); callers validate the input first
 * (policy text against the schema, names), so bad input changes nothing.
 *
 * <p>Concurrency: a policy's head row carries an optimistic lock; an
 * {@code expected_version} that is not the latest fails ABORTED
 * (CONCURRENT_MODIFICATION), and so does losing the lock to a concurrent
 * change. Two concurrent identical bindings: the partial unique index lets
 * one in, the other fails ABORTED.
 */
@ApplicationScoped
public class PolicyStore {
  private final EntityManager em;
  private final PolicyChanges changes;

  public PolicyStore(EntityManager em, PolicyChanges changes) {
    this.em = em;
    this.changes = changes;
  }

  /** What the engine needs for one revision: the revision read first, so the data is at least that new. */
  public record Snapshot(long revision, List<Binding> bindings, List<OperatorPolicy> policies) {}

  // ---- policies ---------------------------------------------------------------------------------

  @Transactional
  public PolicyVersionEntity createPolicy(String id, String description, String text, String by) {
    PolicyEntity head = em.find(PolicyEntity.class, id, LockModeType.OPTIMISTIC);
    if (head != null && !head.deleted) {
      throw new ServiceException(ErrorCode.ALREADY_EXISTS, PolicyReason.POLICY_ALREADY_EXISTS,
          "policy \"" + id + "\" already exists (version " + head.latestVersion + ")", Map.of("policy_id", id), null);
    }
    if (head == null) {
      head = new PolicyEntity();
      head.id = id;
      head.latestVersion = 0;
      em.persist(head);
    }
    // a deleted policy's id is re-created as its next version: the history stays one line
    return newVersion(head, description, text, false, by, "CreatePolicy");
  }

  @Transactional
  public PolicyVersionEntity updatePolicy(String id, String description, String text, long expectedVersion, String by) {
    PolicyEntity head = live(id);
    checkExpected(head, expectedVersion);
    return newVersion(head, description, text, false, by, "UpdatePolicy");
  }

  @Transactional
  public PolicyVersionEntity deletePolicy(String id, long expectedVersion, String by) {
    PolicyEntity head = live(id);
    checkExpected(head, expectedVersion);
    PolicyVersionEntity last = version(id, head.latestVersion);
    return newVersion(head, last.description, "", true, by, "DeletePolicy");
  }

  @Transactional
  public PolicyVersionEntity getPolicy(String id, long version) {
    PolicyEntity head = em.find(PolicyEntity.class, id);
    if (head == null) throw PolicyErrors.policyNotFound(id);
    if (version == 0) return version(id, head.latestVersion);
    PolicyVersionEntity v = em.find(PolicyVersionEntity.class, new PolicyVersionEntity.Key(id, version));
    if (v == null) {
      throw new ServiceException(ErrorCode.NOT_FOUND, PolicyReason.POLICY_VERSION_NOT_FOUND,
          "policy \"" + id + "\" has no version " + version, Map.of("policy_id", id, "version", Long.toString(version)),
          null);
    }
    return v;
  }

  /** The latest version of each policy with id after {@code afterId}, by id. */
  @Transactional
  public List<PolicyVersionEntity> listPolicies(boolean includeDeleted, String afterId, int limit) {
    return em.createQuery("SELECT v FROM PolicyVersionEntity v, PolicyEntity p WHERE v.policyId = p.id"
            + " AND v.version = p.latestVersion AND p.id > :after" + (includeDeleted ? "" : " AND p.deleted = false")
            + " ORDER BY p.id", PolicyVersionEntity.class)
        .setParameter("after", afterId).setMaxResults(limit).getResultList();
  }

  @Transactional
  public List<PolicyVersionEntity> listVersions(String id, long afterVersion, int limit) {
    if (em.find(PolicyEntity.class, id) == null) throw PolicyErrors.policyNotFound(id);
    return em.createQuery("SELECT v FROM PolicyVersionEntity v WHERE v.policyId = :id AND v.version > :after"
            + " ORDER BY v.version", PolicyVersionEntity.class)
        .setParameter("id", id).setParameter("after", afterVersion).setMaxResults(limit).getResultList();
  }

  private PolicyEntity live(String id) {
    PolicyEntity head = em.find(PolicyEntity.class, id, LockModeType.OPTIMISTIC);
    if (head == null) throw PolicyErrors.policyNotFound(id);
    if (head.deleted) {
      throw new ServiceException(ErrorCode.NOT_FOUND, PolicyReason.POLICY_NOT_FOUND,
          "policy \"" + id + "\" was deleted (version " + head.latestVersion + ")", Map.of("policy_id", id), null);
    }
    return head;
  }

  private static void checkExpected(PolicyEntity head, long expected) {
    if (expected != 0 && expected != head.latestVersion) {
      throw new ServiceException(ErrorCode.ABORTED, PolicyReason.CONCURRENT_MODIFICATION,
          "policy \"" + head.id + "\" is at version " + head.latestVersion + ", not " + expected
              + "; read it again and re-apply your change",
          Map.of("policy_id", head.id, "version", Long.toString(head.latestVersion)), null);
    }
  }

  private PolicyVersionEntity version(String id, long version) {
    return em.find(PolicyVersionEntity.class, new PolicyVersionEntity.Key(id, version));
  }

  private PolicyVersionEntity newVersion(PolicyEntity head, String description, String text, boolean deleted,
      String by, String operation) {
    PolicyVersionEntity v = new PolicyVersionEntity();
    v.policyId = head.id;
    v.version = head.latestVersion + 1;
    v.description = description;
    v.text = text;
    v.deleted = deleted;
    v.createdBy = by;
    v.createTime = now();
    em.persist(v);
    head.latestVersion = v.version;
    head.deleted = deleted;
    em.flush(); // the optimistic lock is checked here: a concurrent change of this head fails the whole change
    changes.recordAudit(em, operation, "policy/" + head.id, v.version);
    return v;
  }

  // ---- role bindings ----------------------------------------------------------------------------

  @Transactional
  public RoleBindingEntity createBinding(SubjectRef subject, Role role, ResourceRef resource, String description,
      String by) {
    return createBinding(subject, role, resource, description, by, "CreateRoleBinding");
  }

  private RoleBindingEntity createBinding(SubjectRef subject, Role role, ResourceRef resource, String description,
      String by, String operation) {
    List<RoleBindingEntity> same = em.createQuery("SELECT b FROM RoleBindingEntity b WHERE b.deleted = false"
            + " AND b.subjectKind = :k AND b.subjectValue = :v AND b.role = :r AND b.namespace = :ns"
            + " AND b.keyName = :key", RoleBindingEntity.class)
        .setParameter("k", subject.kind()).setParameter("v", subject.value()).setParameter("r", role)
        .setParameter("ns", resource.namespace()).setParameter("key", resource.keyName()).getResultList();
    if (!same.isEmpty()) {
      throw new ServiceException(ErrorCode.ALREADY_EXISTS, PolicyReason.ROLE_BINDING_ALREADY_EXISTS,
          "an identical role binding exists: " + same.get(0).id, Map.of("binding_id", same.get(0).id), null);
    }
    RoleBindingEntity b = new RoleBindingEntity();
    b.seq = ((Number) em.createNativeQuery("SELECT nextval('role_binding_seq')").getSingleResult()).longValue();
    b.id = "rb-" + b.seq;
    b.subjectKind = subject.kind();
    b.subjectValue = subject.value();
    b.role = role;
    b.namespace = resource.namespace();
    b.keyName = resource.keyName();
    b.description = description;
    b.createdBy = by;
    b.createTime = now();
    em.persist(b);
    em.flush();
    changes.recordAudit(em, operation, auditResource(resource), 0);
    return b;
  }

  /** The binding, live or deleted. NOT_FOUND if there never was one. */
  @Transactional
  public RoleBindingEntity getBinding(String id) {
    List<RoleBindingEntity> found = em.createQuery("SELECT b FROM RoleBindingEntity b WHERE b.id = :id",
        RoleBindingEntity.class).setParameter("id", id).getResultList();
    if (found.isEmpty()) throw PolicyErrors.bindingNotFound(id);
    return found.get(0);
  }

  /** Marks the binding deleted. NOT_FOUND if there is no live binding of that id. */
  @Transactional
  public RoleBindingEntity deleteBinding(String id, String by) {
    RoleBindingEntity b = getBinding(id);
    if (b.deleted) {
      throw new ServiceException(ErrorCode.NOT_FOUND, PolicyReason.ROLE_BINDING_NOT_FOUND,
          "role binding \"" + id + "\" was already deleted", Map.of("binding_id", id), null);
    }
    b.deleted = true;
    b.deletedBy = by;
    b.deleteTime = now();
    em.flush();
    changes.recordAudit(em, "DeleteRoleBinding", auditResource(b.resource()), 0);
    return b;
  }

  /** Bindings by creation order after {@code afterSeq}; null filters match anything. */
  @Transactional
  public List<RoleBindingEntity> listBindings(ResourceRef resource, SubjectRef subject, boolean includeDeleted,
      long afterSeq, int limit) {
    StringBuilder q = new StringBuilder("SELECT b FROM RoleBindingEntity b WHERE b.seq > :after");
    if (!includeDeleted) q.append(" AND b.deleted = false");
    if (resource != null) q.append(" AND b.namespace = :ns AND b.keyName = :key");
    if (subject != null) q.append(" AND b.subjectKind = :k AND b.subjectValue = :v");
    q.append(" ORDER BY b.seq");
    TypedQuery<RoleBindingEntity> query = em.createQuery(q.toString(), RoleBindingEntity.class)
        .setParameter("after", afterSeq);
    if (resource != null) query.setParameter("ns", resource.namespace()).setParameter("key", resource.keyName());
    if (subject != null) query.setParameter("k", subject.kind()).setParameter("v", subject.value());
    return query.setMaxResults(limit).getResultList();
  }

  // ---- revision, snapshot, bootstrap ------------------------------------------------------------

  @Transactional
  public long revision() {
    return ((Number) em.createNativeQuery("SELECT revision FROM store_revision WHERE id = 1").getSingleResult())
        .longValue();
  }

  @Transactional
  public Snapshot snapshot() {
    long revision = revision();
    List<Binding> bindings = em.createQuery("SELECT b FROM RoleBindingEntity b WHERE b.deleted = false ORDER BY b.seq",
        RoleBindingEntity.class).getResultList().stream().map(RoleBindingEntity::toBinding).toList();
    List<OperatorPolicy> policies = em.createQuery("SELECT v FROM PolicyVersionEntity v, PolicyEntity p"
            + " WHERE v.policyId = p.id AND v.version = p.latestVersion AND p.deleted = false ORDER BY p.id",
        PolicyVersionEntity.class).getResultList().stream()
        .map(v -> new OperatorPolicy(v.policyId, v.version, v.description, v.text)).toList();
    return new Snapshot(revision, bindings, policies);
  }

  /**
   * On a store that was never bootstrapped: realm role tpmkms-&lt;role&gt; gets
   * that role on the deployment, one ordinary binding each (created_by
   * "bootstrap"). Runs once per store, whichever replica gets there first
   * (the row lock on the revision row makes it so).
   *
   * @return whether this call bootstrapped the store
   */
  @Transactional
  public boolean bootstrapIfNeeded() {
    Object done = em.createNativeQuery("SELECT bootstrapped FROM store_revision WHERE id = 1 FOR UPDATE")
        .getSingleResult();
    if (Boolean.TRUE.equals(done)) return false;
    long any = em.createQuery("SELECT count(b) FROM RoleBindingEntity b", Long.class).getSingleResult();
    if (any == 0) {
      for (Role r : Role.values()) {
        createBinding(SubjectRef.of(SubjectRef.Kind.REALM_ROLE, "tpmkms-" + r.label()), r, ResourceRef.DEPLOYMENT,
            "bootstrap: realm role tpmkms-" + r.label() + " is " + r.label() + " of the deployment", "bootstrap",
            "bootstrap/CreateRoleBinding");
      }
    }
    em.createNativeQuery("UPDATE store_revision SET bootstrapped = true WHERE id = 1").executeUpdate();
    return any == 0;
  }

  static String auditResource(ResourceRef r) {
    return r.kind() == ResourceRef.Kind.DEPLOYMENT ? "*" : r.entityId();
  }

  /** Microseconds, as PostgreSQL stores them, so what is returned equals what is read back later. */
  private static Instant now() {
    return Instant.now().truncatedTo(ChronoUnit.MICROS);
  }
}
