package io.tpmkms.audit.api;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static io.tpmkms.audit.testing.AuditEvents.event;
import static io.tpmkms.audit.testing.Encodings.canonical;
import static io.tpmkms.audit.testing.Encodings.canonicalCheckpoint;
import static io.tpmkms.audit.testing.Encodings.sha256;
import static io.tpmkms.audit.testing.Encodings.token;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import com.google.rpc.ErrorInfo;
import io.agroal.api.AgroalDataSource;
import io.grpc.Status;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.audit.checkpoint.Checkpoint;
import io.tpmkms.audit.testing.ClientTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.audit.v1.*;
import jakarta.inject.Inject;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.jboss.logging.Logger;
import org.junit.jupiter.api.Test;

/** AppendEvents, QueryRecords, checkpoints and export through a real server, a real stub and a real PostgreSQL. */
@QuarkusTest
@WithTestResource(value = PostgresResource.class, initArgs = {
    @ResourceArg(name = "durable", value = "true"), @ResourceArg(name = "audit-journal", value = "false")})
class AuditServiceRpcTest extends ClientTest {
  private static final Logger LOG = Logger.getLogger(AuditServiceRpcTest.class);

  @Inject AgroalDataSource db;

  private static AppendEventsResponse append(AuditEvent... events) {
    return client.audit().appendEvents(AppendEventsRequest.newBuilder().addAllEvents(List.of(events)).build());
  }

  @Test
  void append_assignsConsecutiveSequences_andChainsThem() throws Exception {
    String who = "alice-" + UUID.randomUUID();
    AuditEvent a = event(who, "ns/k1", "tpmkms.key.v1.KeyService/Encrypt").build();
    AuditEvent b = event(who, "ns/k1", "tpmkms.key.v1.KeyService/Decrypt")
        .setRequestDigest(ByteString.copyFrom(new byte[32])).build();
    AuditEvent c = event(who, "", "scheduler/RotateKey").setDecision(Decision.NOT_EVALUATED).build();
    List<Long> seqs = append(a, b, c).getSequencesList();
    assertEquals(3, seqs.size());
    assertEquals(seqs.get(0) + 1, seqs.get(1));
    assertEquals(seqs.get(1) + 1, seqs.get(2));

    List<AuditRecord> got = client.audit().queryRecords(QueryRecordsRequest.newBuilder().setPrincipal(who).build())
        .getRecordsList();
    assertEquals(3, got.size());
    assertEquals(a, got.get(0).getEvent(), "the event comes back exactly as sent");
    assertEquals(b, got.get(1).getEvent());
    assertEquals(c, got.get(2).getEvent());
    // hash = SHA-256(previous_hash || canonical(sequence, event)), and each links to the one before
    for (int i = 0; i < 3; i++) {
      AuditRecord r = got.get(i);
      byte[] expected = sha256(r.getPreviousHash().toByteArray(), canonical(r));
      assertArrayEquals(expected, r.getHash().toByteArray());
      if (i > 0) assertEquals(got.get(i - 1).getHash(), r.getPreviousHash());
      // the service, not the sender, says who delivered it (authentication is off here: anonymous)
      assertEquals(2, r.getRecordVersion());
      assertEquals("anonymous", r.getDeliveredBy());
      assertTrue(r.hasAppendTime());
    }
  }

  @Test
  void append_sameEventIdTwice_sameSequence_oneRow() throws Exception {
    AuditEvent e = event("idem-" + UUID.randomUUID(), "ns/k", "op").build();
    long first = append(e).getSequences(0);
    long again = append(e).getSequences(0);
    assertEquals(first, again);
    // within one request, and mixed with a new one; upper-case id is the same UUID
    AuditEvent fresh = event(e.getPrincipal(), "ns/k", "op").build();
    AuditEvent upper = e.toBuilder().setEventId(e.getEventId().toUpperCase()).build();
    List<Long> seqs = append(e, fresh, upper, fresh).getSequencesList();
    assertEquals(first, seqs.get(0));
    assertEquals(first, seqs.get(2));
    assertEquals(seqs.get(1), seqs.get(3));
    assertTrue(seqs.get(1) > first);
    try (Connection c = db.getConnection(); Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT count(*) FROM audit_record WHERE event_id = '" + e.getEventId() + "'")) {
      rs.next();
      assertEquals(1, rs.getInt(1));
    }
    assertEquals(2, client.audit().queryRecords(QueryRecordsRequest.newBuilder().setPrincipal(e.getPrincipal())
        .build()).getRecordsCount());
  }

