package io.tpmkms.audit.api;

import io.tpmkms.audit.chain.Event;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.audit.error.AuditReason;
import io.tpmkms.proto.audit.v1.AuditEvent;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Checks AppendEvents input and turns it into canonical {@link Event}s. A
 * request with one bad event is refused whole (INVALID_ARGUMENT, the event's
 * index and the field in the ErrorInfo metadata), before it reaches the writer.
 *
 * <ul>
 *   <li>at most {@value #MAX_EVENTS} events;
 *   <li>event_id a UUID in 8-4-4-4-12 hex form (stored lowercase);
 *   <li>service and operation non-empty;
 *   <li>every string at most {@value #MAX_STRING_BYTES} bytes of UTF-8, without U+0000;
 *   <li>time: unset means "now" (the receive time); else a valid timestamp (years 1-9999);
 *   <li>decision a known value; request_digest empty or 32 bytes (SHA-256).
 * </ul>
 */
final class EventValidation {
  static final int MAX_EVENTS = 1000;
  static final int MAX_STRING_BYTES = 1024;
  private static final Pattern UUID = Pattern.compile(
      "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
  private static final long MIN_SECONDS = -62_135_596_800L; // 0001-01-01T00:00:00Z
  private static final long MAX_SECONDS = 253_402_300_799L; // 9999-12-31T23:59:59Z

  private EventValidation() {}

  /**
   * @param deliveredBy the authenticated client that sent the request (written into every record;
   *     never taken from the request)
   */
  static List<Event> events(List<AuditEvent> in, Instant now, String deliveredBy) {
    if (in.size() > MAX_EVENTS) {
      throw new ServiceException(ErrorCode.INVALID_ARGUMENT, AuditReason.TOO_MANY_EVENTS,
          "at most " + MAX_EVENTS + " events per request, got " + in.size(), Map.of("limit", "" + MAX_EVENTS), null);
    }
    List<Event> out = new ArrayList<>(in.size());
    for (int i = 0; i < in.size(); i++) out.add(event(i, in.get(i), now, deliveredBy));
    return out;
  }

  private static Event event(int i, AuditEvent e, Instant now, String deliveredBy) {
    if (!UUID.matcher(e.getEventId()).matches()) {
      throw bad(i, "event_id", AuditReason.INVALID_EVENT_ID, "event_id must be a UUID (8-4-4-4-12 hex digits)");
    }
    long seconds = now.getEpochSecond();
    int nanos = now.getNano();
    if (e.hasTime()) {
      seconds = e.getTime().getSeconds();
      nanos = e.getTime().getNanos();
      if (seconds < MIN_SECONDS || seconds > MAX_SECONDS || nanos < 0 || nanos > 999_999_999) {
        throw bad(i, "time", AuditReason.INVALID_TIME, "time is not a valid timestamp");
      }
    }
    int decision = e.getDecisionValue();
    if (decision < 0 || decision > 3) {
      throw bad(i, "decision", AuditReason.INVALID_DECISION, "unknown decision " + decision);
    }
    int digest = e.getRequestDigest().size();
    if (digest != 0 && digest != 32) {
      throw bad(i, "request_digest", AuditReason.INVALID_DIGEST, "request_digest must be empty or 32 bytes (SHA-256)");
    }
    return new Event(e.getEventId().toLowerCase(Locale.ROOT), seconds, nanos,
        required(i, "service", e.getService()), text(i, "principal", e.getPrincipal()),
        text(i, "client", e.getClient()), required(i, "operation", e.getOperation()), text(i, "key", e.getKey()),
        Integer.toUnsignedLong(e.getKeyVersion()), decision, text(i, "decision_reason", e.getDecisionReason()),
        text(i, "outcome", e.getOutcome()), text(i, "outcome_reason", e.getOutcomeReason()),
        text(i, "request_id", e.getRequestId()), e.getRequestDigest().toByteArray(),
        text(i, "details", e.getDetails()), deliveredBy, Event.CURRENT_VERSION);
  }

  private static String required(int i, String field, String v) {
    if (v.isEmpty()) throw bad(i, field, AuditReason.MISSING_FIELD, field + " is required");
    return text(i, field, v);
  }

  private static String text(int i, String field, String v) {
    if (v.length() > MAX_STRING_BYTES || utf8Length(v) > MAX_STRING_BYTES) {
      throw bad(i, field, AuditReason.FIELD_TOO_LONG, field + " is longer than " + MAX_STRING_BYTES + " bytes");
    }
    if (v.indexOf('\0') >= 0) {
      throw bad(i, field, AuditReason.INVALID_CHARACTER, field + " contains U+0000");
    }
    return v;
  }

  static int utf8Length(String s) {
    int n = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
        n += 4;
        i++;
      } else n += 3;
    }
    return n;
  }

  private static ServiceException bad(int index, String field, AuditReason reason, String message) {
    return new ServiceException(ErrorCode.INVALID_ARGUMENT, reason, "event " + index + ": " + message,
        Map.of("index", Integer.toString(index), "field", field), null);
  }
}
