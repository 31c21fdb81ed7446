package io.tpmkms.protection.tpm;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.tpm.internal.Templates;
import io.tpmkms.protection.tpm.internal.TpmPublicKeys;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.SignatureException;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Set;
import tss.tpm.TPMS_ECC_PARMS;
import tss.tpm.TPMS_RSA_PARMS;
import tss.tpm.TPMT_PUBLIC;
import tss.tpm.TPM_ALG_ID;
import tss.tpm.TPM_ECC_CURVE;

/**
 * Where a key may be duplicated to (ADR 0025): a storage key that provably lives in a TPM. The
 * proof is a TPM2_Certify of the target by an attestation key (AK) the deployment trusts
 * (configured by name: {@code tpm2_readpublic -n}, or the AK of another tpmkms); the checks, in
 * order: the target is a storage key (restricted decrypt, not sign, fixedTPM and fixedParent SET,
 * SHA-256 names, ECC P-256 or RSA-2048 with AES-128-CFB), the AK public area hashes to a trusted
 * name and is a restricted fixedTPM signing key, its signature over the TPMS_ATTEST verifies, the
 * statement is a TPM-generated CERTIFY of exactly the target's name, and its extraData equals the
 * qualifying data the caller expects (if it expects one). Files are as tpm2-tools writes them:
 * TPM2B_PUBLIC or TPMT_PUBLIC for public areas, TPMS_ATTEST, TPMT_SIGNATURE (or, for an ECC AK, the DER
 * ECDSA signature tpmkms' own KeyAttestation carries, so an import job's attestation is a target as it is).
 * Stateless.
 */
public final class DuplicationTargets {
  private DuplicationTargets() {}

  private static final int TPM_GENERATED_VALUE = 0xff544347;
  private static final int TPM_ST_ATTEST_CERTIFY = 0x8017;
  private static final int STORAGE = Templates.RESTRICTED | Templates.DECRYPT | Templates.FIXED_TPM
      | Templates.FIXED_PARENT;

  /** A verified target: its TPMT_PUBLIC and TPM name. */
  public record Target(byte[] tpmtPublic, byte[] name) {
    public Target {
      tpmtPublic = tpmtPublic.clone();
      name = name.clone();
    }

    @Override public byte[] tpmtPublic() { return tpmtPublic.clone(); }
    @Override public byte[] name() { return name.clone(); }

    @Override public String toString() { return "Target[" + HexFormat.of().formatHex(name) + "]"; }
  }

  /** TPMT_PUBLIC from a TPM2B_PUBLIC (size-prefixed, as tpm2-tools writes it) or a bare TPMT_PUBLIC. */
  public static byte[] tpmtPublic(byte[] publicArea) {
    if (publicArea == null || publicArea.length < 10) {
      throw new BackendException(Kind.INVALID_INPUT, "public area missing or too short");
    }
    int size = (publicArea[0] & 0xff) << 8 | publicArea[1] & 0xff;
    return size == publicArea.length - 2 ? Arrays.copyOfRange(publicArea, 2, publicArea.length) : publicArea.clone();
  }

  /**
   * Checks that a public area is a storage key a duplicate can be wrapped to.
   *
   * @throws BackendException INVALID_INPUT naming what is wrong
   */
  public static Target storageKey(byte[] publicArea) {
    byte[] tpmt = tpmtPublic(publicArea);
    TPMT_PUBLIC pub;
    try {
      pub = TPMT_PUBLIC.fromBytes(tpmt);
    } catch (RuntimeException e) {
      throw new BackendException(Kind.INVALID_INPUT, "the target's public area is malformed");
    }
    if (!Arrays.equals(pub.toBytes(), tpmt)) {
      throw new BackendException(Kind.INVALID_INPUT, "the target's public area has trailing or non-canonical bytes");
    }
    if (pub.nameAlg != TPM_ALG_ID.SHA256) {
      throw new BackendException(Kind.INVALID_INPUT, "the target's name algorithm is not SHA-256");
    }
    int a = pub.objectAttributes.toInt();
    if ((a & (STORAGE | Templates.SIGN)) != STORAGE) {
      throw new BackendException(Kind.INVALID_INPUT, "the target is not a TPM storage key (it needs restricted, "
          + "decrypt, fixedTPM and fixedParent SET and sign CLEAR; its attributes are 0x" + Integer.toHexString(a) + ")");
    }
    boolean ok = false;
    if (pub.parameters instanceof TPMS_ECC_PARMS ecc) {
      ok = ecc.curveID == TPM_ECC_CURVE.NIST_P256 && aes128Cfb(ecc.symmetric);
    } else if (pub.parameters instanceof TPMS_RSA_PARMS rsa) {
      ok = rsa.keyBits == 2048 && aes128Cfb(rsa.symmetric);
    }
    if (!ok) {
      throw new BackendException(Kind.INVALID_INPUT,
          "the target must be an ECC P-256 or RSA-2048 storage key with AES-128-CFB (tpm2-tools' default parent)");
    }
    return new Target(tpmt, Templates.name(tpmt));
  }

  private static boolean aes128Cfb(tss.tpm.TPMT_SYM_DEF_OBJECT s) {
    return s != null && s.algorithm == TPM_ALG_ID.AES && s.keyBits == 128 && s.mode == TPM_ALG_ID.CFB;
  }

