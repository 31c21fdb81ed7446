package io.tpmkms.protection;

import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;

/**
 * Verifies signatures against a public key with the JDK's own providers, so
 * verification never needs the backend (or the TPM) and is independent of the
 * code that signed.
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
      Signature s;
      if (alg.isEc()) {
        s = Signature.getInstance("NONEwithECDSA");
        s.initVerify(pub);
        s.update(digest);
      } else if (alg.isPss()) {
        return RsaPadding.verifyPssPrehashed((java.security.interfaces.RSAPublicKey) pub, digest, signature);
      } else {
        s = Signature.getInstance("NONEwithRSA");
        s.initVerify(pub);
        s.update(RsaPadding.digestInfo(alg, digest));
      }
      return s.verify(signature);
    } catch (java.security.SignatureException | IllegalArgumentException e) {
      return false;
    } catch (GeneralSecurityException e) {
      throw new BackendException(BackendException.Kind.INTERNAL, "verification failed to run", e);
    }
  }

  public static PublicKey parsePublicKey(KeyAlgorithm alg, byte[] der) {
    try {
      return KeyFactory.getInstance(alg.isEc() ? "EC" : "RSA").generatePublic(new X509EncodedKeySpec(der));
    } catch (GeneralSecurityException | RuntimeException e) {
      throw new BackendException(BackendException.Kind.KEY_INVALID, "public key cannot be parsed", e);
    }
  }
}