  @Test
  void query_filtersAndPages_withKeysetTokens() {
    String who = "pager-" + UUID.randomUUID();
    List<AuditEvent> events = new ArrayList<>();
    for (int i = 0; i < 25; i++) {
      events.add(event(who, "ns/key-" + (i % 2), i % 5 == 0 ? "op/Sign" : "op/Encrypt")
          .setOutcome(i % 3 == 0 ? "NOT_FOUND" : "OK")
          .setTime(Timestamp.newBuilder().setSeconds(1_700_000_000L + i).setNanos(i)).build());
    }
    client.audit().appendEvents(AppendEventsRequest.newBuilder().addAllEvents(events).build());

    List<AuditRecord> all = new ArrayList<>();
    String token = "";
    int pages = 0;
    do {
      QueryRecordsResponse r = client.audit().queryRecords(QueryRecordsRequest.newBuilder().setPrincipal(who)
          .setPageSize(7).setPageToken(token).build());
      all.addAll(r.getRecordsList());
      token = r.getNextPageToken();
      pages++;
    } while (!token.isEmpty());
    assertEquals(4, pages);
    assertEquals(25, all.size());
    for (int i = 0; i < 25; i++) assertEquals(events.get(i).getEventId(), all.get(i).getEvent().getEventId());

    assertEquals(13, query(QueryRecordsRequest.newBuilder().setPrincipal(who).setKey("ns/key-0")).size());
    assertEquals(5, query(QueryRecordsRequest.newBuilder().setPrincipal(who).setOperation("op/Sign")).size());
    assertEquals(9, query(QueryRecordsRequest.newBuilder().setPrincipal(who).setOutcome("NOT_FOUND")).size());
    // [start, end): event i has time 1_700_000_000 + i s and i ns
    List<AuditRecord> window = query(QueryRecordsRequest.newBuilder().setPrincipal(who)
        .setStartTime(Timestamp.newBuilder().setSeconds(1_700_000_005L).setNanos(5))
        .setEndTime(Timestamp.newBuilder().setSeconds(1_700_000_010L).setNanos(10)));
    assertEquals(5, window.size());
    assertEquals(events.get(5).getEventId(), window.get(0).getEvent().getEventId());
    assertEquals(4, query(QueryRecordsRequest.newBuilder().setPrincipal(who)
        .setStartTime(Timestamp.newBuilder().setSeconds(1_700_000_005L).setNanos(6))
        .setEndTime(Timestamp.newBuilder().setSeconds(1_700_000_010L).setNanos(10))).size());
  }

  private static List<AuditRecord> query(QueryRecordsRequest.Builder b) {
    return client.audit().queryRecords(b.setPageSize(1000).build()).getRecordsList();
  }

