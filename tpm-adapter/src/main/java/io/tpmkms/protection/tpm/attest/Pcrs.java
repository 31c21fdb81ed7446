package io.tpmkms.protection.tpm.attest;

import io.tpmkms.protection.tpm.internal.Marshal;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/** SHA-256 PCR selections (TPML_PCR_SELECTION, TPM 2.0 Part 2 §10.9.7) and the quote's pcrDigest. */
final class Pcrs {
  private Pcrs() {}

  /** Sorted, 1 to 24 distinct PCRs of 0..23. */
  static int[] normalize(int[] pcrs) {
    int[] sorted = pcrs.clone();
    Arrays.sort(sorted);
    if (sorted.length == 0 || sorted.length > 24) throw new IllegalArgumentException("1 to 24 PCRs");
    for (int i = 0; i < sorted.length; i++) {
      if (sorted[i] < 0 || sorted[i] > 23) throw new IllegalArgumentException("PCR " + sorted[i] + " is not 0..23");
      if (i > 0 && sorted[i] == sorted[i - 1]) throw new IllegalArgumentException("PCR " + sorted[i] + " twice");
    }
    return sorted;
  }

  /** One SHA-256 bank with the PCRs set in a 3-byte bitmap. */
  static byte[] selection(int[] pcrs) {
    byte[] bitmap = new byte[3];
    for (int p : pcrs) bitmap[p / 8] |= (byte) (1 << (p % 8));
    return new Marshal().u32(1).u16(Marshal.ALG_SHA256).u8(3).bytes(bitmap).toBytes();
  }

  /** SHA-256 of the values concatenated in selection order (Part 3 §18.4 TPM2_Quote). */
  static byte[] digest(byte[][] values) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      for (byte[] v : values) md.update(v);
      return md.digest();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
