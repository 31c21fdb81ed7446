package io.tpmkms.protection;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * A TPM key's binding to platform state (seed 002, issue 20): the SHA-256 PCRs the key's policy
 * asserts with TPM2_PolicyPCR and the values they must hold, so the TPM itself refuses every use
 * of the key when the platform state differs. 1 to 8 PCRs of 0..23, ascending; one 32-byte value
 * per PCR in the same order ({@code values} null: "the values the PCRs hold now", resolved by the
 * backend when it creates the key). Immutable.
 */
public record PlatformBinding(int[] pcrs, byte[][] values) {
  public static final int MAX_PCRS = 8;
  public static final int VALUE_LENGTH = 32;

  public PlatformBinding {
    if (pcrs == null) throw new IllegalArgumentException("a platform binding names its PCRs");
    pcrs = pcrs.clone();
    if (pcrs.length == 0 || pcrs.length > MAX_PCRS) {
      throw new IllegalArgumentException("a platform binding has 1 to " + MAX_PCRS + " PCRs, not " + pcrs.length);
    }
    for (int i = 0; i < pcrs.length; i++) {
      if (pcrs[i] < 0 || pcrs[i] > 23) throw new IllegalArgumentException("PCR " + pcrs[i] + " is not 0..23");
      if (i > 0 && pcrs[i] <= pcrs[i - 1]) {
        throw new IllegalArgumentException("PCRs must be distinct and ascending (" + pcrs[i - 1] + ", " + pcrs[i] + ")");
      }
    }
    if (values != null) {
      if (values.length != pcrs.length) {
        throw new IllegalArgumentException(values.length + " values for " + pcrs.length + " PCRs");
      }
      byte[][] copy = new byte[values.length][];
      for (int i = 0; i < values.length; i++) {
        if (values[i] == null || values[i].length != VALUE_LENGTH) {
          throw new IllegalArgumentException("the value of PCR " + pcrs[i] + " is not " + VALUE_LENGTH
              + " bytes (SHA-256 bank)");
        }
        copy[i] = values[i].clone();
      }
      values = copy;
    }
  }

  /** The PCRs, sorted; values to be read when the key is created. */
  public static PlatformBinding current(int... pcrs) {
    int[] sorted = pcrs.clone();
    Arrays.sort(sorted);
    return new PlatformBinding(sorted, null);
  }

  @Override public int[] pcrs() { return pcrs.clone(); }

  @Override public byte[][] values() {
    if (values == null) return null;
    byte[][] copy = new byte[values.length][];
    for (int i = 0; i < values.length; i++) copy[i] = values[i].clone();
    return copy;
  }

  public boolean resolved() { return values != null; }

  /** This binding with the values given. */
  public PlatformBinding withValues(byte[][] v) { return new PlatformBinding(pcrs, v); }

  /** The pcrDigest TPM2_PolicyPCR compares: SHA-256 of the values concatenated, in PCR order. */
  public byte[] digest() {
    if (values == null) throw new IllegalStateException("the binding's values are not resolved");
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      for (byte[] v : values) md.update(v);
      return md.digest();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** "7,16", the form the CLI and the settings use. */
  public String selectionText() {
    StringBuilder b = new StringBuilder();
    for (int p : pcrs) b.append(b.length() == 0 ? "" : ",").append(p);
    return b.toString();
  }

  /** The PCRs whose {@code actual} values (same order) differ from the bound ones. */
  public String differing(byte[][] actual) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < pcrs.length; i++) {
      if (values != null && !MessageDigest.isEqual(values[i], actual[i])) b.append(b.length() == 0 ? "" : ",").append(pcrs[i]);
    }
    return b.toString();
  }

  @Override public boolean equals(Object o) {
    return o instanceof PlatformBinding p && Arrays.equals(pcrs, p.pcrs) && Arrays.deepEquals(values, p.values);
  }

  @Override public int hashCode() { return Arrays.hashCode(pcrs) * 31 + Arrays.deepHashCode(values); }

  @Override public String toString() {
    StringBuilder b = new StringBuilder("PlatformBinding[sha256:").append(selectionText());
    if (values != null) {
      for (int i = 0; i < pcrs.length; i++) b.append(' ').append(pcrs[i]).append('=').append(HexFormat.of().formatHex(values[i]));
    }
    return b.append(']').toString();
  }
}
