package io.tpmkms.protection;

import java.security.interfaces.RSAPublicKey;
import org.bouncycastle.crypto.digests.SHA256Digest;
import org.bouncycastle.crypto.engines.RSABlindedEngine;
import org.bouncycastle.crypto.params.RSAKeyParameters;
import org.bouncycastle.crypto.signers.PSSSigner;
import org.bouncycastle.util.Arrays;
import org.bouncycastle.util.encoders.Hex;

/**
 * RSA signature encodings over a precomputed digest: the PKCS#1 v1.5
 * DigestInfo, and PSS (MGF1-SHA256, salt length 32) on a SHA-256 digest.
 */
public final class RsaPadding {
  private static final byte[] SHA256_PREFIX = Hex.decode("3031300d060960864801650304020105000420");
  private static final byte[] SHA384_PREFIX = Hex.decode("3041300d060960864801650304020205000430");

  private RsaPadding() {}

  /** DER DigestInfo for the algorithm's hash, wrapping the given digest. */
  public static byte[] digestInfo(KeyAlgorithm alg, byte[] digest) {
    checkDigest(alg, digest);
    byte[] prefix = "SHA-384".equals(alg.digestName()) ? SHA384_PREFIX : SHA256_PREFIX;
    return Arrays.concatenate(prefix, digest);
  }

  /** Verifies an RSASSA-PSS signature over a SHA-256 digest. */
  public static boolean verifyPssPrehashed(RSAPublicKey pub, byte[] digest, byte[] signature) {
    if (digest == null || digest.length != 32) {
      throw new BackendException(BackendException.Kind.INVALID_INPUT, "digest must be 32 bytes for RSA-PSS-SHA256");
    }
    PSSSigner v = PSSSigner.createRawSigner(
        new RSABlindedEngine(), new SHA256Digest(), new SHA256Digest(), 32, PSSSigner.TRAILER_IMPLICIT);
    v.init(false, new RSAKeyParameters(false, pub.getModulus(), pub.getPublicExponent()));
    v.update(digest, 0, digest.length);
    try {
      return v.verifySignature(signature);
    } catch (RuntimeException e) {
      // BC throws DataLengthException for a signature value >= the modulus: malformed, so invalid.
      return false;
    }
  }

  /**
   * Checks that a digest has the length the algorithm's hash produces.
   *
   * @throws BackendException INVALID_INPUT if it is null or of another length
   */
  public static void checkDigest(KeyAlgorithm alg, byte[] digest) {
    if (digest == null || digest.length != alg.digestLength()) {
      throw new BackendException(BackendException.Kind.INVALID_INPUT,
          "digest must be " + alg.digestLength() + " bytes for " + alg);
    }
  }
}
