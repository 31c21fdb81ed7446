package io.tpmkms.audit.testing;

import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.AuditRecord;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;

/** An independent implementation of the documented encodings (docs/audit.md), for the tests to check the service against. */
public final class Encodings {
  private Encodings() {
  }

  /**
   * A page token, as this deployment issues them (authenticated, ADR 0020), for an unfiltered
   * QueryRecords starting after {@code after}; only inside a running @QuarkusTest.
   */
  public static String token(long after) {
    return io.tpmkms.platform.paging.PageTokens.backedBy(
            io.quarkus.arc.Arc.container().instance(io.agroal.api.AgroalDataSource.class).get())
        .issue(io.tpmkms.proto.audit.v1.QueryRecordsRequest.getDefaultInstance(), after);
  }

  public static byte[] canonical(AuditRecord r) {
    AuditEvent e = r.getEvent();
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    boolean v2 = r.getRecordVersion() == 2;
    str(out, v2 ? "tpmkms/audit/record/v2" : "tpmkms/audit/record/v1");
    u64(out, r.getSequence());
    str(out, e.getEventId().toLowerCase());
    u64(out, e.getTime().getSeconds());
    u32(out, e.getTime().getNanos());
    for (String s : List.of(e.getService(), e.getPrincipal(), e.getClient(), e.getOperation(), e.getKey())) str(out, s);
    u64(out, Integer.toUnsignedLong(e.getKeyVersion()));
    u64(out, e.getDecisionValue());
    for (String s : List.of(e.getDecisionReason(), e.getOutcome(), e.getOutcomeReason(), e.getRequestId())) str(out, s);
    bytes(out, e.getRequestDigest().toByteArray());
    if (v2) {
      str(out, e.getDetails());
      str(out, r.getDeliveredBy());
    }
    return out.toByteArray();
  }

  public static byte[] canonicalCheckpoint(io.tpmkms.proto.audit.v1.Checkpoint c) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    str(out, "tpmkms/audit/checkpoint/v1");
    u64(out, c.getSequence());
    bytes(out, c.getHeadHash().toByteArray());
    u64(out, c.getTime().getSeconds());
    u32(out, c.getTime().getNanos());
    str(out, c.getAnchor());
    return out.toByteArray();
  }

  private static void str(java.io.ByteArrayOutputStream out, String s) { bytes(out, s.getBytes(StandardCharsets.UTF_8)); }

  private static void bytes(java.io.ByteArrayOutputStream out, byte[] b) {
    u32(out, b.length);
    out.writeBytes(b);
  }

  private static void u32(java.io.ByteArrayOutputStream out, int v) {
    out.writeBytes(java.nio.ByteBuffer.allocate(4).putInt(v).array());
  }

  private static void u64(java.io.ByteArrayOutputStream out, long v) {
    out.writeBytes(java.nio.ByteBuffer.allocate(8).putLong(v).array());
  }

  public static byte[] sha256(byte[] a, byte[] b) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    md.update(a);
    md.update(b);
    return md.digest();
  }
}
