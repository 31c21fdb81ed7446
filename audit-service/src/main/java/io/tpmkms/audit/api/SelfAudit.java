package io.tpmkms.audit.api;

import io.tpmkms.audit.authz.AuditAuthorizer;
import io.tpmkms.audit.chain.AuditWriter;
import io.tpmkms.audit.chain.Event;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.platform.audit.RefusalBudget;
import io.tpmkms.platform.auth.UnauthenticatedCalls;
import io.tpmkms.platform.rpc.Auditing;
import io.tpmkms.proto.audit.v1.Decision;
import jakarta.enterprise.context.ApplicationScoped;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.jboss.logging.Logger;

/**
 * The audit service's own calls in its own chain (ADR 0023), written by the
 * same single writer as every other record, service {@value #SERVICE},
 * delivered by {@value #SERVICE}:
 *
 * <ul>
 *   <li>every read of the trail (QueryRecords, VerifyChain, ExportRecords,
 *       ListCheckpoints, GetCheckpoint), allowed or denied, with who asked and
 *       what (the request's filters in {@code details}) — written <i>after</i>
 *       the read, so a query never sees its own record, and before the answer:
 *       a read that cannot be recorded is answered UNAVAILABLE (fail closed,
 *       as the key service does);
 *   <li>every refused AppendEvents (a caller that is not an audit producer, an
 *       event naming another service than its deliverer);
 *   <li>every call refused for a missing or bad token (principal
 *       "unauthenticated"; never the token), at most
 *       {@value #REFUSALS_PER_SECOND} a second one by one, the rest counted.
 * </ul>
 *
 * Accepted AppendEvents are not recorded again: their events are the records.
 */
@ApplicationScoped
public class SelfAudit implements Auditing, UnauthenticatedCalls {
  private static final Logger LOG = Logger.getLogger(SelfAudit.class);
  public static final String SERVICE = "audit-service";
  static final int REFUSALS_PER_SECOND = 200;
  private static final int MAX_BYTES = EventValidation.MAX_STRING_BYTES;

  private final AuditWriter writer;
  private final RefusalBudget budget = new RefusalBudget(REFUSALS_PER_SECOND);

  public SelfAudit(AuditWriter writer) {
    this.writer = writer;
  }

  @Override
  public boolean enabled() { return true; }

  @Override
  public boolean everyCall() { return true; }

  @Override
  public CompletableFuture<Void> record(CallInfo call, String key, int version, String outcome, String reason) {
    if (call.operation.endsWith("/" + AuditAuthorizer.APPEND_ACTION) && call.decision() != Decision.DENY) {
      return CompletableFuture.completedFuture(null); // the appended events are the record
    }
    return writer.append(List.of(event(call, key, version, outcome, reason))).thenApply(sequences -> null);
  }

  @Override
  public void refused(String operation, String client, String requestId, String reason, String message) {
    long skipped = budget.take();
    if (skipped < 0) return;
    String why = skipped == 0 ? message : message + " (" + skipped + " more refusals not recorded individually)";
    CallInfo call = CallInfo.unauthenticated(operation, client, requestId, why);
    writer.append(List.of(event(call, "", 0, "UNAUTHENTICATED", reason))).whenComplete((ok, failure) -> {
      if (failure != null) LOG.warnf("a refused call could not be recorded: %s", failure.getMessage());
    });
  }

  private static Event event(CallInfo call, String key, int version, String outcome, String reason) {
    Instant now = Instant.now();
    return new Event(call.eventId, now.getEpochSecond(), now.getNano(), SERVICE, clip(call.principal),
        clip(call.client), clip(call.operation), clip(key), Math.max(0, version), call.decision().getNumber(),
        clip(call.decisionReason()), outcome, clip(reason), clip(call.requestId), call.requestDigest(),
        clip(call.details()), SERVICE, Event.CURRENT_VERSION);
  }

  /** What callers sent, bounded like any event's field (1 KiB of UTF-8, no U+0000). */
  static String clip(String s) {
    if (s == null) return "";
    String t = s.indexOf('\0') >= 0 ? s.replace('\0', '?') : s;
    if (EventValidation.utf8Length(t) <= MAX_BYTES) return t;
    byte[] b = t.getBytes(StandardCharsets.UTF_8);
    String cut = new String(b, 0, MAX_BYTES - 3, StandardCharsets.UTF_8);
    // a cut inside a multi-byte character decodes to U+FFFD (3 bytes): drop until it fits
    while (EventValidation.utf8Length(cut) > MAX_BYTES - 3) cut = cut.substring(0, cut.length() - 1);
    return cut + "...";
  }
}
