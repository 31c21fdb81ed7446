package io.tpmkms.protection;

import java.security.GeneralSecurityException;
import java.security.PublicKey;

/**
 * Verifies signatures against a public key in this process (on the providers
 * {@link AsymmetricCrypto} chose), so verification never needs the backend (or
 * the TPM).
 *
 * <p>Thread-safe; stateless.
 */
public final class SignatureVerifier {
  private SignatureVerifier() {}

  /**
   * @param digest a digest of the algorithm's hash
   * @return whether the signature is valid; malformed signatures are invalid, not errors
   * @throws BackendException INVALID_INPUT if the digest is not {@link KeyAlgorithm#digestLength()} bytes;
   *     KEY_INVALID if the public key cannot be parsed; UNSUPPORTED if the algorithm does not sign
   */
  public static boolean verifyDigest(KeyAlgorithm alg, byte[] publicKeyDer, byte[] digest, byte[] signature) {
    if (alg.kind() != KeyAlgorithm.Kind.SIGN) {
      throw new BackendException(BackendException.Kind.UNSUPPORTED, alg + " does not sign");
    }
    RsaPadding.checkDigest(alg, digest);
    if (signature == null) return false;
    PublicKey pub = parsePublicKey(alg, publicKeyDer);
    try {
      return AsymmetricCrypto.current().verifyDigest(alg, pub, digest, signature);
    } catch (java.security.InvalidKeyException e) {
      throw new BackendException(BackendException.Kind.KEY_INVALID, "public key cannot be used", e);
    } catch (GeneralSecurityException e) {
      throw new BackendException(BackendException.Kind.INTERNAL, "verification failed to run", e);
    }
  }

  public static PublicKey parsePublicKey(KeyAlgorithm alg, byte[] der) {
    try {
      return AsymmetricCrypto.current().publicKey(alg, der);
    } catch (GeneralSecurityException | RuntimeException e) {
      throw new BackendException(BackendException.Kind.KEY_INVALID, "public key cannot be parsed", e);
    }
  }
}
