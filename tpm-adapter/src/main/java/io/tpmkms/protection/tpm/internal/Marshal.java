package io.tpmkms.protection.tpm.internal;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;

/**
 * Builds TPM 2.0 commands byte by byte (big-endian, TPM 2.0 Part 1 §18) for the commands the
 * adapter marshals itself: those with HMAC policy sessions, which TSS.Java cannot authorize, and
 * those whose buffers hold secrets. Reads response parameters the same way.
 */
public final class Marshal {
  public static final int ST_NO_SESSIONS = 0x8001;
  public static final int ST_SESSIONS = 0x8002;
  public static final int RH_NULL = 0x40000007;
  public static final int RH_OWNER = 0x40000001;
  public static final int RS_PW = 0x40000009;
  public static final int ALG_NULL = 0x0010;
  public static final int ALG_SHA256 = 0x000B;

  private final ByteArrayOutputStream out = new ByteArrayOutputStream(256);

  public Marshal u8(int v) {
    out.write(v);
    return this;
  }

  public Marshal u16(int v) {
    out.write(v >>> 8);
    out.write(v);
    return this;
  }

  public Marshal u32(int v) {
    out.write(v >>> 24);
    out.write(v >>> 16);
    out.write(v >>> 8);
    out.write(v);
    return this;
  }

  public Marshal bytes(byte[] b) {
    out.writeBytes(b);
    return this;
  }

  /** A TPM2B: uint16 size and the bytes. */
  public Marshal tpm2b(byte[] b) {
    return u16(b.length).bytes(b);
  }

  public byte[] toBytes() { return out.toByteArray(); }

  public int size() { return out.size(); }

  /** A command without sessions: tag, size, code, then handles and parameters. */
  public static byte[] command(int commandCode, byte[] handlesAndParameters) {
    int size = 10 + handlesAndParameters.length;
    return ByteBuffer.allocate(size).putShort((short) ST_NO_SESSIONS).putInt(size).putInt(commandCode)
        .put(handlesAndParameters).array();
  }

  /** Reads a TPM2B's content. */
  public static byte[] tpm2b(ByteBuffer b) {
    byte[] v = new byte[b.getShort() & 0xffff];
    b.get(v);
    return v;
  }

  /** Reads a TPM2B whole, its size included (as blobs and tpm2-tools files hold it). */
  public static byte[] sizedTpm2b(ByteBuffer b) {
    int n = b.getShort(b.position()) & 0xffff;
    byte[] v = new byte[2 + n];
    b.get(v);
    return v;
  }
}
