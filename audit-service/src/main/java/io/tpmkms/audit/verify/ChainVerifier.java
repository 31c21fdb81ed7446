package io.tpmkms.audit.verify;

import io.agroal.api.AgroalDataSource;
import io.tpmkms.audit.chain.AuditWriter;
import io.tpmkms.audit.chain.Canonical;
import io.tpmkms.audit.checkpoint.Checkpoint;
import io.tpmkms.audit.checkpoint.CheckpointAuthority;
import io.tpmkms.audit.checkpoint.Checkpointer;
import jakarta.enterprise.context.ApplicationScoped;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.postgresql.PGStatement;

/**
 * Recomputes the chain from the rows alone, the way Keylime replays a
 * measured-boot event log against a PCR: every record's hash from its
 * previous hash and its canonical encoding, every link, every sequence, and
 * every checkpoint (signature, head hash, NV value chain), and finally the
 * TPM's current NV value against the value the checkpoints lead to.
 *
 * <p>Stops at the first problem, in sequence order, and names it:
 * <ul>
 *   <li>a gap in the sequences — a deleted record;
 *   <li>a previous_hash that is not the hash of the record before — reordered or replaced records;
 *   <li>a hash that is not SHA-256(previous_hash | canonical(record)) — a changed record;
 *   <li>a checkpoint whose head_hash is not the recomputed hash at its sequence, whose signature
 *       does not verify under the audit key, whose anchor_value is not the NV chain value, or
 *       which lies beyond the last record (records deleted at the end);
 *   <li>an NV index value that is not the one the checkpoints lead to.
 * </ul>
 *
 * <p>Streams the records in one forward-only cursor (fetch size
 * {@value #FETCH_SIZE}), reads text columns as raw UTF-8 bytes and reuses one
 * encoding buffer: no String per field, no allocation per record beyond the
 * driver's row arrays. Runs on the caller's thread (a worker); safe to run
 * concurrently with appends (it verifies the chain up to the head it saw
 * at the start).
 */
@ApplicationScoped
public class ChainVerifier {
  static final int FETCH_SIZE = 10_000;
  private static final HexFormat HEX = HexFormat.of();
  private static final byte[] RECORD_DOMAIN = Canonical.RECORD_DOMAIN.getBytes(StandardCharsets.US_ASCII);
  private static final byte[] RECORD_DOMAIN_V2 = Canonical.RECORD_DOMAIN_V2.getBytes(StandardCharsets.US_ASCII);

  private final AgroalDataSource db;
  private final AuditWriter writer;
  private final Checkpointer checkpointer;
  private final CheckpointAuthority authority;

  public ChainVerifier(AgroalDataSource db, AuditWriter writer, Checkpointer checkpointer,
      CheckpointAuthority authority) {
    this.db = db;
    this.writer = writer;
    this.checkpointer = checkpointer;
    this.authority = authority;
  }

  /** The outcome; {@code firstBroken} is 0 and {@code problem} empty when valid. */
  public record Result(boolean valid, long recordsChecked, long checkpointsChecked, long firstBroken, String problem,
      long headSequence, byte[] headHash) {}

  /**
   * @param from first sequence to recompute (0 or 1: from the start)
   * @param to last sequence (0 or beyond the head: the head)
   */
  public Result verify(long from, long to) throws SQLException {
    Checkpointer.Snapshot snapshot = checkpointer.snapshot(); // before the head: every checkpoint is <= head
    long head = writer.readHead().sequence();
    long first = Math.max(1, from);
    long last = to == 0 || to > head ? head : to;

    // expected anchor values: the NV chain over all tpm-nv checkpoints, from 32 zero bytes
    Map<Long, byte[]> nvChain = new HashMap<>();
    byte[] nv = Canonical.genesis();
    Checkpoint lastNv = null;
    for (Checkpoint c : snapshot.checkpoints()) {
      if (Checkpoint.ANCHOR_TPM_NV.equals(c.anchor())) {
        nv = Canonical.extend(nv, c.headHash());
        nvChain.put(c.sequence(), nv);
        lastNv = c;
      }
    }
    Map<Long, Checkpoint> inRange = new HashMap<>();
    for (Checkpoint c : snapshot.checkpoints()) {
      if (c.sequence() >= first && c.sequence() <= last) inRange.put(c.sequence(), c);
    }

    Walk w = new Walk();
    try (Connection c = db.getConnection()) {
      c.setAutoCommit(false); // a cursor needs a transaction
      try {
        byte[] prev = first == 1 ? Canonical.genesis() : hashAt(c, first - 1);
        if (prev == null) {
          return w.broken(first - 1, "record " + (first - 1) + " is missing (deleted): the chain has a gap before "
              + first);
        }
        if (first <= last) walk(c, first, last, prev, inRange, nvChain, w);
      } finally {
        c.rollback();
      }
    }
    if (w.problem != null) return w.result();

    for (Checkpoint cp : snapshot.checkpoints()) {
      if (cp.sequence() > head) {
        return w.broken(head + 1, "checkpoint " + cp.sequence() + " lies beyond the last record " + head
            + ": records after " + head + " were deleted");
      }
    }
    if (lastNv != null || snapshot.nvValue().isPresent()) {
      Optional<byte[]> current = snapshot.nvValue();
      long at = lastNv == null ? 0 : lastNv.sequence();
      if (current.isEmpty()) {
        return w.broken(at, "checkpoints are anchored in a TPM NV index but no TPM is configured: the current NV "
            + "value cannot be compared");
      }
      if (!Arrays.equals(current.get(), nv)) {
        return w.broken(at, String.format("the TPM NV index 0x%08x holds %s but the checkpoints lead to %s: "
            + "checkpoints were removed, or the index was extended outside the audit service",
            authority.nvIndex(), HEX.formatHex(current.get()), HEX.formatHex(nv)));
      }
    }
    return w.result();
  }

