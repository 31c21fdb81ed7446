package io.tpmkms.protection.tpm.attest;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A TCG PC Client crypto-agile event log (TCG PC Client Platform Firmware Profile, §10.2.1
 * TCG_PCClientPCREvent, §10.2.2 TCG_PCR_EVENT2, §10.4.5.1 TCG_EfiSpecIDEvent, §10.4.5.3 Startup
 * Locality): the format of {@code /sys/kernel/security/tpm0/binary_bios_measurements}. Little-endian.
 * The first event is in the SHA-1 format and carries the "Spec ID Event03" header listing the
 * algorithms and their digest sizes; every later event carries one digest per listed algorithm.
 *
 * <p>The log is untrusted input (it comes from the node): {@link #parse} refuses logs over
 * {@link #MAX_BYTES} or with more than {@link #MAX_EVENTS} events, every size is checked against
 * what remains before anything is allocated, and an event whose digest count, algorithms or sizes
 * differ from the header is MALFORMED — with the byte offset of the event. {@link #replay} then
 * recomputes the SHA-256 PCRs the log claims; only a quote over those values ({@link QuoteVerifier})
 * makes the log trustworthy.
 */
public final class EventLog {
  public static final int MAX_BYTES = 16 << 20;
  public static final int MAX_EVENTS = 100_000;
  public static final int ALG_SHA1 = 0x0004;
  public static final int ALG_SHA256 = 0x000B;
  public static final int ALG_SHA384 = 0x000C;
  public static final int ALG_SHA512 = 0x000D;
  public static final int EV_NO_ACTION = 0x3;
  public static final int EV_SEPARATOR = 0x4;
  public static final int EV_ACTION = 0x5;
  public static final int EV_IPL = 0xD;
  public static final int EV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001;
  public static final int EV_EFI_VARIABLE_BOOT = 0x80000002;
  public static final int EV_EFI_ACTION = 0x80000007;
  public static final int EV_EFI_VARIABLE_BOOT2 = 0x8000000C;
  public static final int EV_EFI_VARIABLE_AUTHORITY = 0x800000E0;
  static final byte[] SPEC_ID_SIGNATURE = "Spec ID Event03\0".getBytes(StandardCharsets.US_ASCII);
  static final byte[] STARTUP_LOCALITY = "StartupLocality\0".getBytes(StandardCharsets.US_ASCII);
  private static final int MAX_ALGORITHMS = 16;
  private static final int MAX_TEXT = 120;

  /** Why a log was refused; {@link #offset} is where in the log. */
  public static final class EventLogException extends Exception {
    private final long offset;

    public EventLogException(long offset, String message) {
      super("MALFORMED at offset " + offset + ": " + message);
      this.offset = offset;
    }

    public long offset() { return offset; }
  }

  /**
   * The Spec ID header.
   *
   * @param digestSizes digest size by TPM_ALG_ID, in the header's order
   */
  public record SpecId(int platformClass, int versionMajor, int versionMinor, int errata, int uintnSize,
      Map<Integer, Integer> digestSizes) {}

  /**
   * One event after the header.
   *
   * @param offset the event's byte offset in the log
   * @param digests digest by TPM_ALG_ID, in the log's order
   * @param text a short description for EV_IPL, EV_ACTION, EV_EFI_ACTION (the string) and the
   *     EV_EFI_VARIABLE_* events (the variable's name); null for others
   */
  public record Event(int number, long offset, int pcr, int type, Map<Integer, byte[]> digests, byte[] data,
      String text) {
    /** The SHA-256 digest, or null when the log has no SHA-256 bank. */
    public byte[] sha256() { return digests.get(ALG_SHA256); }

    public String typeName() { return EventLog.typeName(type); }
  }

  private final SpecId specId;
  private final List<Event> events;
  private final int startupLocality;

  private EventLog(SpecId specId, List<Event> events, int startupLocality) {
    this.specId = specId;
    this.events = Collections.unmodifiableList(events);
    this.startupLocality = startupLocality;
  }

  public SpecId specId() { return specId; }

  public List<Event> events() { return events; }

  /** The locality of TPM2_Startup from the StartupLocality event (PCR 0's initial value), 0 when absent. */
  public int startupLocality() { return startupLocality; }

  /** Parses a log, bounds first. */
  public static EventLog parse(byte[] log) throws EventLogException {
    if (log.length > MAX_BYTES) throw new EventLogException(0, "the log has " + log.length + " bytes, more than " + MAX_BYTES);
    Reader r = new Reader(log);
    // the header, in the SHA-1 format: pcrIndex, eventType, digest[20], eventSize, event
    r.u32("pcrIndex");
    long type = r.u32("eventType");
    if (type != EV_NO_ACTION) throw new EventLogException(0, "the first event is not EV_NO_ACTION (no Spec ID header)");
    r.bytes(20, "SHA-1 digest");
    int size = r.size("eventSize");
    int headerEnd = r.pos + size;
    if (size < SPEC_ID_SIGNATURE.length + 13) throw new EventLogException(0, "the Spec ID event is too short");
    if (!Arrays.equals(r.bytes(16, "signature"), SPEC_ID_SIGNATURE)) {
      throw new EventLogException(0, "not a crypto-agile log (no \"Spec ID Event03\" signature)");
    }
    int platformClass = (int) r.u32("platformClass");
    int minor = r.u8();
    int major = r.u8();
    int errata = r.u8();
    int uintnSize = r.u8();
    long algorithms = r.u32("numberOfAlgorithms");
    if (algorithms < 1 || algorithms > MAX_ALGORITHMS) {
      throw new EventLogException(r.pos - 4, algorithms + " algorithms in the Spec ID header");
    }
    Map<Integer, Integer> sizes = new LinkedHashMap<>();
    for (int i = 0; i < algorithms; i++) {
      int alg = r.u16();
      int digestSize = r.u16();
      if (digestSize == 0 || digestSize > 64 || sizes.put(alg, digestSize) != null) {
        throw new EventLogException(r.pos - 4, "algorithm 0x" + Integer.toHexString(alg) + " with digest size "
            + digestSize + " (or listed twice)");
      }
      Integer known = knownSize(alg);
      if (known != null && known != digestSize) {
        throw new EventLogException(r.pos - 4, "algorithm 0x" + Integer.toHexString(alg) + " has " + known
            + "-byte digests, the header says " + digestSize);
      }
    }
    int vendorSize = r.u8();
    r.bytes(vendorSize, "vendorInfo");
    if (r.pos != headerEnd) throw new EventLogException(0, "the Spec ID event's size does not match its content");
    SpecId spec = new SpecId(platformClass, major, minor, errata, uintnSize, Collections.unmodifiableMap(sizes));

    List<Event> events = new ArrayList<>();
    int locality = 0;
    while (r.pos < log.length) {
      long offset = r.pos;
      if (events.size() >= MAX_EVENTS) throw new EventLogException(offset, "more than " + MAX_EVENTS + " events");
      long pcr = r.u32("pcrIndex");
      if (pcr > 23) throw new EventLogException(offset, "PCR index " + pcr);
      int eventType = (int) r.u32("eventType");
      long count = r.u32("digest count");
      if (count != sizes.size()) {
        throw new EventLogException(offset, count + " digests, the header lists " + sizes.size() + " algorithms");
      }
      Map<Integer, byte[]> digests = new LinkedHashMap<>();
      for (int i = 0; i < count; i++) {
        int alg = r.u16();
        Integer digestSize = sizes.get(alg);
        if (digestSize == null || digests.containsKey(alg)) {
          throw new EventLogException(offset, "a digest of algorithm 0x" + Integer.toHexString(alg)
              + " the header does not list (or twice)");
        }
        digests.put(alg, r.bytes(digestSize, "digest"));
      }
      byte[] data = r.bytes(r.size("eventSize"), "event data");
      if (eventType == EV_NO_ACTION && data.length == 17
          && Arrays.equals(Arrays.copyOf(data, 16), STARTUP_LOCALITY)) {
        locality = data[16] & 0xff;
      }
      events.add(new Event(events.size() + 1, offset, (int) pcr, eventType, Collections.unmodifiableMap(digests), data,
          text(eventType, data)));
    }
    return new EventLog(spec, events, locality);
  }

  /**
   * The SHA-256 PCR values the log leads to: every PCR starts at zero (PCR 0 at the startup
   * locality in its last byte; PCRs 17-22, the dynamic ones, at all ones), and every event but
   * EV_NO_ACTION extends its PCR with its SHA-256 digest.
   *
   * @param pcrs the PCRs to return (0..23), whether or not the log has events for them
   * @throws EventLogException when the log has no SHA-256 digests
   */
  public Map<Integer, byte[]> replay(int[] pcrs) throws EventLogException {
    if (!specId.digestSizes().containsKey(ALG_SHA256)) throw new EventLogException(0, "the log has no SHA-256 bank");
    byte[][] values = new byte[24][];
    for (int i = 0; i < 24; i++) {
      values[i] = new byte[32];
      if (i >= 17 && i <= 22) Arrays.fill(values[i], (byte) 0xff);
    }
    values[0][31] = (byte) startupLocality;
    MessageDigest md = sha256();
    for (Event e : events) {
      if (e.type() == EV_NO_ACTION) continue;
      md.update(values[e.pcr()]);
      md.update(e.sha256());
      values[e.pcr()] = md.digest();
    }
    Map<Integer, byte[]> out = new TreeMap<>();
    for (int p : Pcrs.normalize(pcrs)) out.put(p, values[p]);
    return out;
  }

  private static Integer knownSize(int alg) {
    return switch (alg) {
      case ALG_SHA1 -> 20;
      case ALG_SHA256 -> 32;
      case ALG_SHA384 -> 48;
      case ALG_SHA512 -> 64;
      default -> null;
    };
  }

  /** A short, printable description where it is cheap; null otherwise. */
  static String text(int type, byte[] data) {
    try {
      if (type == EV_IPL || type == EV_ACTION || type == EV_EFI_ACTION) return printable(new String(data, StandardCharsets.UTF_8));
      if (type == EV_EFI_VARIABLE_DRIVER_CONFIG || type == EV_EFI_VARIABLE_BOOT || type == EV_EFI_VARIABLE_BOOT2
          || type == EV_EFI_VARIABLE_AUTHORITY) {
        // UEFI_VARIABLE_DATA: VariableName GUID[16], UnicodeNameLength u64, VariableDataLength u64, UnicodeName
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        b.position(16);
        long chars = b.getLong();
        b.getLong();
        if (chars < 0 || chars > MAX_TEXT || chars * 2 > b.remaining()) return null;
        byte[] name = new byte[(int) chars * 2];
        b.get(name);
        return printable(new String(name, StandardCharsets.UTF_16LE));
      }
    } catch (RuntimeException e) {
      return null;
    }
    return null;
  }

  private static String printable(String s) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < s.length() && out.length() < MAX_TEXT; i++) {
      char c = s.charAt(i);
      if (c == 0) continue;
      out.append(c >= 0x20 && c < 0x7f ? c : '?');
    }
    return out.toString();
  }

  /** The PC Client name of an event type (e.g. "EV_SEPARATOR"), or its number in hex. */
  public static String typeName(int type) {
    return switch (type) {
      case 0x0 -> "EV_PREBOOT_CERT";
      case 0x1 -> "EV_POST_CODE";
      case EV_NO_ACTION -> "EV_NO_ACTION";
      case EV_SEPARATOR -> "EV_SEPARATOR";
      case EV_ACTION -> "EV_ACTION";
      case 0x6 -> "EV_EVENT_TAG";
      case 0x7 -> "EV_S_CRTM_CONTENTS";
      case 0x8 -> "EV_S_CRTM_VERSION";
      case 0x9 -> "EV_CPU_MICROCODE";
      case 0xA -> "EV_PLATFORM_CONFIG_FLAGS";
      case 0xB -> "EV_TABLE_OF_DEVICES";
      case 0xC -> "EV_COMPACT_HASH";
      case EV_IPL -> "EV_IPL";
      case 0xE -> "EV_IPL_PARTITION_DATA";
      case 0xF -> "EV_NONHOST_CODE";
      case 0x10 -> "EV_NONHOST_CONFIG";
      case 0x11 -> "EV_NONHOST_INFO";
      case 0x12 -> "EV_OMIT_BOOT_DEVICE_EVENTS";
      case EV_EFI_VARIABLE_DRIVER_CONFIG -> "EV_EFI_VARIABLE_DRIVER_CONFIG";
      case EV_EFI_VARIABLE_BOOT -> "EV_EFI_VARIABLE_BOOT";
      case 0x80000003 -> "EV_EFI_BOOT_SERVICES_APPLICATION";
      case 0x80000004 -> "EV_EFI_BOOT_SERVICES_DRIVER";
      case 0x80000005 -> "EV_EFI_RUNTIME_SERVICES_DRIVER";
      case 0x80000006 -> "EV_EFI_GPT_EVENT";
      case EV_EFI_ACTION -> "EV_EFI_ACTION";
      case 0x80000008 -> "EV_EFI_PLATFORM_FIRMWARE_BLOB";
      case 0x80000009 -> "EV_EFI_HANDOFF_TABLES";
      case 0x8000000A -> "EV_EFI_PLATFORM_FIRMWARE_BLOB2";
      case 0x8000000B -> "EV_EFI_HANDOFF_TABLES2";
      case EV_EFI_VARIABLE_BOOT2 -> "EV_EFI_VARIABLE_BOOT2";
      case 0x80000010 -> "EV_EFI_HCRTM_EVENT";
      case EV_EFI_VARIABLE_AUTHORITY -> "EV_EFI_VARIABLE_AUTHORITY";
      case 0x800000E1 -> "EV_EFI_SPDM_FIRMWARE_BLOB";
      case 0x800000E2 -> "EV_EFI_SPDM_FIRMWARE_CONFIG";
      default -> "0x" + Integer.toHexString(type);
    };
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Little-endian reads that check what remains first: a size field never allocates past the end. */
  private static final class Reader {
    private final byte[] buf;
    private int pos;

    Reader(byte[] buf) { this.buf = buf; }

    private void need(int n, String what) throws EventLogException {
      if (n < 0 || n > buf.length - pos) {
        throw new EventLogException(pos, what + ": " + n + " bytes needed, " + (buf.length - pos) + " left");
      }
    }

    int u8() throws EventLogException {
      need(1, "a byte");
      return buf[pos++] & 0xff;
    }

    int u16() throws EventLogException {
      need(2, "a uint16");
      int v = (buf[pos] & 0xff) | (buf[pos + 1] & 0xff) << 8;
      pos += 2;
      return v;
    }

    long u32(String what) throws EventLogException {
      need(4, what);
      long v = (buf[pos] & 0xffL) | (buf[pos + 1] & 0xffL) << 8 | (buf[pos + 2] & 0xffL) << 16 | (buf[pos + 3] & 0xffL) << 24;
      pos += 4;
      return v;
    }

    /** A uint32 size that must fit in what remains. */
    int size(String what) throws EventLogException {
      int at = pos;
      long n = u32(what);
      if (n > buf.length - pos) throw new EventLogException(at, what + " " + n + " is past the end of the log");
      return (int) n;
    }

    byte[] bytes(int n, String what) throws EventLogException {
      need(n, what);
      byte[] out = Arrays.copyOfRange(buf, pos, pos + n);
      pos += n;
      return out;
    }
  }
}
