package io.tpmkms.protection.tpm.internal;

import io.tpmkms.protection.KeyAlgorithm;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import tss.tpm.TPMA_OBJECT;
import tss.tpm.TPMS_ECC_PARMS;
import tss.tpm.TPMS_ECC_POINT;
import tss.tpm.TPMS_ENC_SCHEME_OAEP;
import tss.tpm.TPMS_KEYEDHASH_PARMS;
import tss.tpm.TPMS_NULL_ASYM_SCHEME;
import tss.tpm.TPMS_NULL_KDF_SCHEME;
import tss.tpm.TPMS_NULL_SCHEME_KEYEDHASH;
import tss.tpm.TPMS_RSA_PARMS;
import tss.tpm.TPMS_SCHEME_HMAC;
import tss.tpm.TPMS_SIG_SCHEME_ECDSA;
import tss.tpm.TPMS_SIG_SCHEME_RSAPSS;
import tss.tpm.TPMS_SIG_SCHEME_RSASSA;
import tss.tpm.TPM2B_DIGEST_KEYEDHASH;
import tss.tpm.TPM2B_PUBLIC_KEY_RSA;
import tss.tpm.TPMT_PUBLIC;
import tss.tpm.TPMT_SYM_DEF_OBJECT;
import tss.tpm.TPM_ALG_ID;
import tss.tpm.TPM_ECC_CURVE;

/**
 * The fixed public templates (docs/tpm-adapter.md §4 lists them). Changing one
 * changes the objects' names: the SRK and AK templates are part of the SRK's
 * and AK's identity, key templates are checked against every loaded blob.
 */
public final class Templates {
  private Templates() {}

  /** TPM_ALG_SHA256, the name algorithm of every object we create. */
  public static final int NAME_ALG_SHA256 = 0x000B;

  /** Marker in the authPolicy of AEAD keys (ADR 0009): binds the purpose into the object's name. */
  public static final byte[] AEAD_POLICY_MARKER = sha256("tpmkms/tpm/aead-key/v1");

  /**
   * authPolicy of imported EC/RSA keys (TPM2_Import needs fixedTPM and fixedParent CLEAR, so
   * such a key could be duplicated by whoever satisfies its policy): SHA-256 of the 28 ASCII
   * bytes "tpmkms/tpm/no-duplication/v1". TPM2_Duplicate needs the DUP role, which only a policy
   * session whose policyDigest equals authPolicy can give. A policy session's digest starts at
   * all zeros and each policy command replaces it with SHA-256(old digest (32 bytes) || command
   * code (4) || …), an input of at least 36 bytes; PolicyAuthorize and PolicyOR start over from
   * zeros with inputs just as long. Reaching this digest therefore needs a second SHA-256
   * preimage of a 28-byte input with an input of 36 bytes or more: no session can satisfy it.
   * Everyone can recompute it, so a verifier recognizes it (KeyAttestationVerifier).
   */
  public static final byte[] NO_DUPLICATION_POLICY = sha256("tpmkms/tpm/no-duplication/v1");

  public static final int FIXED_TPM = 0x2;
  public static final int FIXED_PARENT = 0x10;
  public static final int SENSITIVE_DATA_ORIGIN = 0x20;
  public static final int USER_WITH_AUTH = 0x40;
  public static final int ADMIN_WITH_POLICY = 0x80;
  public static final int NO_DA = 0x400;
  public static final int RESTRICTED = 0x10000;
  public static final int DECRYPT = 0x20000;
  public static final int SIGN = 0x40000;

  private static final int KEY_BASE = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | NO_DA;

  /**
   * The storage root key: ECC P-256, restricted decrypt, AES-128-CFB, the
   * template {@code tpm2_createprimary -C o -G ecc256:null:aes128cfb} uses.
   */
  public static TPMT_PUBLIC srk() {
    return new TPMT_PUBLIC(TPM_ALG_ID.SHA256,
        TPMA_OBJECT.fromInt(KEY_BASE | RESTRICTED | DECRYPT), new byte[0],
        new TPMS_ECC_PARMS(new TPMT_SYM_DEF_OBJECT(TPM_ALG_ID.AES, 128, TPM_ALG_ID.CFB),
            new TPMS_NULL_ASYM_SCHEME(), TPM_ECC_CURVE.NIST_P256, new TPMS_NULL_KDF_SCHEME()),
        new TPMS_ECC_POINT(new byte[0], new byte[0]));
  }

