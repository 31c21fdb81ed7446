package io.tpmkms.key.lifecycle;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Arrays;

/**
 * What an imported version keeps of its material, so that a DESTROYED version can
 * be re-imported with the same material only: {@code salt(16) || SHA-256(salt ||
 * fingerprint)}, where the fingerprint is {@code KeyMaterial.fingerprint()}
 * (SHA-256 of the canonical material). The per-version salt keeps a database reader
 * from seeing that two versions (or two deployments) hold the same material.
 */
public final class MaterialFingerprint {
  private static final int SALT = 16;
  private static final SecureRandom RANDOM = new SecureRandom();

  private MaterialFingerprint() {}

  /** A fresh salted record of {@code fingerprint}. */
  public static byte[] seal(byte[] fingerprint) {
    byte[] salt = new byte[SALT];
    RANDOM.nextBytes(salt);
    byte[] out = Arrays.copyOf(salt, SALT + 32);
    System.arraycopy(hash(salt, fingerprint), 0, out, SALT, 32);
    return out;
  }

  /** Whether {@code stored} (from {@link #seal}) records {@code fingerprint}; constant time in the hash. */
  public static boolean matches(byte[] stored, byte[] fingerprint) {
    if (stored == null || stored.length != SALT + 32) return false;
    byte[] salt = Arrays.copyOf(stored, SALT);
    return MessageDigest.isEqual(Arrays.copyOfRange(stored, SALT, SALT + 32), hash(salt, fingerprint));
  }

  private static byte[] hash(byte[] salt, byte[] fingerprint) {
    try {
      MessageDigest d = MessageDigest.getInstance("SHA-256");
      d.update(salt);
      return d.digest(fingerprint);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