  private static final class Walk {
    long checked;
    long checkpoints;
    long headSequence;
    byte[] headHash = Canonical.genesis();
    long broken;
    String problem;

    Result broken(long at, String what) {
      broken = at;
      problem = what;
      return result();
    }

    Result result() {
      return new Result(problem == null, checked, checkpoints, problem == null ? 0 : broken,
          problem == null ? "" : problem, headSequence, headHash);
    }
  }

  private void walk(Connection c, long first, long last, byte[] prev, Map<Long, Checkpoint> checkpoints,
      Map<Long, byte[]> nvChain, Walk w) throws SQLException {
    PublicKey key = authority.publicKey();
    String pem = authority.publicKeyPem();
    MessageDigest md = Canonical.sha256();
    Canonical.Encoder e = new Canonical.Encoder();
    byte[] computed = new byte[Canonical.HASH_LENGTH];
    byte[] previous = prev.clone();
    long expected = first;
    try (PreparedStatement ps = c.prepareStatement("SELECT sequence, event_id::text, event_seconds, event_nanos,"
        + " service, principal, client, operation, key_name, key_version, decision, decision_reason, outcome,"
        + " outcome_reason, request_id, request_digest, previous_hash, hash, record_version, details, delivered_by"
        + " FROM audit_record"
        + " WHERE sequence BETWEEN ? AND ? ORDER BY sequence",
        ResultSet.TYPE_FORWARD_ONLY, ResultSet.CONCUR_READ_ONLY)) {
      ps.unwrap(PGStatement.class).setPrepareThreshold(-1); // binary transfer of bigint/bytea columns
      ps.setFetchSize(FETCH_SIZE);
      ps.setLong(1, first);
      ps.setLong(2, last);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          long seq = rs.getLong(1);
          if (seq != expected) {
            w.broken(expected, expected == seq - 1
                ? "record " + expected + " is missing (deleted): the chain has a gap"
                : "records " + expected + " to " + (seq - 1) + " are missing (deleted): the chain has a gap");
            return;
          }
          byte[] storedPrevious = rs.getBytes(17);
          if (!Arrays.equals(storedPrevious, previous)) {
            w.broken(seq, "record " + seq + " does not link to record " + (seq - 1) + " (its previous_hash is not "
                + "the hash of record " + (seq - 1) + "): records were reordered or replaced");
            return;
          }
          int version = rs.getInt(19);
          if (version != 1 && version != 2) {
            w.broken(seq, "record " + seq + " was changed: its record_version " + version + " is unknown");
            return;
          }
          e.reset();
          e.bytes(version == 1 ? RECORD_DOMAIN : RECORD_DOMAIN_V2);
          e.u64(seq);
          e.bytes(rs.getBytes(2));
          e.u64(rs.getLong(3));
          e.u32(rs.getInt(4));
          for (int col = 5; col <= 9; col++) e.bytes(rs.getBytes(col));
          e.u64(rs.getLong(10));
          e.u64(rs.getInt(11));
          for (int col = 12; col <= 15; col++) e.bytes(rs.getBytes(col));
          e.bytes(rs.getBytes(16));
          if (version == 2) {
            e.bytes(rs.getBytes(20));
            e.bytes(rs.getBytes(21));
          }
          md.update(previous);
          md.update(e.buffer(), 0, e.length());
          try {
            md.digest(computed, 0, computed.length);
          } catch (java.security.DigestException ex) {
            throw new IllegalStateException(ex);
          }
          byte[] stored = rs.getBytes(18);
          if (!Arrays.equals(stored, computed)) {
            w.broken(seq, "record " + seq + " was changed: its hash is not SHA-256(previous_hash | canonical record)");
            return;
          }
          w.checked++;
          w.headSequence = seq;
          previous = stored;
          expected = seq + 1;

          Checkpoint cp = checkpoints.get(seq);
          if (cp != null) {
            String problem = checkCheckpoint(cp, computed, key, pem, nvChain.get(seq));
            if (problem != null) {
              w.broken(seq, problem);
              return;
            }
            w.checkpoints++;
          }
        }
      }
    }
    w.headHash = previous;
    if (expected != last + 1) {
      w.broken(expected, "records " + expected + " to " + last + " are missing (deleted): the chain ends early");
    }
  }

  private static String checkCheckpoint(Checkpoint cp, byte[] computed, PublicKey key, String pem, byte[] nv) {
    long s = cp.sequence();
    if (!Arrays.equals(cp.headHash(), computed)) {
      return "checkpoint " + s + " was changed: its head_hash is not the recomputed hash of record " + s;
    }
    if (!pem.equals(cp.signingKeyPem())) {
      return "checkpoint " + s + " names another signing key than the audit service's";
    }
    if (!cp.signatureValid(key)) {
      return "checkpoint " + s + " has an invalid signature";
    }
    if (nv != null && !Arrays.equals(nv, cp.anchorValue())) {
      return "checkpoint " + s + ": anchor_value is not the NV chain value SHA-256(previous | head_hash)";
    }
    if (!Checkpoint.ANCHOR_TPM_NV.equals(cp.anchor()) && !Checkpoint.ANCHOR_SOFTWARE.equals(cp.anchor())) {
      return "checkpoint " + s + " has an unknown anchor \"" + cp.anchor() + "\"";
    }
    return null;
  }

  private static byte[] hashAt(Connection c, long sequence) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT hash FROM audit_record WHERE sequence = ?")) {
      ps.setLong(1, sequence);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? rs.getBytes(1) : null;
      }
    }
  }

}
