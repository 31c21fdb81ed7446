package io.tpmkms.policy.store;

import io.tpmkms.platform.audit.AuditLog;
import io.tpmkms.platform.audit.CallInfo;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.persistence.EntityManager;

/**
 * The one place where a change of the authorization state is recorded: the
 * audit event goes into {@code audit_outbox} in the transaction of the
 * change (the platform's {@link AuditLog}), so a change never commits
 * without its record, and the store revision is bumped in the same
 * transaction so that every replica reloads.
 */
@ApplicationScoped
public class PolicyChanges {
  private final AuditLog audit;

  public PolicyChanges(AuditLog audit) {
    this.audit = audit;
  }

  /**
   * Records one change in the caller's transaction: the audit event
   * (operation = the RPC of the current call, or {@code fallbackOperation}
   * outside a call, e.g. the bootstrap) and the revision bump.
   *
   * @param resource what changed: "policy/&lt;id&gt;" for a policy, the binding's resource
   *                 ("*" the deployment, "payments", "payments/cards") for a binding
   * @param version  the policy version made (0 for bindings)
   * @return the new store revision
   */
  public long recordAudit(EntityManager em, String fallbackOperation, String resource, long version) {
    CallInfo call = CallInfo.current();
    if (call == null) call = CallInfo.system(fallbackOperation);
    audit.recordInTransaction(em, call, resource, (int) Math.min(Integer.MAX_VALUE, version));
    em.createNativeQuery("UPDATE store_revision SET revision = revision + 1 WHERE id = 1").executeUpdate();
    return ((Number) em.createNativeQuery("SELECT revision FROM store_revision WHERE id = 1").getSingleResult())
        .longValue();
  }
}
