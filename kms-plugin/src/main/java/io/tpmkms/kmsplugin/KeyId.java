package io.tpmkms.kmsplugin;

import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The KMS v2 {@code key_id} of a tpmkms key version: {@code tpmkms:NAMESPACE/NAME:vVERSION}, e.g.
 * {@code tpmkms:kube-system/etcd-secrets:v3}. It names the key and the version, so it changes when
 * the key rotates (the API server then writes new data keys) and stays what it was for data keys
 * written before. At most 1 KiB as Kubernetes requires: namespaces and names are at most 63
 * characters each (docs/api.md) and versions at most 2^31 - 1, so the longest is 146 characters.
 *
 * @param key     the tpmkms key, {@code NAMESPACE/NAME}
 * @param version its version that encrypted (1 or more)
 */
public record KeyId(String key, int version) {
  /** What precedes every tpmkms key_id. */
  public static final String PREFIX = "tpmkms:";
  private static final Pattern FORMAT = Pattern.compile("tpmkms:([^:/\\s]+/[^:/\\s]+):v([1-9][0-9]{0,9})");
  private static final Pattern KEY = Pattern.compile("[^:/\\s]+/[^:/\\s]+");

  public KeyId {
    requireKeyName(key);
    if (version < 1) throw new IllegalArgumentException("a key version is 1 or more, not " + version);
  }

  /** Checks that {@code key} is a tpmkms key name, NAMESPACE/NAME, and returns it. */
  public static String requireKeyName(String key) {
    Objects.requireNonNull(key, "key");
    if (!KEY.matcher(key).matches()) {
      throw new IllegalArgumentException("a tpmkms key is NAMESPACE/NAME, not \"" + key + "\"");
    }
    return key;
  }

  /**
   * The key_id {@code s} names.
   *
   * @throws IllegalArgumentException if {@code s} is not a tpmkms key_id
   */
  public static KeyId parse(String s) {
    Matcher m = FORMAT.matcher(s);
    long version = m.matches() ? Long.parseLong(m.group(2)) : 0;
    if (version < 1 || version > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("not a tpmkms key_id (tpmkms:NAMESPACE/NAME:vVERSION): \""
          + (s.length() > 200 ? s.substring(0, 200) + "..." : s) + "\"");
    }
    return new KeyId(m.group(1), (int) version);
  }

  @Override
  public String toString() {
    return PREFIX + key + ":v" + version;
  }
}
