package io.tpmkms.audit.checkpoint;

import io.agroal.api.AgroalDataSource;
import jakarta.enterprise.context.ApplicationScoped;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** The {@code audit_checkpoint} table: insert and read, never update or delete. */
@ApplicationScoped
public class CheckpointStore {
  private static final String COLUMNS =
      "sequence, head_hash, time_seconds, time_nanos, signature, signing_key_pem, anchor, anchor_value";

  private final AgroalDataSource db;

  public CheckpointStore(AgroalDataSource db) { this.db = db; }

  public void insert(Checkpoint cp) throws SQLException {
    try (Connection c = db.getConnection();
        PreparedStatement ps = c.prepareStatement("INSERT INTO audit_checkpoint (" + COLUMNS + ")"
            + " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")) {
      ps.setLong(1, cp.sequence());
      ps.setBytes(2, cp.headHash());
      ps.setLong(3, cp.seconds());
      ps.setInt(4, cp.nanos());
      ps.setBytes(5, cp.signature());
      ps.setString(6, cp.signingKeyPem());
      ps.setString(7, cp.anchor());
      ps.setBytes(8, cp.anchorValue());
      ps.executeUpdate();
    }
  }

  public Optional<Checkpoint> latest() throws SQLException {
    List<Checkpoint> l = query("ORDER BY sequence DESC LIMIT 1");
    return l.isEmpty() ? Optional.empty() : Optional.of(l.get(0));
  }

  public Optional<Checkpoint> get(long sequence) throws SQLException {
    List<Checkpoint> l = query("WHERE sequence = " + sequence);
    return l.isEmpty() ? Optional.empty() : Optional.of(l.get(0));
  }

  /** Ascending sequence, after {@code after}, at most {@code limit}. */
  public List<Checkpoint> page(long after, int limit) throws SQLException {
    return query("WHERE sequence > " + after + " ORDER BY sequence LIMIT " + limit);
  }

  /** All checkpoints in ascending sequence (about one per thousand records: small). */
  public List<Checkpoint> all() throws SQLException {
    return query("ORDER BY sequence");
  }

  private List<Checkpoint> query(String tail) throws SQLException {
    try (Connection c = db.getConnection();
        PreparedStatement ps = c.prepareStatement("SELECT " + COLUMNS + " FROM audit_checkpoint " + tail);
        ResultSet rs = ps.executeQuery()) {
      List<Checkpoint> out = new ArrayList<>();
      while (rs.next()) {
        out.add(new Checkpoint(rs.getLong(1), rs.getBytes(2), rs.getLong(3), rs.getInt(4), rs.getBytes(5),
            rs.getString(6), rs.getString(7), rs.getBytes(8)));
      }
      return out;
    }
  }
}
