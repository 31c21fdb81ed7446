package io.tpmkms.protection.tpm.attest;

import java.io.ByteArrayOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes a crypto-agile event log in the format {@link EventLog} reads (TCG PC Client Platform
 * Firmware Profile §10.2): the Spec ID header, an optional StartupLocality event, then one
 * TCG_PCR_EVENT2 per measurement with a digest for each algorithm of the header (SHA-256, and SHA-1
 * if asked). For tests and for a measuring agent on swtpm: {@link #measure} extends the TPM's PCR
 * and appends the matching event, so the log replays to what the TPM holds. Not thread-safe.
 */
public final class EventLogWriter {
  private final int[] algorithms;
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();

  /** A log with SHA-256 digests only. */
  public EventLogWriter() { this(EventLog.ALG_SHA256); }

  /** A log with digests of the algorithms (SHA-1, SHA-256, SHA-384, SHA-512), in this order. */
  public EventLogWriter(int... algorithms) {
    this.algorithms = algorithms.clone();
    ByteArrayOutputStream spec = new ByteArrayOutputStream();
    spec.writeBytes(EventLog.SPEC_ID_SIGNATURE);
    u32(spec, 0); // platformClass: client
    spec.write(0); // specVersionMinor
    spec.write(2); // specVersionMajor
    spec.write(0); // errata
    spec.write(2); // uintnSize: UINT64
    u32(spec, algorithms.length);
    for (int alg : algorithms) {
      u16(spec, alg);
      u16(spec, digest(alg, new byte[0]).length);
    }
    spec.write(0); // vendorInfoSize
    u32(out, 0);
    u32(out, EventLog.EV_NO_ACTION);
    out.writeBytes(new byte[20]);
    u32(out, spec.size());
    out.writeBytes(spec.toByteArray());
  }

  /** Appends the StartupLocality EV_NO_ACTION event (PCR 0 then starts at {@code locality}). */
  public EventLogWriter startupLocality(int locality) {
    byte[] data = new byte[17];
    System.arraycopy(EventLog.STARTUP_LOCALITY, 0, data, 0, 16);
    data[16] = (byte) locality;
    Map<Integer, byte[]> zeros = new LinkedHashMap<>();
    for (int alg : algorithms) zeros.put(alg, new byte[digest(alg, new byte[0]).length]);
    appendDigests(0, EventLog.EV_NO_ACTION, zeros, data);
    return this;
  }

  /**
   * Appends an event whose digests are the hashes of {@code data} (as firmware does for EV_IPL,
   * EV_EFI_ACTION...).
   *
   * @return the event's SHA-256 digest, which extends the PCR
   */
  public byte[] append(int pcr, int type, byte[] data) {
    Map<Integer, byte[]> digests = new LinkedHashMap<>();
    for (int alg : algorithms) digests.put(alg, digest(alg, data));
    appendDigests(pcr, type, digests, data);
    return digests.get(EventLog.ALG_SHA256);
  }

  /** Appends an event with the given digests (one per algorithm of the header, in its order). */
  public void appendDigests(int pcr, int type, Map<Integer, byte[]> digests, byte[] data) {
    u32(out, pcr);
    u32(out, type);
    u32(out, digests.size());
    for (Map.Entry<Integer, byte[]> d : digests.entrySet()) {
      u16(out, d.getKey());
      out.writeBytes(d.getValue());
    }
    u32(out, data.length);
    out.writeBytes(data);
  }

  /**
   * Measures {@code data} into the TPM's SHA-256 bank of {@code pcr} (TPM2_PCR_Extend) and logs it.
   * The log's other algorithms are logged but not extended: write a SHA-256-only log for a TPM.
   */
  public byte[] measure(TpmAttestation tpm, int pcr, int type, byte[] data) {
    byte[] sha256 = digest(EventLog.ALG_SHA256, data);
    tpm.extendPcr(pcr, sha256);
    append(pcr, type, data);
    return sha256;
  }

  public byte[] toBytes() { return out.toByteArray(); }

  static byte[] digest(int alg, byte[] data) {
    String name = switch (alg) {
      case EventLog.ALG_SHA1 -> "SHA-1";
      case EventLog.ALG_SHA256 -> "SHA-256";
      case EventLog.ALG_SHA384 -> "SHA-384";
      case EventLog.ALG_SHA512 -> "SHA-512";
      default -> throw new IllegalArgumentException("algorithm 0x" + Integer.toHexString(alg));
    };
    try {
      return MessageDigest.getInstance(name).digest(data);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void u16(ByteArrayOutputStream o, int v) {
    o.write(v);
    o.write(v >>> 8);
  }

  private static void u32(ByteArrayOutputStream o, int v) {
    o.write(v);
    o.write(v >>> 8);
    o.write(v >>> 16);
    o.write(v >>> 24);
  }
}
