package io.tpmkms.audit.verify;

import static io.tpmkms.audit.testing.AuditEvents.event;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agroal.api.AgroalDataSource;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.audit.testing.ClientTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.audit.v1.*;
import jakarta.inject.Inject;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * VerifyChain against an attacker with write access to the database: each
 * test tampers with rows directly over JDBC (bypassing the append-only
 * triggers as a superuser can), asks VerifyChain, and restores the rows.
 */
@QuarkusTest
@WithTestResource(value = PostgresResource.class, initArgs = {
    @ResourceArg(name = "durable", value = "true"), @ResourceArg(name = "audit-journal", value = "false")})
class ChainTamperTest extends ClientTest {

  @Inject AgroalDataSource db;

  /** Sequences of a block of records this test appended. */
  long first;
  long last;

  @BeforeEach
  void appendBlock() throws Exception {
    AppendEventsRequest.Builder r = AppendEventsRequest.newBuilder();
    for (int i = 0; i < 120; i++) r.addEvents(event("tamper-" + UUID.randomUUID(), "ns/k", "op/Sign"));
    List<Long> seqs = client.audit().appendEvents(r.build()).getSequencesList();
    first = seqs.get(0);
    last = seqs.get(seqs.size() - 1);
    awaitCheckpoint(last); // the block ends inside a checkpointed chain
    assertValid();
  }

  private VerifyChainResponse verify() {
    return client.audit().verifyChain(VerifyChainRequest.getDefaultInstance());
  }

  private void assertValid() {
    VerifyChainResponse v = verify();
    assertTrue(v.getValid(), v.getProblem());
    assertEquals(0, v.getFirstBrokenSequence());
    assertEquals(v.getHeadSequence(), v.getRecordsChecked());
    assertTrue(v.getCheckpointsChecked() > 0);
  }

  /** Runs attacker SQL with the append-only triggers bypassed, then Verify, then restores the rows. */
  private VerifyChainResponse tampered(String table, String rows, String... sql) throws SQLException {
    try (Connection c = db.getConnection(); Statement st = c.createStatement()) {
      st.execute("SET session_replication_role = replica");
      st.execute("DROP TABLE IF EXISTS saved");
      st.execute("CREATE TEMP TABLE saved AS SELECT * FROM " + table + " WHERE " + rows);
      try {
        for (String s : sql) st.execute(s);
        return verify();
      } finally {
        st.execute("DELETE FROM " + table + " WHERE " + rows);
        st.execute("INSERT INTO " + table + " SELECT * FROM saved");
        st.execute("SET session_replication_role = origin");
      }
    }
  }

  @Test
  void verify_intactChain_isValid_andCoversAllRecords() {
    VerifyChainResponse v = verify();
    assertTrue(v.getValid(), v.getProblem());
    assertEquals(v.getHeadSequence(), v.getRecordsChecked());
    assertEquals(32, v.getHeadHash().size());
    VerifyChainResponse part = client.audit().verifyChain(VerifyChainRequest.newBuilder().setFromSequence(first)
        .setToSequence(last).build());
    assertTrue(part.getValid(), part.getProblem());
    assertEquals(last - first + 1, part.getRecordsChecked());
    assertEquals(last, part.getHeadSequence());
  }

  @Test
  void serviceRole_cannotUpdateOrDelete_theTriggersRefuse() throws Exception {
    try (Connection c = db.getConnection(); Statement st = c.createStatement()) {
      assertThrows(SQLException.class, () -> st.execute("UPDATE audit_record SET outcome = 'OK' WHERE sequence = "
          + first));
      assertThrows(SQLException.class, () -> st.execute("DELETE FROM audit_record WHERE sequence = " + first));
      assertThrows(SQLException.class, () -> st.execute("TRUNCATE audit_checkpoint"));
    }
    assertValid();
  }

  @Test
  void changedField_isNamed_asHashMismatch() throws Exception {
    long target = first + 7;
    VerifyChainResponse v = tampered("audit_record", "sequence = " + target,
        "UPDATE audit_record SET outcome = 'PERMISSION_DENIED' WHERE sequence = " + target);
    assertFalse(v.getValid());
    assertEquals(target, v.getFirstBrokenSequence());
    assertTrue(v.getProblem().contains("changed"), v.getProblem());
    assertValid();

    // the event time's nanoseconds alone
    v = tampered("audit_record", "sequence = " + target,
        "UPDATE audit_record SET event_nanos = event_nanos + 1 WHERE sequence = " + target);
    assertEquals(target, v.getFirstBrokenSequence());
    assertValid();
  }

