package io.tpmkms.protection.tpm.internal;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.ECPrivateKeySpec;
import java.util.Arrays;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1Sequence;
import org.bouncycastle.asn1.x9.ECNamedCurveTable;
import org.bouncycastle.asn1.x9.X9ECParameters;
import org.bouncycastle.math.ec.ECPoint;
import org.bouncycastle.util.BigIntegers;
import tss.tpm.TPMA_OBJECT;
import tss.tpm.TPMS_ECC_PARMS;
import tss.tpm.TPMS_ECC_POINT;
import tss.tpm.TPMS_NULL_KDF_SCHEME;
import tss.tpm.TPMS_SIG_SCHEME_ECDSA;
import tss.tpm.TPMT_PUBLIC;
import tss.tpm.TPMT_SYM_DEF_OBJECT;
import tss.tpm.TPM_ALG_ID;
import tss.tpm.TPM_ECC_CURVE;

/**
 * The deployment's duplication authority (ADR 0025): an ECDSA P-256 key whose TPM name is in the
 * DUP branch of every DUPLICABLE key's policy (PolicyAuthorize). It approves one duplication at a
 * time by signing aHash = H(PolicyDuplicationSelect(key name, target parent name) || policyRef);
 * the TPM checks that signature (TPM2_VerifySignature on the public part, loaded with
 * TPM2_LoadExternal) and only then lets the session satisfy the DUP branch.
 *
 * <p>The private scalar is derived from the backend's auth secret (HMAC-SHA256 with the label
 * "tpmkms/tpm/duplication-authority/v1", reduced into [1, n-1]): no new state to store or lose,
 * and whoever lacks the auth secret (the TPM-sealed root) cannot approve a duplication, even with
 * the TPM and the database. It never leaves this object, which never logs it.
 */
public final class DuplicationAuthority {
  private static final byte[] LABEL = "tpmkms/tpm/duplication-authority/v1".getBytes(StandardCharsets.US_ASCII);
  private static final X9ECParameters P256 = ECNamedCurveTable.getByName("secp256r1");

  private final PrivateKey key;
  private final byte[] tpmtPublic;
  private final byte[] name;

  public DuplicationAuthority(byte[] authSecret) {
    byte[] d;
    try {
      Mac m = Mac.getInstance("HmacSHA256");
      m.init(new SecretKeySpec(authSecret, "HmacSHA256"));
      m.update(LABEL);
      d = m.doFinal(new byte[] {1});
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
    BigInteger n = P256.getN();
    BigInteger scalar = new BigInteger(1, d).mod(n.subtract(BigInteger.ONE)).add(BigInteger.ONE);
    Arrays.fill(d, (byte) 0);
    ECPoint q = P256.getG().multiply(scalar).normalize();
    try {
      java.security.AlgorithmParameters ap = java.security.AlgorithmParameters.getInstance("EC");
      ap.init(new java.security.spec.ECGenParameterSpec("secp256r1"));
      java.security.spec.ECParameterSpec spec = ap.getParameterSpec(java.security.spec.ECParameterSpec.class);
      this.key = KeyFactory.getInstance("EC").generatePrivate(new ECPrivateKeySpec(scalar, spec));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
    TPMT_PUBLIC pub = publicTemplate();
    pub.unique = new TPMS_ECC_POINT(BigIntegers.asUnsignedByteArray(32, q.getAffineXCoord().toBigInteger()),
        BigIntegers.asUnsignedByteArray(32, q.getAffineYCoord().toBigInteger()));
    this.tpmtPublic = pub.toBytes();
    this.name = Templates.name(tpmtPublic);
  }

  /** The public template: ECC P-256, ECDSA-SHA256, an unrestricted signing key, loaded public only. */
  static TPMT_PUBLIC publicTemplate() {
    return new TPMT_PUBLIC(TPM_ALG_ID.SHA256, TPMA_OBJECT.fromInt(Templates.SIGN | Templates.USER_WITH_AUTH),
        new byte[0], new TPMS_ECC_PARMS(TPMT_SYM_DEF_OBJECT.nullObject(), new TPMS_SIG_SCHEME_ECDSA(TPM_ALG_ID.SHA256),
        TPM_ECC_CURVE.NIST_P256, new TPMS_NULL_KDF_SCHEME()), new TPMS_ECC_POINT(new byte[0], new byte[0]));
  }

  /** TPMT_PUBLIC of the authority (what TPM2_LoadExternal takes). */
  public byte[] tpmtPublic() { return tpmtPublic.clone(); }

  /** Its TPM name, the keySign of the DUP branch's PolicyAuthorize. */
  public byte[] name() { return name.clone(); }

  /** The policy the authority approves to duplicate {@code objectName} to {@code newParentName}. */
  public static byte[] approvedPolicy(byte[] objectName, byte[] newParentName) {
    return PolicyDigests.duplicationSelect(PolicyDigests.zero(), objectName, newParentName, true);
  }

  /**
   * Approves one duplication: a TPMT_SIGNATURE (ECDSA, SHA-256) over aHash =
   * H(approvedPolicy || policyRef), as TPM2_VerifySignature takes it.
   */
  public byte[] approve(byte[] objectName, byte[] newParentName) {
    byte[] aHash = PolicyDigests.approvalHash(approvedPolicy(objectName, newParentName),
        KeyPolicy.DUPLICATION_POLICY_REF);
    try {
      Signature s = Signature.getInstance("NONEwithECDSA");
      s.initSign(key);
      s.update(aHash);
      ASN1Sequence seq = ASN1Sequence.getInstance(s.sign());
      BigInteger r = ASN1Integer.getInstance(seq.getObjectAt(0)).getValue();
      BigInteger sv = ASN1Integer.getInstance(seq.getObjectAt(1)).getValue();
      return new Marshal().u16(TPM_ALG_ID.ECDSA.toInt()).u16(Marshal.ALG_SHA256)
          .tpm2b(BigIntegers.asUnsignedByteArray(32, r)).tpm2b(BigIntegers.asUnsignedByteArray(32, sv)).toBytes();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("ECDSA unavailable", e);
    }
  }

  @Override
  public String toString() { return "DuplicationAuthority[" + java.util.HexFormat.of().formatHex(name) + "]"; }
}
