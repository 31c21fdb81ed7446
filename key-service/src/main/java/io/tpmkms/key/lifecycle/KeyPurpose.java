package io.tpmkms.key.lifecycle;

import io.tpmkms.protection.KeyAlgorithm;

/** What a key is for; fixes which algorithms and operations it allows. */
public enum KeyPurpose {
  ENCRYPT_DECRYPT(KeyAlgorithm.Kind.SYMMETRIC_AEAD, KeyAlgorithm.AES_256_GCM),
  ASYMMETRIC_SIGN(KeyAlgorithm.Kind.SIGN, KeyAlgorithm.EC_SIGN_P256_SHA256),
  ASYMMETRIC_DECRYPT(KeyAlgorithm.Kind.ASYMMETRIC_DECRYPT, KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256),
  MAC(KeyAlgorithm.Kind.MAC, KeyAlgorithm.HMAC_SHA256);

  private final KeyAlgorithm.Kind kind;
  private final KeyAlgorithm defaultAlgorithm;

  KeyPurpose(KeyAlgorithm.Kind kind, KeyAlgorithm defaultAlgorithm) {
    this.kind = kind;
    this.defaultAlgorithm = defaultAlgorithm;
  }

  public boolean allows(KeyAlgorithm a) { return a.kind() == kind; }
  public KeyAlgorithm defaultAlgorithm() { return defaultAlgorithm; }
}