  /**
   * Verifies the proof that {@code targetPublic} is a storage key in a TPM.
   *
   * @param attest the TPMS_ATTEST ({@code tpm2_certify -o})
   * @param signature the TPMT_SIGNATURE over it ({@code tpm2_certify -s}, tss format)
   * @param akPublic the AK's public area ({@code tpm2_createak -u} / {@code tpm2_readpublic -o})
   * @param trustedAkNames the AK names the deployment trusts
   * @param qualifyingData what extraData must be, or null not to check it (tpm2_certify 5.4 always
   *     uses the fixed 00ff55aa, so a statement from it proves residency, not freshness)
   * @throws BackendException INVALID_INPUT naming the failed check
   */
  public static Target verify(byte[] targetPublic, byte[] attest, byte[] signature, byte[] akPublic,
      Set<String> trustedAkNames, byte[] qualifyingData) {
    Target target = storageKey(targetPublic);
    if (attest == null || signature == null || akPublic == null) {
      throw new BackendException(Kind.INVALID_INPUT, "the target needs its certify statement, signature and AK public area");
    }
    byte[] akTpmt = tpmtPublic(akPublic);
    String akName = HexFormat.of().formatHex(Templates.name(akTpmt));
    if (!trustedAkNames.contains(akName)) {
      throw new BackendException(Kind.INVALID_INPUT, "the target was certified by an attestation key this deployment "
          + "does not trust (AK name " + akName + "; trusted AKs are configuration)");
    }
    TPMT_PUBLIC ak;
    try {
      ak = TPMT_PUBLIC.fromBytes(akTpmt);
    } catch (RuntimeException e) {
      throw new BackendException(Kind.INVALID_INPUT, "the AK public area is malformed");
    }
    int aa = ak.objectAttributes.toInt();
    int akRequired = Templates.RESTRICTED | Templates.SIGN | Templates.FIXED_TPM;
    if ((aa & akRequired) != akRequired) {
      throw new BackendException(Kind.INVALID_INPUT, "the AK is not a restricted, fixedTPM signing key");
    }
    if (!verifySignature(ak, attest, signature)) {
      throw new BackendException(Kind.INVALID_INPUT, "the certify signature does not verify under the AK");
    }
    try {
      ByteBuffer b = ByteBuffer.wrap(attest);
      if (b.getInt() != TPM_GENERATED_VALUE) throw invalid("the statement was not made by a TPM (magic)");
      if ((b.getShort() & 0xffff) != TPM_ST_ATTEST_CERTIFY) throw invalid("the statement is not a TPM2_Certify");
      sized(b); // qualifiedSigner
      byte[] extra = sized(b);
      if (qualifyingData != null && !MessageDigest.isEqual(extra, qualifyingData)) {
        throw invalid("the statement's qualifying data is not the expected one (replayed or made for another request)");
      }
      b.position(b.position() + 8 + 4 + 4 + 1 + 8);
      byte[] name = sized(b);
      sized(b);
      if (b.hasRemaining()) throw invalid("trailing bytes in the certify statement");
      if (!MessageDigest.isEqual(name, target.name())) {
        throw invalid("the certify statement names another key than the target public area");
      }
    } catch (BufferUnderflowException | IllegalArgumentException e) {
      throw invalid("the certify statement is malformed");
    }
    return target;
  }

  private static boolean verifySignature(TPMT_PUBLIC ak, byte[] attest, byte[] signature) {
    if (signature.length > 0 && signature[0] == 0x30 && ak.parameters instanceof TPMS_ECC_PARMS) {
      return verifyDer(ak, attest, signature); // tpmkms' own KeyAttestation carries DER ECDSA
    }
    try {
      ByteBuffer b = ByteBuffer.wrap(signature);
      int sigAlg = b.getShort() & 0xffff;
      int hash = b.getShort() & 0xffff;
      if (hash != TPM_ALG_ID.SHA256.toInt()) return false;
      PublicKey key;
      Signature s;
      byte[] sig;
      if (sigAlg == TPM_ALG_ID.ECDSA.toInt() && ak.parameters instanceof TPMS_ECC_PARMS ecc
          && ecc.curveID == TPM_ECC_CURVE.NIST_P256) {
        key = KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(
            TpmPublicKeys.spki(KeyAlgorithm.EC_SIGN_P256_SHA256, ak)));
        byte[] r = sized(b);
        byte[] sv = sized(b);
        sig = TpmPublicKeys.derEcdsa(r, sv);
        s = Signature.getInstance("SHA256withECDSA");
      } else if (sigAlg == TPM_ALG_ID.RSASSA.toInt() && ak.parameters instanceof TPMS_RSA_PARMS) {
        key = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(
            TpmPublicKeys.spki(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256, ak)));
        sig = sized(b);
        s = Signature.getInstance("SHA256withRSA");
      } else {
        return false;
      }
      if (b.hasRemaining()) return false;
      s.initVerify(key);
      s.update(attest);
      return s.verify(sig);
    } catch (SignatureException | BufferUnderflowException | IllegalArgumentException e) {
      return false;
    } catch (GeneralSecurityException | RuntimeException e) {
      return false;
    }
  }

  private static boolean verifyDer(TPMT_PUBLIC ak, byte[] attest, byte[] der) {
    try {
      PublicKey key = KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(
          TpmPublicKeys.spki(KeyAlgorithm.EC_SIGN_P256_SHA256, ak)));
      Signature s = Signature.getInstance("SHA256withECDSA");
      s.initVerify(key);
      s.update(attest);
      return s.verify(der);
    } catch (SignatureException | IllegalArgumentException e) {
      return false;
    } catch (GeneralSecurityException | RuntimeException e) {
      return false;
    }
  }

  private static byte[] sized(ByteBuffer b) {
    byte[] out = new byte[b.getShort() & 0xffff];
    b.get(out);
    return out;
  }

  private static BackendException invalid(String m) { return new BackendException(Kind.INVALID_INPUT, m); }
}
