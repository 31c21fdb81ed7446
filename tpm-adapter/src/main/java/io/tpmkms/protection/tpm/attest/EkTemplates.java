package io.tpmkms.protection.tpm.attest;

import java.util.HexFormat;
import tss.tpm.TPM2B_PUBLIC_KEY_RSA;
import tss.tpm.TPMA_OBJECT;
import tss.tpm.TPMS_ECC_PARMS;
import tss.tpm.TPMS_ECC_POINT;
import tss.tpm.TPMS_NULL_ASYM_SCHEME;
import tss.tpm.TPMS_NULL_KDF_SCHEME;
import tss.tpm.TPMS_RSA_PARMS;
import tss.tpm.TPMT_PUBLIC;
import tss.tpm.TPMT_SYM_DEF_OBJECT;
import tss.tpm.TPM_ALG_ID;
import tss.tpm.TPM_ECC_CURVE;

/**
 * The TCG default EK templates (TCG EK Credential Profile for TPM Family 2.0, §2.2.1.4 "Low Range",
 * templates L-1 RSA 2048 and L-2 ECC NIST P-256): TPM2_CreatePrimary in the endorsement hierarchy
 * with one of them re-creates the EK whose public key the manufacturer certified (swtpm_setup and
 * {@code tpm2_createek} use the same templates). The EK is a restricted decryption key usable only
 * through its policy: PolicySecret(TPM_RH_ENDORSEMENT).
 */
public final class EkTemplates {
  private EkTemplates() {}

  /** fixedTPM | fixedParent | sensitiveDataOrigin | adminWithPolicy | restricted | decrypt. */
  public static final int ATTRIBUTES = 0x000300B2;

  /** TPM2_PolicySecret(TPM_RH_ENDORSEMENT) from an all-zero digest: the default EK's authPolicy. */
  private static final byte[] POLICY_SECRET_ENDORSEMENT =
      HexFormat.of().parseHex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa");

  /** NV indexes of the EK certificates (TCG EK Credential Profile §2.2.1.5). */
  public static final int NV_EK_CERT_RSA = 0x01C00002;
  public static final int NV_EK_CERT_ECC = 0x01C0000A;

  /** Template L-1: RSA 2048, AES-128-CFB, unique = 256 zero bytes. */
  public static TPMT_PUBLIC rsa2048() {
    return new TPMT_PUBLIC(TPM_ALG_ID.SHA256, TPMA_OBJECT.fromInt(ATTRIBUTES), POLICY_SECRET_ENDORSEMENT.clone(),
        new TPMS_RSA_PARMS(new TPMT_SYM_DEF_OBJECT(TPM_ALG_ID.AES, 128, TPM_ALG_ID.CFB), new TPMS_NULL_ASYM_SCHEME(),
            2048, 0),
        new TPM2B_PUBLIC_KEY_RSA(new byte[256]));
  }

  /** Template L-2: ECC NIST P-256, AES-128-CFB, unique = two 32-byte zero coordinates. */
  public static TPMT_PUBLIC eccP256() {
    return new TPMT_PUBLIC(TPM_ALG_ID.SHA256, TPMA_OBJECT.fromInt(ATTRIBUTES), POLICY_SECRET_ENDORSEMENT.clone(),
        new TPMS_ECC_PARMS(new TPMT_SYM_DEF_OBJECT(TPM_ALG_ID.AES, 128, TPM_ALG_ID.CFB), new TPMS_NULL_ASYM_SCHEME(),
            TPM_ECC_CURVE.NIST_P256, new TPMS_NULL_KDF_SCHEME()),
        new TPMS_ECC_POINT(new byte[32], new byte[32]));
  }

  /**
   * The EK's public area (TPMT_PUBLIC) for the public key of its certificate: the TCG template of
   * the key's type with the key as unique — what the TPM re-creates, so a verifier that trusts the
   * certificate can make credentials for that EK without asking the TPM for its public area.
   *
   * @throws IllegalArgumentException for a key that is neither RSA-2048 nor EC P-256
   */
  public static byte[] forCertifiedKey(java.security.PublicKey key) {
    if (key instanceof java.security.interfaces.RSAPublicKey rsa && rsa.getModulus().bitLength() == 2048) {
      TPMT_PUBLIC t = rsa2048();
      t.unique = new TPM2B_PUBLIC_KEY_RSA(unsigned(rsa.getModulus(), 256));
      return t.toBytes();
    }
    if (key instanceof java.security.interfaces.ECPublicKey ec && ec.getParams().getCurve().getField().getFieldSize() == 256) {
      TPMT_PUBLIC t = eccP256();
      t.unique = new TPMS_ECC_POINT(unsigned(ec.getW().getAffineX(), 32), unsigned(ec.getW().getAffineY(), 32));
      return t.toBytes();
    }
    throw new IllegalArgumentException("an EK certificate's key must be RSA-2048 or EC P-256");
  }

  private static byte[] unsigned(java.math.BigInteger v, int length) {
    byte[] b = v.toByteArray();
    byte[] out = new byte[length];
    int n = Math.min(b.length, length);
    System.arraycopy(b, b.length - n, out, length - n, n);
    return out;
  }
}
