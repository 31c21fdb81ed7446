package io.tpmkms.protection.tpm.internal;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The key derivations and the parameter encryption of TPM sessions (TPM 2.0 Part 1, §11.4.10 KDFa
 * and KDFe, §21 session-based encryption with AES-128 in CFB mode), SHA-256 only.
 */
public final class SessionCrypto {
  /** AES-128-CFB: the session's symmetric algorithm in TPM2_StartAuthSession. */
  public static final int ALG_AES = 0x0006;
  public static final int ALG_CFB = 0x0043;
  public static final int AES_BITS = 128;

  private SessionCrypto() {}

  // engines per thread: a provider lookup per use cost more than the cryptography (the TPM commands
  // run under the connection's lock, so one thread uses these at a time anyway)
  private static final ThreadLocal<Mac> HMAC = ThreadLocal.withInitial(() -> engine(() -> Mac.getInstance("HmacSHA256")));
  private static final ThreadLocal<java.security.MessageDigest> SHA256 =
      ThreadLocal.withInitial(() -> engine(() -> java.security.MessageDigest.getInstance("SHA-256")));
  private static final ThreadLocal<Cipher> AES_CFB =
      ThreadLocal.withInitial(() -> engine(() -> Cipher.getInstance("AES/CFB/NoPadding")));

  private interface Engine<T> {
    T get() throws GeneralSecurityException;
  }

  private static <T> T engine(Engine<T> e) {
    try {
      return e.get();
    } catch (GeneralSecurityException ex) {
      throw new IllegalStateException(ex);
    }
  }

  /** This thread's HMAC-SHA256 engine, initialised with {@code key}. */
  public static Mac hmacSha256(byte[] key) {
    Mac m = HMAC.get();
    try {
      m.init(new SecretKeySpec(key, "HmacSHA256"));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
    return m;
  }

  /** This thread's SHA-256 engine, reset. */
  public static java.security.MessageDigest sha256() {
    java.security.MessageDigest md = SHA256.get();
    md.reset();
    return md;
  }

  /**
   * KDFa(SHA-256, key, label, contextU, contextV, bits): HMAC-SHA256 in counter mode over
   * {@code i || label || 0x00 || contextU || contextV || bits}, truncated to {@code bits}.
   */
  public static byte[] kdfa(byte[] key, String label, byte[] contextU, byte[] contextV, int bits) {
    {
      Mac mac = hmacSha256(key);
      byte[] labelBytes = label.getBytes(StandardCharsets.US_ASCII);
      byte[] out = new byte[(bits + 7) / 8];
      int off = 0;
      for (int i = 1; off < out.length; i++) {
        mac.update(ByteBuffer.allocate(4).putInt(i).array());
        mac.update(labelBytes);
        mac.update((byte) 0);
        mac.update(contextU);
        mac.update(contextV);
        mac.update(ByteBuffer.allocate(4).putInt(bits).array());
        byte[] block = mac.doFinal();
        int n = Math.min(block.length, out.length - off);
        System.arraycopy(block, 0, out, off, n);
        Arrays.fill(block, (byte) 0);
        off += n;
      }
      return out;
    }
  }

  /**
   * KDFe(SHA-256, Z, label, partyUInfo, partyVInfo, bits): SHA-256 over
   * {@code counter || Z || label || 0x00 || partyUInfo || partyVInfo} (SP 800-56A's one-step KDF).
   */
  public static byte[] kdfe(byte[] z, String label, byte[] partyU, byte[] partyV, int bits) {
    {
      byte[] labelBytes = label.getBytes(StandardCharsets.US_ASCII);
      byte[] out = new byte[(bits + 7) / 8];
      int off = 0;
      for (int i = 1; off < out.length; i++) {
        java.security.MessageDigest md = sha256();
        md.update(ByteBuffer.allocate(4).putInt(i).array());
        md.update(z);
        md.update(labelBytes);
        md.update((byte) 0);
        md.update(partyU);
        md.update(partyV);
        byte[] block = md.digest();
        int n = Math.min(block.length, out.length - off);
        System.arraycopy(block, 0, out, off, n);
        Arrays.fill(block, (byte) 0);
        off += n;
      }
      return out;
    }
  }

  /**
   * Encrypts or decrypts, in place, the data of the TPM2B that starts {@code parameters}: AES-128-CFB
   * with key and IV from KDFa(sessionValue, "CFB", nonceNewer, nonceOlder, 256). For a command the
   * newer nonce is the caller's, for a response the TPM's.
   */
  public static void cfbFirstParameter(byte[] parameters, byte[] sessionValue, byte[] nonceNewer,
      byte[] nonceOlder, boolean encrypt) {
    if (parameters.length < 2) throw new IllegalArgumentException("no TPM2B to encrypt");
    int size = ((parameters[0] & 0xff) << 8) | (parameters[1] & 0xff);
    if (size > parameters.length - 2) throw new IllegalArgumentException("TPM2B longer than the parameters");
    if (size == 0) return;
    byte[] keyAndIv = kdfa(sessionValue, "CFB", nonceNewer, nonceOlder, AES_BITS + 128);
    try {
      Cipher c = AES_CFB.get();
      c.init(encrypt ? Cipher.ENCRYPT_MODE : Cipher.DECRYPT_MODE, new SecretKeySpec(keyAndIv, 0, 16, "AES"),
          new IvParameterSpec(keyAndIv, 16, 16));
      int n = c.doFinal(parameters, 2, size, parameters, 2);
      if (n != size) throw new IllegalStateException("CFB changed the length");
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    } finally {
      Arrays.fill(keyAndIv, (byte) 0);
    }
  }
}
