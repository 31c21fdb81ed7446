package io.tpmkms.audit.chain;

import static io.tpmkms.audit.testing.Encodings.canonical;
import static io.tpmkms.audit.testing.Encodings.sha256;
import static io.tpmkms.audit.testing.Encodings.token;
import static io.tpmkms.audit.testing.AuditEvents.event;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import io.agroal.api.AgroalDataSource;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.audit.testing.ClientTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.audit.v1.*;
import jakarta.inject.Inject;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * Every field of an appended event comes back exactly as sent, whatever its
 * characters: the writer streams records to PostgreSQL in the binary COPY
 * format, and a text that looked like COPY syntax (text format escapes, CSV
 * quoting, the end-of-data marker, the binary signature) or held multi-byte
 * UTF-8 must be stored as-is. Checked three ways: QueryRecords, the stored
 * bytes over SQL (independent of the read path), and the hash chain.
 */
@QuarkusTest
@WithTestResource(value = PostgresResource.class, initArgs = {
    @ResourceArg(name = "durable", value = "true"), @ResourceArg(name = "audit-journal", value = "false")})
class AppendRoundTripTest extends ClientTest {
  /** Every text field takes each of these; U+0000 is refused by validation (AuditServiceRpcTest). */
  static final List<String> HOSTILE = List.of(
      "",
      "back\\slash \\\\ \\N \\. \\x41 \\041 \\t \\n", // text COPY's escapes, NULL and end-of-data markers
      "tab\there\t\tand\t",
      "new\nline\r\ncrlf\rcr\n",
      "double \" single ' back ` quotes \"\" ''",
      "comma, separated,,values,;semicolon|pipe",
      " padded both ends ",
      "é ü ß ñ — ‰ 中文 한국어 😀 𝄞", // 2-, 3- and 4-byte UTF-8
      "\u0001\u0007\b\u000b\f\u001b\u001f\u007f\u0080\u009f\u00a0\u00ff\ufeff",
      "PGCOPY\n\u00ff\r\n\\.\n", // the binary COPY signature and text COPY's end marker, as text
      "x".repeat(1024), // the 1 KiB limit
      "é".repeat(512), // 1 KiB of 2-byte characters
      "€".repeat(341) + "z", // 1 KiB of 3-byte characters
      "😀".repeat(256)); // 1 KiB of 4-byte characters


  @Inject AgroalDataSource db;

  @Test
  void hostileTexts_andDigests_roundTripExactly_andChain() throws Exception {
    List<AuditEvent> sent = new ArrayList<>();
    int n = HOSTILE.size();
    for (int k = 0; k < n; k++) sent.add(hostile(k, n).build());
    // enough 1 KiB fields that one batch spans several COPY buffer drains
    for (int k = 0; k < 300; k++) {
      String big = HOSTILE.get(n - 4 + k % 4);
      sent.add(event(big, big, big).setService(big).setClient(big).setDecisionReason(big).setOutcome(big)
          .setOutcomeReason(big).setRequestId(big).setRequestDigest(digest(k)).build());
    }
    AppendEventsRequest request = AppendEventsRequest.newBuilder().addAllEvents(sent).build();
    Instant before = Instant.now().truncatedTo(ChronoUnit.MICROS);
    List<Long> seqs = client.audit().appendEvents(request).getSequencesList();
    Instant after = Instant.now();
    assertEquals(sent.size(), seqs.size());
    for (int i = 1; i < seqs.size(); i++) assertEquals(seqs.get(0) + i, seqs.get(i));

    List<AuditRecord> got = client.audit().queryRecords(QueryRecordsRequest.newBuilder()
        .setPageToken(token(seqs.get(0) - 1)).setPageSize(sent.size()).build()).getRecordsList();
    assertEquals(sent.size(), got.size());
    Timestamp appendTime = got.get(0).getAppendTime();
    Instant appended = Instant.ofEpochSecond(appendTime.getSeconds(), appendTime.getNanos());
    assertTrue(!appended.isBefore(before) && !appended.isAfter(after),
        appended + " not in [" + before + ", " + after + "]");
    for (int i = 0; i < sent.size(); i++) {
      AuditRecord r = got.get(i);
      assertEquals((long) seqs.get(i), r.getSequence());
      assertEquals(sent.get(i), r.getEvent(), "event " + i + " comes back exactly as sent");
      assertEquals(appendTime, r.getAppendTime(), "one append time per batch");
      assertArrayEquals(sha256(r.getPreviousHash().toByteArray(), canonical(r)),
          r.getHash().toByteArray(), "hash of " + r.getSequence());
      if (i > 0) assertEquals(got.get(i - 1).getHash(), r.getPreviousHash());
    }
    assertStoredBytes(sent, got);

    // a retry of the whole request finds every id stored: same sequences, nothing added
    assertEquals(seqs, client.audit().appendEvents(request).getSequencesList());
    VerifyChainResponse v = client.audit().verifyChain(VerifyChainRequest.getDefaultInstance());
    assertTrue(v.getValid(), v.getProblem());
    assertEquals(v.getHeadSequence(), v.getRecordsChecked());
    // reads record themselves (ADR 0023): whatever follows the batch is the audit service's own
    long last = seqs.get(seqs.size() - 1);
    var later = client.audit().queryRecords(io.tpmkms.proto.audit.v1.QueryRecordsRequest.newBuilder()
        .setPageToken(io.tpmkms.audit.testing.Encodings.token(last)).build()).getRecordsList();
    assertTrue(later.stream().allMatch(r -> r.getEvent().getService().equals("audit-service")
        && r.getDeliveredBy().equals("audit-service")), "the retry added nothing: " + later);
  }

