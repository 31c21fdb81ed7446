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
}
