package io.tpmkms.audit.chain;

/**
 * One audit event as validated and stored: exactly the fields that enter the
 * record's hash (ADR 0011), in canonical form — the event id as a lowercase
 * UUID, the time as seconds and nanos, the decision as its protobuf number.
 */
public record Event(
    String eventId, long seconds, int nanos, String service, String principal, String client, String operation,
    String key, long keyVersion, int decision, String decisionReason, String outcome, String outcomeReason,
    String requestId, byte[] requestDigest) {}
