package io.tpmkms.platform.audit;

import io.agroal.api.AgroalDataSource;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.tpmkms.platform.auth.UnauthenticatedCalls;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Instance;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.util.UUID;
import java.util.concurrent.RejectedExecutionException;
import org.jboss.logging.Logger;

/**
 * Puts every call refused by authentication (no, bad or oversized token) into
 * the audit trail of the key and policy services: one event, principal
 * {@value CallInfo#UNAUTHENTICATED}, decision DENY with the reason, outcome
 * UNAUTHENTICATED and the ErrorInfo reason; never the token (it is not passed
 * here). The event goes into the process's journal when it has one (the key
 * service), else into its outbox table (the policy service), and is forwarded
 * like any other.
 *
 * <p>Refusals are answered at once, never held up by their event: nothing
 * happened, so there is nothing to fail closed on. Anyone can send refused
 * calls, so at most {@value #PER_SECOND} a second are recorded one by one; the
 * ones above are counted and the next recorded event says how many were not
 * (decision_reason "... (N more refusals not recorded individually)").
 */
@ApplicationScoped
public class RefusalAudit implements UnauthenticatedCalls {
  private static final Logger LOG = Logger.getLogger(RefusalAudit.class);
  static final int PER_SECOND = 200;
  private static final String INSERT = "INSERT INTO audit_outbox (event_id, payload) VALUES (?, ?)";

  private final AuditLog log;
  private final Instance<AgroalDataSource> db;
  private final RefusalBudget budget = new RefusalBudget(PER_SECOND);

  public RefusalAudit(AuditLog log, Instance<AgroalDataSource> db) {
    this.log = log;
    this.db = db;
  }

  @Override
  public void refused(String operation, String client, String requestId, String reason, String message) {
    if (!log.enabled()) return;
    long skipped = budget.take();
    if (skipped < 0) return;
    String why = skipped == 0 ? message : message + " (" + skipped + " more refusals not recorded individually)";
    CallInfo call = CallInfo.unauthenticated(operation, client, requestId, why);
    byte[] event = log.event(call, "", 0, "UNAUTHENTICATED", reason).toByteArray();
    if (log.journal().isPresent()) {
      log.journal().get().append(event, null).whenComplete((ok, failure) -> {
        if (failure != null) LOG.warnf("a refused call could not be journaled: %s", failure.getMessage());
      });
      return;
    }
    if (!db.isResolvable()) return;
    try {
      // the outbox is a table: never on the transport thread
      Infrastructure.getDefaultWorkerPool().execute(() -> insert(call.eventId, event));
    } catch (RejectedExecutionException e) {
      LOG.warn("a refused call was not recorded: the worker pool is full");
    }
  }

  private void insert(String eventId, byte[] payload) {
    try (Connection c = db.get().getConnection(); PreparedStatement ps = c.prepareStatement(INSERT)) {
      ps.setObject(1, UUID.fromString(eventId));
      ps.setBytes(2, payload);
      ps.executeUpdate();
    } catch (Exception e) {
      LOG.warnf("a refused call could not be written to the audit outbox: %s", e.getMessage());
    }
  }
}