  /** Event k of n: every text field gets a different hostile string, and across the events each of them. */
  private static AuditEvent.Builder hostile(int k, int n) {
    String[] t = new String[9];
    for (int j = 0; j < t.length; j++) t[j] = HOSTILE.get((k + j) % n);
    long[] seconds = {-62_135_596_800L, 253_402_300_799L, 0, -1, 1_700_000_000L};
    return AuditEvent.newBuilder()
        .setEventId(UUID.randomUUID().toString())
        .setTime(Timestamp.newBuilder().setSeconds(seconds[k % seconds.length]).setNanos(k % 2 == 0 ? 999_999_999 : k))
        .setService(t[0].isEmpty() ? "s" : t[0])
        .setPrincipal(t[1])
        .setClient(t[2])
        .setOperation(t[3].isEmpty() ? "o" : t[3])
        .setKey(t[4])
        .setKeyVersion(new int[] {0, 1, -1, Integer.MAX_VALUE}[k % 4]) // uint32: -1 is 4294967295
        .setDecisionValue(k % 4)
        .setDecisionReason(t[5])
        .setOutcome(t[6])
        .setOutcomeReason(t[7])
        .setRequestId(t[8])
        .setRequestDigest(digest(k));
  }

  /** Empty for even k; else 32 bytes led by NUL, backslash, newline, tab, comma, quote, CR and 0xff. */
  private static ByteString digest(int k) {
    if (k % 2 == 0) return ByteString.EMPTY;
    byte[] d = new byte[32];
    byte[] lead = {0, '\\', '\n', '\t', ',', '"', '\r', (byte) 0xff};
    System.arraycopy(lead, 0, d, 0, lead.length);
    for (int i = lead.length; i < d.length; i++) d[i] = (byte) (k * 31 + i * 7);
    return ByteString.copyFrom(d);
  }

  /** The stored values over SQL: texts as the UTF-8 bytes PostgreSQL holds, the append time as its epoch. */
  private void assertStoredBytes(List<AuditEvent> sent, List<AuditRecord> got) throws Exception {
    BigDecimal appendEpoch = BigDecimal.valueOf(got.get(0).getAppendTime().getSeconds())
        .add(BigDecimal.valueOf(got.get(0).getAppendTime().getNanos(), 9));
    try (Connection c = db.getConnection(); PreparedStatement ps = c.prepareStatement(
        "SELECT event_id::text, event_seconds, event_nanos, key_version, decision, convert_to(service, 'UTF8'),"
            + " convert_to(principal, 'UTF8'), convert_to(client, 'UTF8'), convert_to(operation, 'UTF8'),"
            + " convert_to(key_name, 'UTF8'), convert_to(decision_reason, 'UTF8'), convert_to(outcome, 'UTF8'),"
            + " convert_to(outcome_reason, 'UTF8'), convert_to(request_id, 'UTF8'), request_digest,"
            + " EXTRACT(EPOCH FROM append_time), previous_hash, hash"
            + " FROM audit_record WHERE sequence BETWEEN ? AND ? ORDER BY sequence")) {
      ps.setLong(1, got.get(0).getSequence());
      ps.setLong(2, got.get(got.size() - 1).getSequence());
      try (ResultSet rs = ps.executeQuery()) {
        for (int i = 0; i < sent.size(); i++) {
          assertTrue(rs.next(), "row " + i);
          AuditEvent e = sent.get(i);
          assertEquals(e.getEventId(), rs.getString(1));
          assertEquals(e.getTime().getSeconds(), rs.getLong(2));
          assertEquals(e.getTime().getNanos(), rs.getInt(3));
          assertEquals(Integer.toUnsignedLong(e.getKeyVersion()), rs.getLong(4));
          assertEquals(e.getDecisionValue(), rs.getInt(5));
          List<String> texts = List.of(e.getService(), e.getPrincipal(), e.getClient(), e.getOperation(), e.getKey(),
              e.getDecisionReason(), e.getOutcome(), e.getOutcomeReason(), e.getRequestId());
          for (int j = 0; j < texts.size(); j++) {
            assertArrayEquals(texts.get(j).getBytes(StandardCharsets.UTF_8), rs.getBytes(6 + j),
                "text column " + (6 + j) + " of row " + i);
          }
          assertArrayEquals(e.getRequestDigest().toByteArray(), rs.getBytes(15));
          assertEquals(0, appendEpoch.compareTo(rs.getBigDecimal(16)), "append_time " + rs.getBigDecimal(16));
          assertArrayEquals(got.get(i).getPreviousHash().toByteArray(), rs.getBytes(17));
          assertArrayEquals(got.get(i).getHash().toByteArray(), rs.getBytes(18));
        }
      }
    }
  }
}
