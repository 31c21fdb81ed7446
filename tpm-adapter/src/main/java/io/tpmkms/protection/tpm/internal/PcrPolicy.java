package io.tpmkms.protection.tpm.internal;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * TPM2_PolicyPCR over SHA-256 PCRs (TPM 2.0 Part 3 §23.7): reading the PCRs, the policy digest an
 * object is created with, and the assertion in a policy session. A selection is 1 to 8 PCR
 * indexes of 0..23, ascending (the order of the TPM's digest and of {@link #read}).
 */
public final class PcrPolicy {
  public static final int CC_POLICY_PCR = 0x17F;
  private static final int CC_PCR_READ = 0x17E;
  public static final int MAX_PCRS = 8;

  private PcrPolicy() {}

  /** Checks and sorts a selection. */
  public static int[] normalize(int[] pcrs) {
    int[] sorted = pcrs.clone();
    Arrays.sort(sorted);
    if (sorted.length == 0 || sorted.length > MAX_PCRS) {
      throw new IllegalArgumentException("a PCR selection has 1 to " + MAX_PCRS + " PCRs, not " + sorted.length);
    }
    for (int i = 0; i < sorted.length; i++) {
      if (sorted[i] < 0 || sorted[i] > 23) throw new IllegalArgumentException("PCR " + sorted[i] + " is not 0..23");
      if (i > 0 && sorted[i] == sorted[i - 1]) throw new IllegalArgumentException("PCR " + sorted[i] + " twice");
    }
    return sorted;
  }

  /** TPML_PCR_SELECTION with one SHA-256 bank and the selected PCRs. */
  public static byte[] selection(int[] pcrs) {
    byte[] bitmap = new byte[3];
    for (int p : pcrs) bitmap[p / 8] |= (byte) (1 << (p % 8));
    return new Marshal().u32(1).u16(Marshal.ALG_SHA256).u8(3).bytes(bitmap).toBytes();
  }

  /** The PCRs' current SHA-256 values, in the selection's order. */
  public static byte[][] read(TpmSession tpm, int[] pcrs) {
    byte[] r = tpm.raw("PCR_Read", Marshal.command(CC_PCR_READ, selection(pcrs)));
    ByteBuffer b = ByteBuffer.wrap(r, 10, r.length - 10);
    b.getInt(); // pcrUpdateCounter
    int banks = b.getInt();
    int selected = 0;
    for (int i = 0; i < banks; i++) {
      int alg = b.getShort() & 0xffff;
      int size = b.get() & 0xff;
      byte[] bitmap = new byte[size];
      b.get(bitmap);
      if (alg == Marshal.ALG_SHA256) {
        for (byte x : bitmap) selected += Integer.bitCount(x & 0xff);
      }
    }
    int count = b.getInt();
    if (selected != pcrs.length || count != pcrs.length) {
      throw new IllegalStateException("the TPM returned " + count + " of " + pcrs.length + " SHA-256 PCR values: "
          + "is its SHA-256 PCR bank allocated? (tpm2_pcrread sha256)");
    }
    byte[][] values = new byte[count][];
    for (int i = 0; i < count; i++) {
      values[i] = Marshal.tpm2b(b);
      if (values[i].length != PolicyDigests.DIGEST_LENGTH) throw new IllegalStateException("a PCR value of "
          + values[i].length + " bytes in the SHA-256 bank");
    }
    return values;
  }

  /** pcrDigest: SHA-256 of the values concatenated, as TPM2_PolicyPCR computes it. */
  public static byte[] digest(byte[][] values) {
    return PolicyDigests.hash(values);
  }

  /** policyDigest' = H(policyDigest || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || pcrDigest). */
  public static byte[] policy(byte[] old, int[] pcrs, byte[] pcrDigest) {
    return PolicyDigests.hash(old, PolicyDigests.u32(CC_POLICY_PCR), selection(pcrs), pcrDigest);
  }

  /**
   * Asserts in {@code session} that the PCRs have the values whose digest is {@code pcrDigest}; the
   * TPM refuses (TPM_RC_VALUE) when they do not.
   */
  public static void assertPcrs(PolicySession session, int[] pcrs, byte[] pcrDigest) {
    session.assertion("PolicyPCR", CC_POLICY_PCR, new Marshal().tpm2b(pcrDigest).bytes(selection(pcrs)).toBytes());
  }
}
