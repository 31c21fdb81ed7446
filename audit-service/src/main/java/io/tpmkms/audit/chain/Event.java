package io.tpmkms.audit.chain;

/**
 * One audit event as validated and stored: exactly the fields that enter the
 * record's hash (ADR 0011, ADR 0023), in canonical form — the event id as a
 * lowercase UUID, the time as seconds and nanos, the decision as its protobuf
 * number.
 *
 * <p>{@code version} is the record's canonical encoding: 1 for records made
 * before ADR 0023 (no {@code details}, no {@code deliveredBy}: both empty),
 * 2 for every record made since. {@code deliveredBy} is never taken from the
 * sender: the audit service writes the authenticated client that delivered
 * the event.
 */
public record Event(
    String eventId, long seconds, int nanos, String service, String principal, String client, String operation,
    String key, long keyVersion, int decision, String decisionReason, String outcome, String outcomeReason,
    String requestId, byte[] requestDigest, String details, String deliveredBy, int version) {

  /** The canonical encoding of every record made now. */
  public static final int CURRENT_VERSION = 2;

  public Event {
    if (version != 1 && version != 2) throw new IllegalArgumentException("unknown record version " + version);
    if (version == 1 && (!details.isEmpty() || !deliveredBy.isEmpty())) {
      throw new IllegalArgumentException("a version-1 record has no details and no deliverer");
    }
  }

  /** A version-1 record (made before ADR 0023): no details, no deliverer. */
  public Event(String eventId, long seconds, int nanos, String service, String principal, String client,
      String operation, String key, long keyVersion, int decision, String decisionReason, String outcome,
      String outcomeReason, String requestId, byte[] requestDigest) {
    this(eventId, seconds, nanos, service, principal, client, operation, key, keyVersion, decision, decisionReason,
        outcome, outcomeReason, requestId, requestDigest, "", "", 1);
  }
}
