package io.tpmkms.audit.checkpoint;

import static io.tpmkms.audit.testing.Encodings.canonicalCheckpoint;
import static io.tpmkms.audit.testing.AuditEvents.event;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agroal.api.AgroalDataSource;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.audit.checkpoint.CheckpointAuthority;
import io.tpmkms.audit.checkpoint.Checkpointer;
import io.tpmkms.audit.testing.ClientTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.testing.SwtpmResource;
import io.tpmkms.proto.audit.v1.*;
import jakarta.inject.Inject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.Signature;
import java.sql.Connection;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;

/**
 * With its own TPM (swtpm): checkpoints are signed by a TPM key and extended
 * into the NV extend index, whose value equals the one recomputed from the
 * checkpoints' head hashes; VerifyChain compares against the live NV value.
 */
@QuarkusTest
@WithTestResource(value = PostgresResource.class, initArgs = {
    @ResourceArg(name = "durable", value = "true"), @ResourceArg(name = "audit-journal", value = "false")})
@WithTestResource(SwtpmResource.class)
class TpmCheckpointTest extends ClientTest {

  @Inject CheckpointAuthority authority;
  @Inject Checkpointer checkpointer;
  @Inject AgroalDataSource db;

  @Test
  void checkpoints_areTpmSigned_andTheNvIndexEqualsTheRecomputedChain() throws Exception {
    assertEquals("tpm", authority.keyBackend());
    assertEquals(0x01500100, authority.nvIndex());
    Path dataDir = Path.of(ConfigProvider.getConfig().getValue("tpmkms.data-dir", String.class));
    assertTrue(Files.exists(dataDir.resolve("audit-signing-key.tpm")), "the TPM key blob is kept");
    assertTrue(Files.exists(dataDir.resolve("audit-root.sealed")), "the auth secret is sealed by the TPM");

    long last = 0;
    for (int round = 0; round < 3; round++) {
      AppendEventsRequest.Builder r = AppendEventsRequest.newBuilder();
      for (int i = 0; i < 120; i++) r.addEvents(event("tpm-" + UUID.randomUUID(), "ns/k", "op"));
      List<Long> seqs = client.audit().appendEvents(r.build()).getSequencesList();
      last = seqs.get(seqs.size() - 1);
      awaitCheckpoint(last);
    }

    List<io.tpmkms.proto.audit.v1.Checkpoint> cps = new ArrayList<>(client.audit()
        .listCheckpoints(ListCheckpointsRequest.newBuilder().setPageSize(1000).build()).getCheckpointsList());
    assertTrue(cps.size() >= 3, "one checkpoint per round at least: " + cps.size());
    byte[] nv = new byte[32];
    for (var cp : cps) {
      assertEquals("tpm-nv", cp.getAnchor());
      assertEquals(authority.publicKeyPem(), cp.getSigningKeyPem());
      Signature v = Signature.getInstance("SHA256withECDSA");
      v.initVerify(io.tpmkms.audit.checkpoint.Checkpoint.publicKey(cp.getSigningKeyPem()));
      v.update(canonicalCheckpoint(cp));
      assertTrue(v.verify(cp.getSignature().toByteArray()), "TPM signature of checkpoint " + cp.getSequence());
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(nv);
      md.update(cp.getHeadHash().toByteArray());
      nv = md.digest();
      assertArrayEquals(nv, cp.getAnchorValue().toByteArray(), "anchor_value of " + cp.getSequence());
    }
    // the TPM's value itself (read through the service's one connection: swtpm serves one at a time); the
    // calls above are records too, so the checkpointer may have made more checkpoints since the list: the
    // snapshot reads checkpoints and NV under one lock, and those beyond the list extend the value
    var snap = checkpointer.snapshot();
    assertTrue(snap.checkpoints().size() >= cps.size(), snap.checkpoints().size() + " < " + cps.size());
    for (int i = 0; i < cps.size(); i++) {
      assertEquals(cps.get(i).getSequence(), snap.checkpoints().get(i).sequence(), "the same checkpoints");
    }
    for (var later : snap.checkpoints().subList(cps.size(), snap.checkpoints().size())) {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(nv);
      md.update(later.headHash());
      nv = md.digest();
    }
    assertArrayEquals(nv, snap.nvValue().orElseThrow());

    VerifyChainResponse ok = client.audit().verifyChain(VerifyChainRequest.getDefaultInstance());
    assertTrue(ok.getValid(), ok.getProblem());
    assertTrue(ok.getCheckpointsChecked() >= cps.size(), ok.getCheckpointsChecked() + " < " + cps.size());
  }

  @Test
  void deletedLastCheckpoint_isCaughtByTheTpm() throws Exception {
    AppendEventsRequest.Builder r = AppendEventsRequest.newBuilder();
    for (int i = 0; i < 110; i++) r.addEvents(event("tpm-del-" + UUID.randomUUID(), "ns/k", "op"));
    List<Long> seqs = client.audit().appendEvents(r.build()).getSequencesList();
    long cp = awaitCheckpoint(seqs.get(seqs.size() - 1)).getSequence();
    // an attacker removes the newest checkpoint (and the records it covers, so nothing lies beyond the head)
    try (Connection c = db.getConnection(); Statement st = c.createStatement()) {
      st.execute("SET session_replication_role = replica");
      st.execute("CREATE TEMP TABLE saved_cp AS SELECT * FROM audit_checkpoint WHERE sequence >= " + cp);
      st.execute("CREATE TEMP TABLE saved_rec AS SELECT * FROM audit_record WHERE sequence >= " + cp);
      st.execute("DELETE FROM audit_checkpoint WHERE sequence >= " + cp);
      st.execute("DELETE FROM audit_record WHERE sequence IN (SELECT sequence FROM saved_rec)");
      try {
        VerifyChainResponse v = client.audit().verifyChain(VerifyChainRequest.getDefaultInstance());
        assertFalse(v.getValid());
        assertTrue(v.getProblem().contains("NV index"), v.getProblem());
      } finally {
        // VerifyChain recorded itself (ADR 0023) where the deleted records were: drop that record too
        st.execute("DELETE FROM audit_record WHERE sequence >= " + cp);
        st.execute("INSERT INTO audit_record SELECT * FROM saved_rec");
        st.execute("INSERT INTO audit_checkpoint SELECT * FROM saved_cp");
        st.execute("SET session_replication_role = origin");
      }
    }
    VerifyChainResponse v = client.audit().verifyChain(VerifyChainRequest.getDefaultInstance());
    assertTrue(v.getValid(), v.getProblem());
  }
}