  /** The attestation key: a restricted ECDSA P-256/SHA-256 signing primary in the endorsement hierarchy. */
  public static TPMT_PUBLIC ak() {
    return new TPMT_PUBLIC(TPM_ALG_ID.SHA256,
        TPMA_OBJECT.fromInt(KEY_BASE | RESTRICTED | SIGN), new byte[0],
        new TPMS_ECC_PARMS(TPMT_SYM_DEF_OBJECT.nullObject(), new TPMS_SIG_SCHEME_ECDSA(TPM_ALG_ID.SHA256),
            TPM_ECC_CURVE.NIST_P256, new TPMS_NULL_KDF_SCHEME()),
        new TPMS_ECC_POINT(new byte[0], new byte[0]));
  }

  /**
   * A node agent's attestation key (ADR 0038): {@link #ak()} with unique.x = SHA-256("tpmkms/node-ak/v1"),
   * so another key than the service's own AK on the same TPM — a credential made for a node's AK can
   * never be activated through the service's ActivateAttestationCredential (ADR 0037).
   */
  public static TPMT_PUBLIC nodeAk() {
    TPMT_PUBLIC t = ak();
    t.unique = new TPMS_ECC_POINT(sha256("tpmkms/node-ak/v1"), new byte[0]);
    return t;
  }

  /** A sealed data object: keyedHash without sign/decrypt; the data comes from outside. */
  public static TPMT_PUBLIC sealedData() {
    return new TPMT_PUBLIC(TPM_ALG_ID.SHA256,
        TPMA_OBJECT.fromInt(FIXED_TPM | FIXED_PARENT | USER_WITH_AUTH | NO_DA), new byte[0],
        new TPMS_KEYEDHASH_PARMS(new TPMS_NULL_SCHEME_KEYEDHASH()),
        new TPM2B_DIGEST_KEYEDHASH(new byte[0]));
  }

  /**
   * A sealed data object usable only through its policy (ADR 0034): userWithAuth CLEAR, authPolicy
   * {@code policy}; with an operator secret (PolicyAuthValue) noDA CLEAR, so wrong secrets count
   * towards the TPM's dictionary-attack lockout.
   */
  public static TPMT_PUBLIC sealedData(byte[] policy, boolean secret) {
    return new TPMT_PUBLIC(TPM_ALG_ID.SHA256,
        TPMA_OBJECT.fromInt(FIXED_TPM | FIXED_PARENT | (secret ? 0 : NO_DA)), policy.clone(),
        new TPMS_KEYEDHASH_PARMS(new TPMS_NULL_SCHEME_KEYEDHASH()),
        new TPM2B_DIGEST_KEYEDHASH(new byte[0]));
  }

  /** The object attributes a key of the algorithm gets. */
  public static int attributes(KeyAlgorithm alg) {
    return switch (alg.kind()) {
      case SIGN, MAC, SYMMETRIC_AEAD -> KEY_BASE | SIGN;
      case ASYMMETRIC_DECRYPT -> KEY_BASE | DECRYPT;
    };
  }

  /**
   * The attributes of an imported key: sensitiveDataOrigin CLEAR (the material came from outside);
   * EC/RSA keys (TPM2_Import) also have fixedTPM and fixedParent CLEAR, which TPM2_Import requires,
   * and {@link #NO_DUPLICATION_POLICY} as authPolicy; AES/HMAC keys (TPM2_Create with the data)
   * keep fixedTPM and fixedParent.
   */
  public static int importedAttributes(KeyAlgorithm alg) {
    int a = attributes(alg) & ~SENSITIVE_DATA_ORIGIN;
    return alg.isAsymmetric() ? a & ~(FIXED_TPM | FIXED_PARENT) : a;
  }

  /** The template of a generated key ({@code imported} false) or an imported one; see {@link #importedAttributes}. */
  public static TPMT_PUBLIC key(KeyAlgorithm alg, boolean imported) {
    TPMT_PUBLIC t = key(alg);
    if (!imported) return t;
    t.objectAttributes = TPMA_OBJECT.fromInt(importedAttributes(alg));
    if (alg.isAsymmetric()) t.authPolicy = NO_DUPLICATION_POLICY.clone();
    return t;
  }

  /**
   * The attributes of a DUPLICABLE key (ADR 0025): fixedTPM, fixedParent and userWithAuth CLEAR,
   * adminWithPolicy SET, so every role needs a policy session that satisfies the key's
   * {@link KeyPolicy}.
   */
  public static int duplicableAttributes(KeyAlgorithm alg) {
    return (attributes(alg) & ~(FIXED_TPM | FIXED_PARENT | USER_WITH_AUTH)) | ADMIN_WITH_POLICY;
  }

