package io.tpmkms.protection.tpm.internal;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.KeyAlgorithm;
import java.io.IOException;
import java.math.BigInteger;
import java.security.AlgorithmParameters;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import java.security.spec.RSAPublicKeySpec;
import org.bouncycastle.asn1.ASN1EncodableVector;
import org.bouncycastle.asn1.ASN1Encoding;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.DERSequence;
import tss.tpm.TPM2B_PUBLIC_KEY_RSA;
import tss.tpm.TPMS_ECC_PARMS;
import tss.tpm.TPMS_ECC_POINT;
import tss.tpm.TPMS_RSA_PARMS;
import tss.tpm.TPMT_PUBLIC;
import tss.tpm.TPM_ECC_CURVE;

/** Public keys and signatures from TPM structures to the JCA's DER forms. Stateless. */
public final class TpmPublicKeys {
  private TpmPublicKeys() {}

  /** DER SubjectPublicKeyInfo of an ECC or RSA public area (RSA exponent 0 means 65537). */
  public static byte[] spki(KeyAlgorithm alg, TPMT_PUBLIC pub) {
    try {
      if (pub.parameters instanceof TPMS_ECC_PARMS ecc && pub.unique instanceof TPMS_ECC_POINT point) {
        String curve;
        if (ecc.curveID == TPM_ECC_CURVE.NIST_P256) {
          curve = "secp256r1";
        } else if (ecc.curveID == TPM_ECC_CURVE.NIST_P384) {
          curve = "secp384r1";
        } else {
          throw new BackendException(Kind.KEY_INVALID, "unsupported curve " + ecc.curveID);
        }
        AlgorithmParameters params = AlgorithmParameters.getInstance("EC");
        params.init(new ECGenParameterSpec(curve));
        ECParameterSpec spec = params.getParameterSpec(ECParameterSpec.class);
        ECPoint w = new ECPoint(new BigInteger(1, point.x), new BigInteger(1, point.y));
        return KeyFactory.getInstance("EC").generatePublic(new ECPublicKeySpec(w, spec)).getEncoded();
      }
      if (pub.parameters instanceof TPMS_RSA_PARMS rsa && pub.unique instanceof TPM2B_PUBLIC_KEY_RSA n) {
        BigInteger e = BigInteger.valueOf(rsa.exponent == 0 ? 65537 : Integer.toUnsignedLong(rsa.exponent));
        return KeyFactory.getInstance("RSA").generatePublic(new RSAPublicKeySpec(new BigInteger(1, n.buffer), e))
            .getEncoded();
      }
    } catch (GeneralSecurityException | RuntimeException e) {
      if (e instanceof BackendException be) throw be;
      throw new BackendException(Kind.KEY_INVALID, "TPM public area of a " + alg + " key cannot be parsed", e);
    }
    throw new BackendException(Kind.KEY_INVALID, "a " + alg + " key blob holds no ECC or RSA public area");
  }

  /** DER ECDSA-Sig-Value from the TPM's r and s. */
  public static byte[] derEcdsa(byte[] r, byte[] s) {
    ASN1EncodableVector v = new ASN1EncodableVector();
    v.add(new ASN1Integer(new BigInteger(1, r)));
    v.add(new ASN1Integer(new BigInteger(1, s)));
    try {
      return new DERSequence(v).getEncoded(ASN1Encoding.DER);
    } catch (IOException e) {
      throw new BackendException(Kind.INTERNAL, "cannot DER-encode an ECDSA signature", e);
    }
  }
}
