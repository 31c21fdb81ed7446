package io.tpmkms.protection;

import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.MGF1ParameterSpec;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import javax.crypto.spec.SecretKeySpec;

/**
 * The wrapped-key formats of import jobs (docs/import-export.md), the ones
 * Cloud KMS, AWS KMS ({@code RSA_AES_KEY_WRAP_SHA_256}) and Vault transit BYOK
 * use. RSA-OAEP is always SHA-256 with MGF1-SHA-256 and an empty label.
 *
 * <ul>
 *   <li>{@code *_AES_256} (CKM_RSA_AES_KEY_WRAP): {@code OAEP(k) || AES-KWP(k, material)} with a
 *       one-time AES-256 key {@code k}; the OAEP part is as long as the modulus.
 *   <li>plain {@code RSA_OAEP_*}: {@code OAEP(material)}, for material short enough (symmetric keys).
 * </ul>
 *
 * <p>The client side ({@link #wrap}) is what the CLI and the benchmark use; the
 * service side splits the blob ({@link #split}), has the wrapping key's holder
 * do the OAEP step, and unwraps the rest with {@link #unwrapKwp}.
 */
public final class ImportWrapping {
  private ImportWrapping() {}

  /** Import methods; names equal tpmkms.key.v1.ImportMethod's. */
  public enum Method {
    RSA_OAEP_3072_SHA256_AES_256(3072, true),
    RSA_OAEP_4096_SHA256_AES_256(4096, true),
    RSA_OAEP_3072_SHA256(3072, false),
    RSA_OAEP_4096_SHA256(4096, false),
    /**
     * TPM jobs only: no RSA wrapping key; the TPM's storage root key receives duplication blobs
     * (TPM2_Import, ADR 0025). None of the RSA methods below apply.
     */
    TPM2_DUPLICATION(0, false);

    private final int modulusBits;
    private final boolean aesKeyWrap;

    Method(int modulusBits, boolean aesKeyWrap) {
      this.modulusBits = modulusBits;
      this.aesKeyWrap = aesKeyWrap;
    }

    /** Whether the job receives TPM duplication blobs instead of RSA-wrapped material. */
    public boolean duplication() { return modulusBits == 0; }

    public int modulusBits() { return modulusBits; }
    public boolean aesKeyWrap() { return aesKeyWrap; }
    public int oaepLength() { return modulusBits / 8; }

    /** The algorithm of the job's wrapping key. */
    public KeyAlgorithm wrappingKeyAlgorithm() {
      if (duplication()) throw new IllegalStateException("a TPM2_DUPLICATION job has no RSA wrapping key");
      return modulusBits == 3072 ? KeyAlgorithm.RSA_DECRYPT_OAEP_3072_SHA256 : KeyAlgorithm.RSA_DECRYPT_OAEP_4096_SHA256;
    }

    /** Longest material a plain RSA-OAEP-SHA256 block carries: k - 2*32 - 2. */
    public int maxDirectMaterial() { return oaepLength() - 66; }
  }

  /** The two parts of a wrapped key: the OAEP block, and the AES-KWP part (empty for plain OAEP). */
  public record Parts(byte[] oaep, byte[] kwp) {}

  private static final OAEPParameterSpec OAEP = new OAEPParameterSpec("SHA-256", "MGF1",
      MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT);

  /** Wraps {@code material} for the job's public wrapping key. */
  public static byte[] wrap(Method method, PublicKey wrappingKey, byte[] material) {
    if (!(wrappingKey instanceof RSAPublicKey rsa) || rsa.getModulus().bitLength() != method.modulusBits()) {
      throw new IllegalArgumentException("the wrapping key is not RSA-" + method.modulusBits());
    }
    try {
      Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPPadding");
      oaep.init(Cipher.ENCRYPT_MODE, wrappingKey, OAEP);
      if (!method.aesKeyWrap()) {
        if (material.length > method.maxDirectMaterial()) {
          throw new IllegalArgumentException("material too long for " + method + "; use an _AES_256 method");
        }
        return oaep.doFinal(material);
      }
      byte[] k = new byte[32];
      new SecureRandom().nextBytes(k);
      try {
        byte[] head = oaep.doFinal(k);
        Cipher kwp = Cipher.getInstance("AES/KWP/NoPadding");
        kwp.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(k, "AES"));
        byte[] tail = kwp.doFinal(material);
        byte[] out = Arrays.copyOf(head, head.length + tail.length);
        System.arraycopy(tail, 0, out, head.length, tail.length);
        return out;
      } finally {
        Arrays.fill(k, (byte) 0);
      }
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("wrapping failed", e);
    }
  }

  /**
   * Splits a wrapped key by the method's layout. A blob of the wrong length is
   * {@link BackendException.Kind#INVALID_INPUT}.
   */
  public static Parts split(Method method, byte[] wrapped) {
    int k = method.oaepLength();
    if (!method.aesKeyWrap()) {
      if (wrapped.length != k) throw invalid("wrapped key must be " + k + " bytes for " + method);
      return new Parts(wrapped.clone(), new byte[0]);
    }
    // AES-KWP output is a multiple of 8 bytes and at least 16.
    int rest = wrapped.length - k;
    if (rest < 16 || rest % 8 != 0) {
      throw invalid("wrapped key must be " + k + " bytes of RSA-OAEP followed by an AES-KWP block for " + method);
    }
    return new Parts(Arrays.copyOfRange(wrapped, 0, k), Arrays.copyOfRange(wrapped, k, wrapped.length));
  }

  /**
   * AES-KWP (RFC 5649) unwrap of the material with the one-time key. An
   * integrity failure is {@link BackendException.Kind#INVALID_INPUT}. The
   * caller zeroes both the key and the result.
   */
  public static byte[] unwrapKwp(byte[] aesKey, byte[] kwp) {
    if (aesKey.length != 32) throw invalid("the RSA-OAEP part does not hold an AES-256 key");
    try {
      Cipher c = Cipher.getInstance("AES/KWP/NoPadding");
      c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(aesKey, "AES"));
      return c.doFinal(kwp);
    } catch (GeneralSecurityException e) {
      throw new BackendException(BackendException.Kind.INVALID_INPUT, "AES-KWP unwrap failed (integrity check)", e);
    }
  }

  /**
   * The qualifying data of a TPM import job's attestation: SHA-256 of
   * {@code "tpmkms/import-job/v1" 0x00 "namespace/job_id"} (UTF-8). It binds the
   * TPM2_Certify statement, made once when the wrapping key is generated, to the
   * job's name, so a statement cannot be replayed for another job.
   */
  public static byte[] jobAttestationNonce(String jobName) {
    try {
      java.security.MessageDigest d = java.security.MessageDigest.getInstance("SHA-256");
      d.update("tpmkms/import-job/v1\0".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      d.update(jobName.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      return d.digest();
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static BackendException invalid(String message) {
    return new BackendException(BackendException.Kind.INVALID_INPUT, message);
  }
}