  /**
   * The attributes of a platform-bound key (ADR 0036): the generated key's with userWithAuth CLEAR and
   * adminWithPolicy SET, so every use needs a policy session that asserted the PCRs; fixedTPM and
   * fixedParent stay SET.
   */
  public static int platformBoundAttributes(KeyAlgorithm alg) {
    return (attributes(alg) & ~USER_WITH_AUTH) | ADMIN_WITH_POLICY;
  }

  /** The template of a DUPLICABLE or platform-bound key with the policy. */
  public static TPMT_PUBLIC key(KeyAlgorithm alg, KeyPolicy policy) {
    TPMT_PUBLIC t = key(alg);
    t.objectAttributes = TPMA_OBJECT.fromInt(policy.duplicable() ? duplicableAttributes(alg) : platformBoundAttributes(alg));
    t.authPolicy = policy.authPolicy();
    return t;
  }

  /** Whether a public area is a platform-bound key of the algorithm under the policy, exactly. */
  public static boolean matchesPlatformBound(KeyAlgorithm alg, TPMT_PUBLIC pub, KeyPolicy policy) {
    TPMT_PUBLIC t = key(alg, policy);
    return pub.type() == t.type() && pub.nameAlg == t.nameAlg
        && pub.objectAttributes.toInt() == t.objectAttributes.toInt()
        && MessageDigest.isEqual(nz(pub.authPolicy), nz(t.authPolicy))
        && MessageDigest.isEqual(((tss.TpmStructure) pub.parameters).toBytes(), ((tss.TpmStructure) t.parameters).toBytes());
  }

  /**
   * Whether a public area is a DUPLICABLE key of the algorithm under the policy; {@code
   * duplicatedIn} also accepts sensitiveDataOrigin CLEAR (the source TPM may have imported it).
   */
  public static boolean matchesDuplicable(KeyAlgorithm alg, TPMT_PUBLIC pub, KeyPolicy policy, boolean duplicatedIn) {
    TPMT_PUBLIC t = key(alg, policy);
    int attrs = pub.objectAttributes.toInt();
    if (duplicatedIn) attrs |= SENSITIVE_DATA_ORIGIN;
    return pub.type() == t.type() && pub.nameAlg == t.nameAlg && attrs == t.objectAttributes.toInt()
        && MessageDigest.isEqual(nz(pub.authPolicy), nz(t.authPolicy))
        && MessageDigest.isEqual(((tss.TpmStructure) pub.parameters).toBytes(), ((tss.TpmStructure) t.parameters).toBytes());
  }

  /** Attributes a foreign duplicated-in key may have besides the ones {@link #matchesForeign} requires. */
  private static final int FOREIGN_OPTIONAL = SENSITIVE_DATA_ORIGIN;

  /**
   * Whether a public area made elsewhere (tpm2_create, then tpm2_duplicate) is usable as a key of
   * the algorithm: the template's type, name algorithm and parameters (scheme included), the
   * purpose bits (sign/decrypt, never restricted), fixedTPM and fixedParent CLEAR (it was
   * duplicated), userWithAuth and noDA SET, adminWithPolicy CLEAR (tpmkms uses it and changes its auth
   * with the auth value), encryptedDuplication CLEAR (no inner wrapper is supported); its authPolicy is its
   * own and is reported, not trusted (AEAD keys never qualify: they carry the AEAD marker).
   */
  public static boolean matchesForeign(KeyAlgorithm alg, TPMT_PUBLIC pub) {
    if (alg.kind() == KeyAlgorithm.Kind.SYMMETRIC_AEAD) return false;
    TPMT_PUBLIC t = key(alg);
    // noDA required: a wrong transfer auth must not count toward the TPM's dictionary-attack lockout
    int required = (attributes(alg) & ~(FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN)) | USER_WITH_AUTH | NO_DA;
    int attrs = pub.objectAttributes.toInt();
    return pub.type() == t.type() && pub.nameAlg == t.nameAlg && (attrs & ~FOREIGN_OPTIONAL) == required
        && MessageDigest.isEqual(((tss.TpmStructure) pub.parameters).toBytes(), ((tss.TpmStructure) t.parameters).toBytes());
  }

