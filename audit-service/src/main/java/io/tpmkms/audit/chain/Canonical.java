package io.tpmkms.audit.chain;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/**
 * The canonical encodings that are hashed and signed (ADR 0011, docs/audit.md):
 * never protobuf serialization, which is not canonical. All integers are
 * big-endian; a string or byte field is its length as uint32 followed by its
 * bytes (strings as UTF-8).
 *
 * <pre>
 * record(sequence, event) =
 *   str "tpmkms/audit/record/v1" | u64 sequence | str event_id | i64 time.seconds | u32 time.nanos
 *   | str service | str principal | str client | str operation | str key | u64 key_version
 *   | u64 decision | str decision_reason | str outcome | str outcome_reason | str request_id
 *   | bytes request_digest
 * record_v2(sequence, event) =                                   (every record made since ADR 0023)
 *   str "tpmkms/audit/record/v2" | the fields of v1 after its domain, in the same order
 *   | str details | str delivered_by
 * hash = SHA-256(previous_hash | record(sequence, event)),  previous_hash of sequence 1 = 32 zero bytes
 *   (record = v1 or v2 by the record's version; a chain may hold both: v1 records before v2 ones)
 *
 * checkpoint =
 *   str "tpmkms/audit/checkpoint/v1" | u64 sequence | bytes head_hash | i64 time.seconds | u32 time.nanos
 *   | str anchor
 * signature = ECDSA P-256 over SHA-256(checkpoint), DER
 * </pre>
 */
public final class Canonical {
  private Canonical() {}

  public static final String RECORD_DOMAIN = "tpmkms/audit/record/v1";
  public static final String RECORD_DOMAIN_V2 = "tpmkms/audit/record/v2";
  public static final String CHECKPOINT_DOMAIN = "tpmkms/audit/checkpoint/v1";
  public static final int HASH_LENGTH = 32;
  private static final byte[] RECORD_DOMAIN_BYTES = RECORD_DOMAIN.getBytes(StandardCharsets.US_ASCII);
  private static final byte[] RECORD_DOMAIN_V2_BYTES = RECORD_DOMAIN_V2.getBytes(StandardCharsets.US_ASCII);

  /** The domain string of a record version (1 or 2). */
  public static byte[] recordDomain(int version) {
    return (version == 1 ? RECORD_DOMAIN_BYTES : RECORD_DOMAIN_V2_BYTES).clone();
  }
  private static final byte[] CHECKPOINT_DOMAIN_BYTES = CHECKPOINT_DOMAIN.getBytes(StandardCharsets.US_ASCII);

  /** The previous hash of record 1, and the NV extend index's start value: 32 zero bytes. */
  public static byte[] genesis() { return new byte[HASH_LENGTH]; }

  public static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Writes record(sequence, event) into the encoder (reset first). */
  public static void record(Encoder e, long sequence, Event ev) {
    e.reset();
    e.bytes(ev.version() == 1 ? RECORD_DOMAIN_BYTES : RECORD_DOMAIN_V2_BYTES);
    e.u64(sequence);
    e.str(ev.eventId());
    e.u64(ev.seconds());
    e.u32(ev.nanos());
    e.str(ev.service());
    e.str(ev.principal());
    e.str(ev.client());
    e.str(ev.operation());
    e.str(ev.key());
    e.u64(ev.keyVersion());
    e.u64(ev.decision());
    e.str(ev.decisionReason());
    e.str(ev.outcome());
    e.str(ev.outcomeReason());
    e.str(ev.requestId());
    e.bytes(ev.requestDigest());
    if (ev.version() >= 2) {
      e.str(ev.details());
      e.str(ev.deliveredBy());
    }
  }

  /** SHA-256(previous_hash | record(sequence, event)). */
  public static byte[] recordHash(MessageDigest md, Encoder e, byte[] previousHash, long sequence, Event ev) {
    record(e, sequence, ev);
    md.reset();
    md.update(previousHash);
    md.update(e.buffer(), 0, e.length());
    return md.digest();
  }

  /** The canonical checkpoint encoding; its SHA-256 is what the audit key signs. */
  public static byte[] checkpoint(long sequence, byte[] headHash, long seconds, int nanos, String anchor) {
    Encoder e = new Encoder(128);
    e.bytes(CHECKPOINT_DOMAIN_BYTES);
    e.u64(sequence);
    e.bytes(headHash);
    e.u64(seconds);
    e.u32(nanos);
    e.str(anchor);
    return Arrays.copyOf(e.buffer(), e.length());
  }

  /** One NV extend step: SHA-256(nv | headHash). */
  public static byte[] extend(byte[] nv, byte[] headHash) {
    MessageDigest md = sha256();
    md.update(nv);
    md.update(headHash);
    return md.digest();
  }

  /**
   * A growable byte buffer that writes the canonical primitives. Reused across
   * records (no allocation per record once it is large enough); not thread-safe.
   */
  public static final class Encoder {
    private byte[] buf;
    private int len;

    public Encoder(int capacity) { buf = new byte[capacity]; }

    public Encoder() { this(4096); }

    public void reset() { len = 0; }
    public byte[] buffer() { return buf; }
    public int length() { return len; }

    private void ensure(int n) {
      if (len + n > buf.length) buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + n));
    }

    public void u16(int v) {
      ensure(2);
      buf[len++] = (byte) (v >>> 8);
      buf[len++] = (byte) v;
    }

    public void u32(int v) {
      ensure(4);
      buf[len++] = (byte) (v >>> 24);
      buf[len++] = (byte) (v >>> 16);
      buf[len++] = (byte) (v >>> 8);
      buf[len++] = (byte) v;
    }

    public void u64(long v) {
      ensure(8);
      for (int shift = 56; shift >= 0; shift -= 8) buf[len++] = (byte) (v >>> shift);
    }

    /** u32 length | bytes. */
    public void bytes(byte[] b) {
      u32(b.length);
      raw(b);
    }

    /** The bytes as they are, no length. */
    public void raw(byte[] b) {
      ensure(b.length);
      System.arraycopy(b, 0, buf, len, b.length);
      len += b.length;
    }

    /** u32 length | UTF-8 bytes; ASCII without an intermediate array. */
    public void str(String s) {
      int n = s.length();
      boolean ascii = true;
      for (int i = 0; i < n; i++) {
        if (s.charAt(i) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (!ascii) {
        bytes(s.getBytes(StandardCharsets.UTF_8));
        return;
      }
      u32(n);
      ensure(n);
      for (int i = 0; i < n; i++) buf[len++] = (byte) s.charAt(i);
    }
  }
}
