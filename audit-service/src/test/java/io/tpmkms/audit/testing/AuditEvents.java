package io.tpmkms.audit.testing;

import com.google.protobuf.Timestamp;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.Decision;
import java.time.Instant;
import java.util.UUID;

/** Audit events for the tests. */
public final class AuditEvents {
  private AuditEvents() {
  }

  /** A complete event with a fresh id. */
  public static AuditEvent.Builder event(String principal, String key, String operation) {
    Instant now = Instant.now();
    return AuditEvent.newBuilder()
        .setEventId(UUID.randomUUID().toString())
        .setTime(Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()))
        .setService("key-service")
        .setPrincipal(principal)
        .setClient("127.0.0.1:5555")
        .setOperation(operation)
        .setKey(key)
        .setKeyVersion(1)
        .setDecision(Decision.ALLOW)
        .setDecisionReason("rule admin-all")
        .setOutcome("OK")
        .setRequestId(UUID.randomUUID().toString());
  }
}
