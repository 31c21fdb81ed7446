package io.tpmkms.audit.api;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import io.tpmkms.audit.chain.Event;
import io.tpmkms.audit.chain.StoredRecord;
import io.tpmkms.audit.checkpoint.Checkpoint;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.AuditRecord;
import java.time.Instant;

/** Domain values to messages. */
final class ProtoMapper {
  private ProtoMapper() {}

  static AuditRecord record(StoredRecord r) {
    Event e = r.event();
    return AuditRecord.newBuilder()
        .setSequence(r.sequence())
        .setEvent(AuditEvent.newBuilder()
            .setEventId(e.eventId())
            .setTime(Timestamp.newBuilder().setSeconds(e.seconds()).setNanos(e.nanos()))
            .setService(e.service())
            .setPrincipal(e.principal())
            .setClient(e.client())
            .setOperation(e.operation())
            .setKey(e.key())
            .setKeyVersion((int) e.keyVersion())
            .setDecisionValue(e.decision())
            .setDecisionReason(e.decisionReason())
            .setOutcome(e.outcome())
            .setOutcomeReason(e.outcomeReason())
            .setRequestId(e.requestId())
            .setRequestDigest(ByteString.copyFrom(e.requestDigest()))
            .setDetails(e.details()))
        .setAppendTime(timestamp(r.appendTime()))
        .setPreviousHash(ByteString.copyFrom(r.previousHash()))
        .setHash(ByteString.copyFrom(r.hash()))
        .setDeliveredBy(e.deliveredBy())
        .setRecordVersion(e.version())
        .build();
  }

  static io.tpmkms.proto.audit.v1.Checkpoint checkpoint(Checkpoint c) {
    return io.tpmkms.proto.audit.v1.Checkpoint.newBuilder()
        .setSequence(c.sequence())
        .setHeadHash(ByteString.copyFrom(c.headHash()))
        .setTime(Timestamp.newBuilder().setSeconds(c.seconds()).setNanos(c.nanos()))
        .setSignature(ByteString.copyFrom(c.signature()))
        .setSigningKeyPem(c.signingKeyPem())
        .setAnchor(c.anchor())
        .setAnchorValue(ByteString.copyFrom(c.anchorValue()))
        .build();
  }

  static Timestamp timestamp(Instant i) {
    return Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
  }
}