  @Test
  void badInput_isInvalidArgument_withReasonAndField() {
    ErrorInfo info = assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_EVENT_ID",
        () -> append(event("p", "", "op").build(), event("p", "", "op").setEventId("not-a-uuid").build()));
    assertEquals("1", info.getMetadataOrThrow("index"));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_EVENT_ID",
        () -> append(event("p", "", "op").setEventId("1-1-1-1-1").build()));
    info = assertStatus(Status.Code.INVALID_ARGUMENT, "MISSING_FIELD", () -> append(event("p", "", "").build()));
    assertEquals("operation", info.getMetadataOrThrow("field"));
    info = assertStatus(Status.Code.INVALID_ARGUMENT, "MISSING_FIELD",
        () -> append(event("p", "", "op").setService("").build()));
    assertEquals("service", info.getMetadataOrThrow("field"));
    info = assertStatus(Status.Code.INVALID_ARGUMENT, "FIELD_TOO_LONG",
        () -> append(event("p", "", "op").setDecisionReason("é".repeat(513)).build()));
    assertEquals("decision_reason", info.getMetadataOrThrow("field"));
    append(event("p-" + UUID.randomUUID(), "", "op").setDecisionReason("x".repeat(1024)).build()); // exactly 1 KiB
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_CHARACTER",
        () -> append(event("p", "", "op").setClient("a\0b").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_DIGEST",
        () -> append(event("p", "", "op").setRequestDigest(ByteString.copyFrom(new byte[31])).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_TIME",
        () -> append(event("p", "", "op").setTime(Timestamp.newBuilder().setSeconds(1).setNanos(-1)).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_DECISION",
        () -> append(event("p", "", "op").setDecisionValue(42).build()));
    List<AuditEvent> tooMany = new ArrayList<>();
    for (int i = 0; i < 1001; i++) tooMany.add(event("p", "", "op").build());
    assertStatus(Status.Code.INVALID_ARGUMENT, "TOO_MANY_EVENTS",
        () -> client.audit().appendEvents(AppendEventsRequest.newBuilder().addAllEvents(tooMany).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN",
        () -> client.audit().queryRecords(QueryRecordsRequest.newBuilder().setPageToken("garbage!").build()));
    // issue 11: a hand-made cursor of the old format, a token of another filter, NUL in a filter
    String handMade = java.util.Base64.getUrlEncoder().withoutPadding()
        .encodeToString("r:1".getBytes(StandardCharsets.US_ASCII));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN",
        () -> client.audit().queryRecords(QueryRecordsRequest.newBuilder().setPageToken(handMade).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", () -> client.audit().queryRecords(
        QueryRecordsRequest.newBuilder().setPrincipal("someone-else").setPageToken(token(0)).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", () -> client.audit().listCheckpoints(
        ListCheckpointsRequest.newBuilder().setPageToken(token(0)).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_CHARACTER", () -> client.audit().queryRecords(
        QueryRecordsRequest.newBuilder().setPrincipal("p\0").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_RANGE",
        () -> client.audit().verifyChain(VerifyChainRequest.newBuilder().setFromSequence(5).setToSequence(2).build()));
    assertStatus(Status.Code.NOT_FOUND, "CHECKPOINT_NOT_FOUND",
        () -> client.audit().getCheckpoint(GetCheckpointRequest.newBuilder().setSequence(Long.MAX_VALUE).build()));
    // nothing of a refused request was stored
    assertEquals(0, query(QueryRecordsRequest.newBuilder().setPrincipal("p")).size());
  }

  @Test
  void unsetTime_isTheReceiveTime() {
    String who = "notime-" + UUID.randomUUID();
    long before = System.currentTimeMillis() / 1000;
    append(event(who, "", "op").clearTime().build());
    AuditRecord r = query(QueryRecordsRequest.newBuilder().setPrincipal(who)).get(0);
    assertTrue(r.getEvent().getTime().getSeconds() >= before);
  }

  @Test
  void checkpoints_signTheHead_andVerifyWithTheirKey() throws Exception {
    String who = "cp-" + UUID.randomUUID();
    List<AuditEvent> events = new ArrayList<>();
    for (int i = 0; i < 150; i++) events.add(event(who, "", "op").build());
    long last = client.audit().appendEvents(AppendEventsRequest.newBuilder().addAllEvents(events).build())
        .getSequences(149);
    awaitCheckpoint(last);
    long after = append(event(who, "", "op").build()).getSequences(0);
    io.tpmkms.proto.audit.v1.Checkpoint cp = awaitCheckpoint(after); // a second one, after the interval
    assertEquals("software", cp.getAnchor());
    assertTrue(cp.getAnchorValue().isEmpty());
    Checkpoint domain = new Checkpoint(cp.getSequence(), cp.getHeadHash().toByteArray(), cp.getTime().getSeconds(),
        cp.getTime().getNanos(), cp.getSignature().toByteArray(), cp.getSigningKeyPem(), cp.getAnchor(), new byte[0]);
    assertTrue(domain.signatureValid(Checkpoint.publicKey(cp.getSigningKeyPem())));
    // the head hash is the record's hash at that sequence
    AuditRecord at = client.audit().queryRecords(QueryRecordsRequest.newBuilder().setPageToken(token(cp.getSequence() - 1))
        .setPageSize(1).build()).getRecords(0);
    assertEquals(cp.getSequence(), at.getSequence());
    assertEquals(at.getHash(), cp.getHeadHash());
    // an independent verifier: JCA over SHA-256 of the documented canonical bytes
    java.security.Signature v = java.security.Signature.getInstance("SHA256withECDSA");
    v.initVerify(Checkpoint.publicKey(cp.getSigningKeyPem()));
    v.update(canonicalCheckpoint(cp));
    assertTrue(v.verify(cp.getSignature().toByteArray()));

    ListCheckpointsResponse page = client.audit().listCheckpoints(ListCheckpointsRequest.newBuilder().setPageSize(1).build());
    assertEquals(1, page.getCheckpointsCount());
    assertFalse(page.getNextPageToken().isEmpty());
    ListCheckpointsResponse next = client.audit().listCheckpoints(ListCheckpointsRequest.newBuilder().setPageSize(1000)
        .setPageToken(page.getNextPageToken()).build());
    assertTrue(next.getCheckpoints(0).getSequence() > page.getCheckpoints(0).getSequence());
    assertEquals(cp, client.audit().getCheckpoint(GetCheckpointRequest.newBuilder().setSequence(cp.getSequence())
        .build()).getCheckpoint());
  }

  @Test
  void export_isJsonLines_wholeLines_withDocumentedFields() throws Exception {
    String who = "export-" + UUID.randomUUID();
    List<AuditEvent> events = new ArrayList<>();
    for (int i = 0; i < 300; i++) {
      events.add(event(who, "ns/k", "op").setDecisionReason("quote \" backslash \\ newline \n " + "z".repeat(400))
          .build());
    }
    List<Long> seqs = client.audit().appendEvents(AppendEventsRequest.newBuilder().addAllEvents(events).build())
        .getSequencesList();
    List<ExportRecordsChunk> chunks = new ArrayList<>();
    client.audit().exportRecords(ExportRecordsRequest.newBuilder().setFromSequence(seqs.get(0))
        .setToSequence(seqs.get(299)).build()).forEachRemaining(chunks::add);
    assertTrue(chunks.size() >= 2, "more than one chunk for ~150 KB");
    List<String> lines = new ArrayList<>();
    for (ExportRecordsChunk c : chunks) {
      String s = c.getJsonl().toStringUtf8();
      assertTrue(s.endsWith("\n"), "chunks end with a whole line");
      lines.addAll(List.of(s.split("\n")));
    }
    assertEquals(300, lines.size());
    String first = lines.get(0);
    assertTrue(first.startsWith("{\"sequence\":" + seqs.get(0) + ",\"event_id\":\"" + events.get(0).getEventId() + "\""),
        first);
    for (String field : List.of("time", "time_seconds", "time_nanos", "service", "principal", "client", "operation",
        "key", "key_version", "decision", "decision_number", "decision_reason", "outcome", "outcome_reason",
        "request_id", "request_digest", "append_time", "previous_hash", "hash")) {
      assertTrue(first.contains("\"" + field + "\":"), field + " in " + first);
    }
    assertTrue(first.contains("quote \\\" backslash \\\\ newline \\n "), first);
    AuditRecord r = client.audit().queryRecords(QueryRecordsRequest.newBuilder().setPrincipal(who).setPageSize(1)
        .build()).getRecords(0);
    assertTrue(first.contains("\"hash\":\"" + HexFormat.of().formatHex(r.getHash().toByteArray()) + "\""));

    // the whole chain, for checking the auditor's script of docs/audit.md by hand
    try (java.io.OutputStream out = java.nio.file.Files.newOutputStream(java.nio.file.Path.of("target",
        "audit-export.jsonl"))) {
      var all = client.audit().exportRecords(ExportRecordsRequest.getDefaultInstance());
      while (all.hasNext()) all.next().getJsonl().writeTo(out);
    }
  }

  /**
   * The append rate, durable (fsync on): 8 client threads sending batches of
   * 250 events over gRPC; and the verify rate over the whole chain so far.
   */
  @Test
  void appendAndVerifyRate_measured() throws Exception {
    int threads = 8;
    int batches = 20;
    int perBatch = 250;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    List<List<AppendEventsRequest>> work = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      List<AppendEventsRequest> mine = new ArrayList<>();
      for (int b = 0; b < batches; b++) {
        AppendEventsRequest.Builder r = AppendEventsRequest.newBuilder();
        for (int i = 0; i < perBatch; i++) r.addEvents(event("rate-" + t, "ns/k" + (i % 10), "op/Encrypt"));
        mine.add(r.build());
      }
      work.add(mine);
    }
    append(event("warmup", "", "op").build());
    long start = System.nanoTime();
    List<Future<?>> fs = new ArrayList<>();
    for (List<AppendEventsRequest> mine : work) {
      fs.add(pool.submit(() -> {
        for (AppendEventsRequest r : mine) client.audit().appendEvents(r);
        return null;
      }));
    }
    for (Future<?> f : fs) f.get();
    double seconds = (System.nanoTime() - start) / 1e9;
    pool.shutdown();
    int total = threads * batches * perBatch;
    double rate = total / seconds;
    LOG.infof("MEASURED append: %d events in %.2f s = %.0f events/s durable (8 threads x batches of 250)",
        total, seconds, rate);

    long vStart = System.nanoTime();
    VerifyChainResponse v = client.audit().verifyChain(VerifyChainRequest.getDefaultInstance());
    double vSeconds = (System.nanoTime() - vStart) / 1e9;
    LOG.infof("MEASURED verify: %d records, %d checkpoints in %.2f s = %.0f records/s", v.getRecordsChecked(),
        v.getCheckpointsChecked(), vSeconds, v.getRecordsChecked() / vSeconds);
    assertTrue(v.getValid(), v.getProblem());
    assertTrue(rate > 1_000, "append rate " + rate);
  }
}