  /** The template a key version of the algorithm is created from (and its blob is checked against). */
  public static TPMT_PUBLIC key(KeyAlgorithm alg) {
    TPMA_OBJECT attrs = TPMA_OBJECT.fromInt(attributes(alg));
    return switch (alg) {
      case EC_SIGN_P256_SHA256, EC_SIGN_P384_SHA384 -> {
        boolean p384 = alg == KeyAlgorithm.EC_SIGN_P384_SHA384;
        yield new TPMT_PUBLIC(TPM_ALG_ID.SHA256, attrs, new byte[0],
            new TPMS_ECC_PARMS(TPMT_SYM_DEF_OBJECT.nullObject(),
                new TPMS_SIG_SCHEME_ECDSA(p384 ? TPM_ALG_ID.SHA384 : TPM_ALG_ID.SHA256),
                p384 ? TPM_ECC_CURVE.NIST_P384 : TPM_ECC_CURVE.NIST_P256, new TPMS_NULL_KDF_SCHEME()),
            new TPMS_ECC_POINT(new byte[0], new byte[0]));
      }
      case RSA_SIGN_PKCS1_2048_SHA256, RSA_SIGN_PKCS1_3072_SHA256, RSA_SIGN_PKCS1_4096_SHA256 -> rsa(alg, attrs,
          new TPMS_SIG_SCHEME_RSASSA(TPM_ALG_ID.SHA256));
      case RSA_SIGN_PSS_2048_SHA256, RSA_SIGN_PSS_3072_SHA256, RSA_SIGN_PSS_4096_SHA256 -> rsa(alg, attrs,
          new TPMS_SIG_SCHEME_RSAPSS(TPM_ALG_ID.SHA256));
      case RSA_DECRYPT_OAEP_2048_SHA256, RSA_DECRYPT_OAEP_3072_SHA256, RSA_DECRYPT_OAEP_4096_SHA256 -> rsa(alg, attrs,
          new TPMS_ENC_SCHEME_OAEP(TPM_ALG_ID.SHA256));
      case HMAC_SHA256 -> new TPMT_PUBLIC(TPM_ALG_ID.SHA256, attrs, new byte[0],
          new TPMS_KEYEDHASH_PARMS(new TPMS_SCHEME_HMAC(TPM_ALG_ID.SHA256)), new TPM2B_DIGEST_KEYEDHASH(new byte[0]));
      case AES_256_GCM -> new TPMT_PUBLIC(TPM_ALG_ID.SHA256, attrs, AEAD_POLICY_MARKER.clone(),
          new TPMS_KEYEDHASH_PARMS(new TPMS_SCHEME_HMAC(TPM_ALG_ID.SHA256)), new TPM2B_DIGEST_KEYEDHASH(new byte[0]));
    };
  }

  private static TPMT_PUBLIC rsa(KeyAlgorithm alg, TPMA_OBJECT attrs, tss.tpm.TPMU_ASYM_SCHEME scheme) {
    return new TPMT_PUBLIC(TPM_ALG_ID.SHA256, attrs, new byte[0],
        new TPMS_RSA_PARMS(TPMT_SYM_DEF_OBJECT.nullObject(), scheme, alg.keyBits(), 0),
        new TPM2B_PUBLIC_KEY_RSA(new byte[0]));
  }

  /** The TPM name of a public area: nameAlg (uint16) || SHA-256(TPMT_PUBLIC). */
  public static byte[] name(byte[] tpmtPublic) {
    byte[] h = sha256(tpmtPublic);
    byte[] name = new byte[2 + h.length];
    name[0] = (byte) (NAME_ALG_SHA256 >>> 8);
    name[1] = (byte) NAME_ALG_SHA256;
    System.arraycopy(h, 0, name, 2, h.length);
    return name;
  }

  /**
   * Whether a public area (as loaded from a blob) is what the template of the
   * algorithm makes: same type, name algorithm, attributes, policy and parameters.
   */
  public static boolean matches(KeyAlgorithm alg, TPMT_PUBLIC pub) {
    return matches(alg, pub, false);
  }

  /** {@link #matches(KeyAlgorithm, TPMT_PUBLIC)} against the generated or the imported template. */
  public static boolean matches(KeyAlgorithm alg, TPMT_PUBLIC pub, boolean imported) {
    TPMT_PUBLIC t = key(alg, imported);
    return pub.type() == t.type() && pub.nameAlg == t.nameAlg
        && pub.objectAttributes.toInt() == t.objectAttributes.toInt()
        && MessageDigest.isEqual(nz(pub.authPolicy), nz(t.authPolicy))
        && MessageDigest.isEqual(((tss.TpmStructure) pub.parameters).toBytes(), ((tss.TpmStructure) t.parameters).toBytes());
  }

  private static byte[] nz(byte[] b) { return b == null ? new byte[0] : b; }

  static byte[] sha256(String s) { return sha256(s.getBytes(StandardCharsets.US_ASCII)); }

  static byte[] sha256(byte[] b) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(b);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
