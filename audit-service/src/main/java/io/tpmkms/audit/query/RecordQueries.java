package io.tpmkms.audit.query;

import io.agroal.api.AgroalDataSource;
import io.tpmkms.audit.chain.Event;
import io.tpmkms.audit.chain.StoredRecord;
import jakarta.enterprise.context.ApplicationScoped;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads records: filtered pages (keyset paging on sequence) and ordered
 * ranges for export. Read-only; never updates or deletes.
 */
@ApplicationScoped
public class RecordQueries {
  private static final String SELECT = "SELECT sequence, event_id::text, event_seconds, event_nanos, service,"
      + " principal, client, operation, key_name, key_version, decision, decision_reason, outcome, outcome_reason,"
      + " request_id, request_digest, append_time, previous_hash, hash, record_version, details, delivered_by"
      + " FROM audit_record";

  private final AgroalDataSource db;

  public RecordQueries(AgroalDataSource db) { this.db = db; }

  /**
   * Filters of QueryRecords; null or empty: no filter. Time bounds compare
   * the event time exactly (seconds, then nanos): start inclusive, end exclusive.
   */
  public record Filter(Long startSeconds, int startNanos, Long endSeconds, int endNanos, String principal,
      String key, String operation, String outcome) {}

  /** At most {@code limit} matching records with sequence greater than {@code after}, ascending. */
  public List<StoredRecord> page(Filter f, long after, int limit) throws SQLException {
    StringBuilder sql = new StringBuilder(SELECT).append(" WHERE sequence > ?");
    List<Object> args = new ArrayList<>();
    args.add(after);
    if (f.startSeconds() != null) {
      // the plain column bound lets the event_seconds index serve; the row comparison is exact
      sql.append(" AND event_seconds >= ? AND (event_seconds, event_nanos) >= (?, ?)");
      args.add(f.startSeconds());
      args.add(f.startSeconds());
      args.add(f.startNanos());
    }
    if (f.endSeconds() != null) {
      sql.append(" AND event_seconds <= ? AND (event_seconds, event_nanos) < (?, ?)");
      args.add(f.endSeconds());
      args.add(f.endSeconds());
      args.add(f.endNanos());
    }
    addEquals(sql, args, "principal", f.principal());
    addEquals(sql, args, "key_name", f.key());
    addEquals(sql, args, "operation", f.operation());
    addEquals(sql, args, "outcome", f.outcome());
    sql.append(" ORDER BY sequence LIMIT ?");
    args.add(limit);
    try (Connection c = db.getConnection(); PreparedStatement ps = c.prepareStatement(sql.toString())) {
      for (int i = 0; i < args.size(); i++) {
        Object a = args.get(i);
        if (a instanceof Long l) ps.setLong(i + 1, l);
        else if (a instanceof Integer n) ps.setInt(i + 1, n);
        else ps.setString(i + 1, (String) a);
      }
      try (ResultSet rs = ps.executeQuery()) {
        List<StoredRecord> out = new ArrayList<>();
        while (rs.next()) out.add(read(rs));
        return out;
      }
    }
  }

  private static void addEquals(StringBuilder sql, List<Object> args, String column, String value) {
    if (value == null || value.isEmpty()) return;
    sql.append(" AND ").append(column).append(" = ?");
    args.add(value);
  }

  /** Receives records in order; may block (flow control) and may stop the scan by returning false. */
  @FunctionalInterface
  public interface RecordSink {
    boolean accept(StoredRecord r) throws Exception;
  }

  /** Streams the records {@code from..to} in sequence order through one cursor. */
  public void scan(long from, long to, RecordSink sink) throws Exception {
    try (Connection c = db.getConnection()) {
      c.setAutoCommit(false);
      try (PreparedStatement ps = c.prepareStatement(SELECT + " WHERE sequence BETWEEN ? AND ? ORDER BY sequence",
          ResultSet.TYPE_FORWARD_ONLY, ResultSet.CONCUR_READ_ONLY)) {
        ps.setFetchSize(2_000);
        ps.setLong(1, from);
        ps.setLong(2, to);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            if (!sink.accept(read(rs))) break;
          }
        }
      } finally {
        c.rollback();
      }
    }
  }

  /** The highest sequence, 0 for an empty log. */
  public long headSequence() throws SQLException {
    try (Connection c = db.getConnection();
        PreparedStatement ps = c.prepareStatement("SELECT COALESCE(MAX(sequence), 0) FROM audit_record");
        ResultSet rs = ps.executeQuery()) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private static StoredRecord read(ResultSet rs) throws SQLException {
    Event e = new Event(rs.getString(2), rs.getLong(3), rs.getInt(4), rs.getString(5), rs.getString(6),
        rs.getString(7), rs.getString(8), rs.getString(9), rs.getLong(10), rs.getInt(11), rs.getString(12),
        rs.getString(13), rs.getString(14), rs.getString(15), rs.getBytes(16), rs.getString(21), rs.getString(22),
        rs.getInt(20));
    return new StoredRecord(rs.getLong(1), e, rs.getTimestamp(17).toInstant(), rs.getBytes(18), rs.getBytes(19));
  }
}
