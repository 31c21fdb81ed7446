package io.tpmkms.audit.query;

import io.tpmkms.audit.chain.Event;
import io.tpmkms.audit.chain.StoredRecord;
import java.time.Instant;
import java.util.HexFormat;

/**
 * The export format (docs/audit.md): one JSON object per record and line,
 * fields in this order, hashes and the request digest in lowercase hex, times
 * both as RFC 3339 (lossless, up to nanoseconds) and as the exact integers
 * that are hashed:
 *
 * <pre>
 * {"sequence":1,"event_id":"…","time":"2025-01-01T00:00:00.123456789Z","time_seconds":1735689600,
 *  "time_nanos":123456789,"service":"…","principal":"…","client":"…","operation":"…","key":"…",
 *  "key_version":0,"decision":"ALLOW","decision_number":1,"decision_reason":"…","outcome":"OK",
 *  "outcome_reason":"","request_id":"…","request_digest":"hex","record_version":2,"details":"…",
 *  "delivered_by":"…","append_time":"…","previous_hash":"hex","hash":"hex"}
 * </pre>
 *
 * <p>A version-1 record (ADR 0023) has {@code "record_version":1} and
 * {@code details} and {@code delivered_by} empty; they are not part of its hash.
 */
public final class JsonLines {
  private static final HexFormat HEX = HexFormat.of();
  private static final String[] DECISIONS = {"DECISION_UNSPECIFIED", "ALLOW", "DENY", "NOT_EVALUATED"};

  private JsonLines() {}

  /** Appends one line (with its trailing newline). */
  public static void append(StringBuilder out, StoredRecord r) {
    Event e = r.event();
    out.append("{\"sequence\":").append(r.sequence());
    str(out, "event_id", e.eventId());
    str(out, "time", Instant.ofEpochSecond(e.seconds(), e.nanos()).toString());
    out.append(",\"time_seconds\":").append(e.seconds());
    out.append(",\"time_nanos\":").append(e.nanos());
    str(out, "service", e.service());
    str(out, "principal", e.principal());
    str(out, "client", e.client());
    str(out, "operation", e.operation());
    str(out, "key", e.key());
    out.append(",\"key_version\":").append(e.keyVersion());
    str(out, "decision", e.decision() >= 0 && e.decision() < DECISIONS.length ? DECISIONS[e.decision()] : "");
    out.append(",\"decision_number\":").append(e.decision());
    str(out, "decision_reason", e.decisionReason());
    str(out, "outcome", e.outcome());
    str(out, "outcome_reason", e.outcomeReason());
    str(out, "request_id", e.requestId());
    str(out, "request_digest", HEX.formatHex(e.requestDigest()));
    out.append(",\"record_version\":").append(e.version());
    str(out, "details", e.details());
    str(out, "delivered_by", e.deliveredBy());
    str(out, "append_time", r.appendTime().toString());
    str(out, "previous_hash", HEX.formatHex(r.previousHash()));
    str(out, "hash", HEX.formatHex(r.hash()));
    out.append("}\n");
  }

  private static void str(StringBuilder out, String name, String value) {
    out.append(",\"").append(name).append("\":\"");
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20 || c == 0x2028 || c == 0x2029) out.append(String.format("\\u%04x", (int) c));
          else out.append(c);
        }
      }
    }
    out.append('"');
  }
}
