package io.tpmkms.protection;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The algorithms a key version can have. Independent of the gRPC contract so
 * the adapter stays a plain library; key-service maps one to the other.
 *
 * <p>Stable codes ({@link #code()}) are written into key blobs and must never
 * be renumbered.
 */
public enum KeyAlgorithm {
  AES_256_GCM(1, Kind.SYMMETRIC_AEAD, null, 256),
  EC_SIGN_P256_SHA256(10, Kind.SIGN, "SHA-256", 256),
  EC_SIGN_P384_SHA384(11, Kind.SIGN, "SHA-384", 384),
  RSA_SIGN_PKCS1_2048_SHA256(20, Kind.SIGN, "SHA-256", 2048),
  RSA_SIGN_PKCS1_3072_SHA256(21, Kind.SIGN, "SHA-256", 3072),
  RSA_SIGN_PSS_2048_SHA256(22, Kind.SIGN, "SHA-256", 2048),
  RSA_SIGN_PSS_3072_SHA256(23, Kind.SIGN, "SHA-256", 3072),
  RSA_SIGN_PKCS1_4096_SHA256(24, Kind.SIGN, "SHA-256", 4096),
  RSA_SIGN_PSS_4096_SHA256(25, Kind.SIGN, "SHA-256", 4096),
  RSA_DECRYPT_OAEP_2048_SHA256(30, Kind.ASYMMETRIC_DECRYPT, "SHA-256", 2048),
  RSA_DECRYPT_OAEP_3072_SHA256(31, Kind.ASYMMETRIC_DECRYPT, "SHA-256", 3072),
  RSA_DECRYPT_OAEP_4096_SHA256(32, Kind.ASYMMETRIC_DECRYPT, "SHA-256", 4096),
  HMAC_SHA256(40, Kind.MAC, "SHA-256", 256);

  /** What a key of this algorithm is for. */
  public enum Kind { SYMMETRIC_AEAD, SIGN, ASYMMETRIC_DECRYPT, MAC }

  private final int code;
  private final Kind kind;
  private final String digest;
  private final int keyBits;

  KeyAlgorithm(int code, Kind kind, String digest, int keyBits) {
    this.code = code;
    this.kind = kind;
    this.digest = digest;
    this.keyBits = keyBits;
  }

  public int code() { return code; }
  public Kind kind() { return kind; }
  /** JCA name of the hash the algorithm signs with, or null for AES-GCM. */
  public String digestName() { return digest; }
  public int keyBits() { return keyBits; }
  public boolean isEc() { return name().startsWith("EC_"); }
  public boolean isRsa() { return name().startsWith("RSA_"); }
  public boolean isPss() { return name().startsWith("RSA_SIGN_PSS"); }
  public boolean isAsymmetric() { return kind == Kind.SIGN || kind == Kind.ASYMMETRIC_DECRYPT; }

  /** Length in bytes of the digest a SIGN key takes. */
  public int digestLength() {
    return "SHA-384".equals(digest) ? 48 : 32;
  }

  /** Hashes data with this algorithm's digest. */
  public byte[] digest(byte[] data) {
    try {
      return MessageDigest.getInstance(digest).digest(data);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  public static KeyAlgorithm fromCode(int code) {
    for (KeyAlgorithm a : values()) {
      if (a.code == code) return a;
    }
    throw new BackendException(BackendException.Kind.KEY_INVALID, "unknown algorithm code " + code);
  }
}
