package io.tpmkms.protection;

/**
 * Plaintext key material on its way into a backend (the import path), checked
 * against the algorithm it is declared as. Raw 32 bytes for AES-256 and
 * HMAC-SHA256; PKCS#8 PrivateKeyInfo DER for EC (P-256, P-384) and RSA
 * (2048/3072/4096, matching the algorithm's size).
 *
 * <p>Owns a copy of the bytes and zeroes it on {@link #close()}; never printed
 * ({@link #toString()} names only the algorithm).
 */
public final class KeyMaterial implements AutoCloseable {
  // TODO(issue 12, adapter helper): parse and check; fingerprint; accessors for backends.
  private KeyMaterial() {}

  /**
   * Parses {@code encoded} as {@code algorithm}'s material. Throws
   * {@link BackendException.Kind#INVALID_INPUT} when it is not (wrong length,
   * not PKCS#8, trailing bytes, another key type, size or curve, RSA below 2048).
   * The caller still owns and zeroes {@code encoded}.
   */
  public static KeyMaterial parse(KeyAlgorithm algorithm, byte[] encoded) {
    throw new BackendException(BackendException.Kind.UNSUPPORTED, "import not implemented yet");
  }

  public KeyAlgorithm algorithm() { throw new UnsupportedOperationException(); }

  /**
   * SHA-256 over the canonical encoding of the material: what a DESTROYED
   * version's tombstone keeps, so that only the same material can be re-imported.
   */
  public byte[] fingerprint() { throw new UnsupportedOperationException(); }

  @Override public void close() {}

  @Override public String toString() { return "KeyMaterial[hidden]"; }
}