  @Test
  void deletedRow_isNamed_asGap() throws Exception {
    long target = first + 3;
    VerifyChainResponse v = tampered("audit_record", "sequence = " + target,
        "DELETE FROM audit_record WHERE sequence = " + target);
    assertFalse(v.getValid());
    assertEquals(target, v.getFirstBrokenSequence());
    assertTrue(v.getProblem().contains("missing"), v.getProblem());
    assertValid();
  }

  @Test
  void deletedRowAndRenumbered_isNamed_asBrokenLink() throws Exception {
    // a smarter attacker closes the gap: deletes record t and moves t+1 into its place
    long t = first + 3;
    VerifyChainResponse v = tampered("audit_record", "sequence IN (" + t + ", " + (t + 1) + ")",
        "DELETE FROM audit_record WHERE sequence = " + t,
        "UPDATE audit_record SET sequence = " + t + " WHERE sequence = " + (t + 1));
    assertFalse(v.getValid());
    assertEquals(t, v.getFirstBrokenSequence());
  }

  @Test
  void swappedRows_isNamed_asLinkMismatch_atTheFirst() throws Exception {
    long a = first + 10;
    long b = first + 20;
    String swap = "UPDATE audit_record t SET event_id = s.event_id, event_seconds = s.event_seconds,"
        + " event_nanos = s.event_nanos, service = s.service, principal = s.principal, client = s.client,"
        + " operation = s.operation, key_name = s.key_name, key_version = s.key_version, decision = s.decision,"
        + " decision_reason = s.decision_reason, outcome = s.outcome, outcome_reason = s.outcome_reason,"
        + " request_id = s.request_id, request_digest = s.request_digest, append_time = s.append_time,"
        + " previous_hash = s.previous_hash, hash = s.hash FROM saved s WHERE t.sequence = %d AND s.sequence = %d";
    VerifyChainResponse v = tampered("audit_record", "sequence IN (" + a + ", " + b + ")",
        "UPDATE audit_record SET event_id = gen_random_uuid() WHERE sequence IN (" + a + ", " + b + ")",
        String.format(swap, a, b), String.format(swap, b, a));
    assertFalse(v.getValid());
    assertEquals(a, v.getFirstBrokenSequence());
    assertTrue(v.getProblem().contains("reordered"), v.getProblem());
    assertValid();

    // contents swapped but the hash columns left in place: a changed record at the first
    String swapContent = swap.replace(", previous_hash = s.previous_hash, hash = s.hash", "");
    v = tampered("audit_record", "sequence IN (" + a + ", " + b + ")",
        "UPDATE audit_record SET event_id = gen_random_uuid() WHERE sequence IN (" + a + ", " + b + ")",
        String.format(swapContent, a, b), String.format(swapContent, b, a));
    assertEquals(a, v.getFirstBrokenSequence());
    assertTrue(v.getProblem().contains("changed"), v.getProblem());
    assertValid();
  }

  @Test
  void alteredCheckpointHeadHash_isReported() throws Exception {
    long cp = client.audit().getCheckpoint(GetCheckpointRequest.getDefaultInstance()).getCheckpoint().getSequence();
    VerifyChainResponse v = tampered("audit_checkpoint", "sequence = " + cp,
        "UPDATE audit_checkpoint SET head_hash = sha256(head_hash) WHERE sequence = " + cp);
    assertFalse(v.getValid());
    assertEquals(cp, v.getFirstBrokenSequence());
    assertTrue(v.getProblem().contains("checkpoint " + cp), v.getProblem());
    assertValid();

    // a forged signature over the right head
    v = tampered("audit_checkpoint", "sequence = " + cp,
        "UPDATE audit_checkpoint SET time_nanos = (time_nanos + 1000) % 1000000000 WHERE sequence = " + cp);
    assertEquals(cp, v.getFirstBrokenSequence());
    assertTrue(v.getProblem().contains("signature"), v.getProblem());
    assertValid();
  }

  @Test
  void deletedTail_isReported_byTheCheckpointBeyondIt() throws Exception {
    long cp = client.audit().getCheckpoint(GetCheckpointRequest.getDefaultInstance()).getCheckpoint().getSequence();
    long head = verify().getHeadSequence();
    VerifyChainResponse v = tampered("audit_record", "sequence >= " + cp,
        "DELETE FROM audit_record WHERE sequence >= " + cp);
    assertFalse(v.getValid());
    assertEquals(cp, v.getFirstBrokenSequence());
    assertTrue(v.getProblem().contains("deleted"), v.getProblem());
    assertTrue(head >= cp);
    assertValid();
  }
}
