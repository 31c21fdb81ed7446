package io.tpmkms.protection;

/**
 * The key-protection port: a stateless engine that generates keys and uses them
 * by handle. The key catalogue (names, versions, states) lives outside it; the
 * backend never stores a key itself, so every handle it returns must be
 * persisted by the caller.
 *
 * <p>Order of effects, as callers must use it: {@code generate} → persist the
 * handle → if persisting fails, {@code destroy} the orphan. To destroy: remove
 * the mapping first, then call {@code destroy}.
 *
 * <p>Threading: implementations are safe for concurrent use; a device backend
 * serializes access to its device internally.
 *
 * <p>Errors: every method throws only {@link BackendException}. A method whose
 * {@link Capability} is not in {@link #describe()} throws
 * {@link BackendException.Kind#UNSUPPORTED}; callers check first.
 */
public interface KeyProtectionBackend extends AutoCloseable {

  BackendDescription describe();

  /** Generates a key inside the protection boundary; needs {@link Capability#GENERATE}. */
  GeneratedKey generate(KeySpec spec);

  /**
   * Makes a key of {@code spec.algorithm()} from caller-supplied material (the
   * import path); needs {@link Capability#IMPORT}. The material must be of the
   * spec's algorithm ({@link KeyMaterial#algorithm()}); the backend never keeps a
   * reference to it, and the caller closes (zeroes) it afterwards. The handle's
   * blob records that the key was imported.
   */
  GeneratedKey importKey(KeySpec spec, KeyMaterial material);

  /**
   * What the key's protection allows (ADR 0025): TPM keys read it from their public area;
   * backends that cannot export say NON_EXPORTABLE.
   */
  default ExportPolicy exportPolicy(KeyHandle handle) { return ExportPolicy.NON_EXPORTABLE; }

  /** The TPM authPolicy of the key's object; empty when it has none (and for non-TPM backends). */
  default byte[] policyDigest(KeyHandle handle) { return new byte[0]; }

  /** The platform state the key is bound to (TPM keys created with one; ADR 0036); empty for others. */
  default java.util.Optional<PlatformBinding> platformBinding(KeyHandle handle) { return java.util.Optional.empty(); }

  /**
   * The SHA-256 values the PCRs hold now, in ascending PCR order.
   *
   * @throws BackendException UNSUPPORTED when the backend has no PCRs (SOFTWARE)
   */
  default byte[][] pcrValues(int[] pcrs) {
    throw new BackendException(BackendException.Kind.UNSUPPORTED, "this protection level has no PCRs: platform binding needs a TPM");
  }

  /** DER SubjectPublicKeyInfo of an asymmetric key. */
  byte[] publicKey(KeyHandle handle);

  /**
   * Signs a digest of the algorithm's hash ({@link KeyAlgorithm#digestLength()} bytes).
   * ECDSA signatures are DER; RSA signatures are modulus-sized.
   */
  byte[] sign(KeyHandle handle, byte[] digest);

  /**
   * AEAD encryption with a symmetric key. The result is the backend's payload,
   * self-contained apart from the key (for software AES-256-GCM:
   * nonce(12) | ciphertext | tag(16)).
   */
  byte[] encrypt(KeyHandle handle, byte[] plaintext, byte[] aad);

  /** Inverse of {@link #encrypt}; a wrong tag or AAD is {@link BackendException.Kind#INVALID_INPUT}. */
  byte[] decrypt(KeyHandle handle, byte[] payload, byte[] aad);

  /** RSA-OAEP (SHA-256, MGF1-SHA256, empty label) decryption. */
  byte[] asymmetricDecrypt(KeyHandle handle, byte[] ciphertext);

  /** HMAC of data; verification is the caller's constant-time comparison. */
  byte[] mac(KeyHandle handle, byte[] data);

  /** Random bytes from the backend's generator; needs {@link Capability#RANDOM}. */
  byte[] randomBytes(int length);

  /**
   * Has the device attest that the key lives in it (TPM2_Certify by the
   * device's attestation key); needs {@link Capability#CERTIFY}.
   *
   * @param qualifyingData the verifier's nonce, at most 64 bytes, echoed in the signed statement
   */
  KeyAttestation certify(KeyHandle handle, byte[] qualifyingData);

  /**
   * Destroys whatever the backend holds for the handle (a loaded TPM object, a
   * cached key). After the caller has dropped the blob the material is gone.
   */
  void destroy(KeyHandle handle);

  @Override
  void close();
}
