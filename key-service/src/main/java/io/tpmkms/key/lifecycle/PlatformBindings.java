package io.tpmkms.key.lifecycle;

import io.tpmkms.key.error.KeyReason;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.protection.PlatformBinding;
import java.util.Arrays;
import java.util.List;

/** A key's platform binding (ADR 0036) as the catalogue stores it and as requests give it. Stateless. */
public final class PlatformBindings {
  private PlatformBindings() {}

  /** The binding of the stored columns, or null when both are null. */
  public static PlatformBinding decode(String pcrs, byte[] values) {
    if (pcrs == null || values == null) return null;
    int[] p = Arrays.stream(pcrs.split(",")).mapToInt(Integer::parseInt).toArray();
    byte[][] v = new byte[p.length][];
    for (int i = 0; i < p.length; i++) v[i] = Arrays.copyOfRange(values, i * 32, i * 32 + 32);
    return new PlatformBinding(p, v);
  }

  /** The values concatenated in PCR order. */
  public static byte[] values(PlatformBinding b) {
    byte[][] v = b.values();
    byte[] out = new byte[v.length * PlatformBinding.VALUE_LENGTH];
    for (int i = 0; i < v.length; i++) System.arraycopy(v[i], 0, out, i * 32, 32);
    return out;
  }

  /**
   * A binding from a request: PCRs in any order (sorted here, the values move with them), values
   * all or none.
   *
   * @throws ServiceException INVALID_ARGUMENT INVALID_PLATFORM_BINDING naming what is wrong
   */
  public static PlatformBinding of(List<Integer> pcrs, List<byte[]> values) {
    try {
      if (pcrs.isEmpty()) throw new IllegalArgumentException("a platform binding names 1 to 8 PCRs");
      if (!values.isEmpty() && values.size() != pcrs.size()) {
        throw new IllegalArgumentException(values.size() + " values for " + pcrs.size() + " PCRs: give one per PCR, or none"
            + " to bind to the values they hold now");
      }
      Integer[] order = new Integer[pcrs.size()];
      for (int i = 0; i < order.length; i++) order[i] = i;
      Arrays.sort(order, (a, b) -> Long.compare(Integer.toUnsignedLong(pcrs.get(a)), Integer.toUnsignedLong(pcrs.get(b))));
      int[] p = new int[order.length];
      byte[][] v = values.isEmpty() ? null : new byte[order.length][];
      for (int i = 0; i < order.length; i++) {
        long pcr = Integer.toUnsignedLong(pcrs.get(order[i]));
        if (pcr > 23) throw new IllegalArgumentException("PCR " + pcr + " is not 0..23");
        p[i] = (int) pcr;
        if (v != null) v[i] = values.get(order[i]);
      }
      return new PlatformBinding(p, v);
    } catch (IllegalArgumentException e) {
      throw ServiceException.invalid(KeyReason.INVALID_PLATFORM_BINDING, "platform_binding: " + e.getMessage());
    }
  }
}
