package io.tpmkms.protection.tpm;

import io.tpmkms.protection.KeyAttestation;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.tpm.internal.Templates;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import tss.tpm.TPMT_PUBLIC;
import java.security.PublicKey;
import java.security.Signature;
import java.security.SignatureException;
import java.security.spec.X509EncodedKeySpec;

/**
 * Offline verification of a {@link KeyAttestation} with the JDK alone (no TPM,
 * no TSS.Java crypto). Checks, in order: the AK's name is the hash of its public
 * area, which is a restricted signing key; the signature over the attest bytes
 * verifies under the AK public key; TPMS_ATTEST magic is TPM_GENERATED_VALUE and
 * type TPM_ST_ATTEST_CERTIFY; extraData equals the qualifying data; the
 * certified name is nameAlg || SHA-256(TPMT_PUBLIC of the key); the key's
 * attributes include fixedTPM, fixedParent and sensitiveDataOrigin.
 *
 * <p>Not checked here: that the AK belongs to a genuine TPM (EK certificate
 * chain and credential activation) — the caller's trust decision.
 *
 * <p>Stateless and thread-safe.
 */
public final class KeyAttestationVerifier {
  private KeyAttestationVerifier() {}

  static final int TPM_GENERATED_VALUE = 0xff544347;
  static final int TPM_ST_ATTEST_CERTIFY = 0x8017;
  private static final int REQUIRED = Templates.FIXED_TPM | Templates.FIXED_PARENT | Templates.SENSITIVE_DATA_ORIGIN;

  /** The statement failed a check; the message names which. */
  public static final class VerificationException extends Exception {
    public VerificationException(String message) { super(message); }
    public VerificationException(String message, Throwable cause) { super(message, cause); }
  }

  /**
   * Verifies the statement about the public area it carries, and that this
   * public area holds the expected public key.
   *
   * @param expectedSpki the key's published public key (DER SubjectPublicKeyInfo, from GetPublicKey), or
   *     null for symmetric and MAC keys, which have none
   * @throws VerificationException if any check fails
   */
  public static void verifyStatement(KeyAttestation att, byte[] qualifyingData, byte[] expectedSpki)
      throws VerificationException {
    verify(att, att.certifiedTpmPublic(), qualifyingData);
    if (expectedSpki != null) {
      byte[] spki;
      try {
        spki = spkiOf(att.certifiedTpmPublic());
      } catch (RuntimeException e) {
        throw new VerificationException("the certified public area holds no public key", e);
      }
      if (!MessageDigest.isEqual(spki, expectedSpki)) {
        throw new VerificationException("the certified key is not the key whose public key was given");
      }
    }
  }

  /** DER SubjectPublicKeyInfo of an ECC or RSA TPMT_PUBLIC. */
  public static byte[] spkiOf(byte[] tpmPublic) {
    TPMT_PUBLIC pub = TPMT_PUBLIC.fromBytes(tpmPublic);
    KeyAlgorithm alg = pub.parameters instanceof tss.tpm.TPMS_ECC_PARMS
        ? KeyAlgorithm.EC_SIGN_P256_SHA256 : KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256;
    return io.tpmkms.protection.tpm.internal.TpmPublicKeys.spki(alg, pub);
  }

  /**
   * @param keyTpmPublic the key's TPMT_PUBLIC ({@code TpmKeyProtectionBackend.tpmPublic(handle)})
   * @param qualifyingData the nonce the verifier chose
   * @throws VerificationException if any check fails
   */
  public static void verify(KeyAttestation att, byte[] keyTpmPublic, byte[] qualifyingData)
      throws VerificationException {
    if (att == null || keyTpmPublic == null) throw new VerificationException("attestation and key public area required");
    byte[] akTpmt = att.akTpmPublic();
    if (!MessageDigest.isEqual(Templates.name(akTpmt), att.akName())) {
      throw new VerificationException("AK name is not the hash of the AK public area");
    }
    int akAttrs = attributes(akTpmt);
    if ((akAttrs & (Templates.RESTRICTED | Templates.SIGN | Templates.FIXED_TPM)) 
        != (Templates.RESTRICTED | Templates.SIGN | Templates.FIXED_TPM)) {
      throw new VerificationException("AK is not a restricted, fixedTPM signing key");
    }
    byte[] attest = att.attest();
    try {
      PublicKey ak = KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(att.akPublicDer()));
      Signature s = Signature.getInstance("SHA256withECDSA");
      s.initVerify(ak);
      s.update(attest);
      boolean ok;
      try {
        ok = s.verify(att.signature());
      } catch (SignatureException e) {
        ok = false;
      }
      if (!ok) throw new VerificationException("signature over the attestation does not verify under the AK");
    } catch (GeneralSecurityException e) {
      throw new VerificationException("AK public key cannot be used", e);
    }
    try {
      ByteBuffer b = ByteBuffer.wrap(attest);
      if (b.getInt() != TPM_GENERATED_VALUE) throw new VerificationException("magic is not TPM_GENERATED_VALUE");
      if ((b.getShort() & 0xffff) != TPM_ST_ATTEST_CERTIFY) throw new VerificationException("not a certify statement");
      sized(b); // qualifiedSigner
      byte[] extra = sized(b);
      byte[] expected = qualifyingData == null ? new byte[0] : qualifyingData;
      if (!MessageDigest.isEqual(extra, expected)) {
        throw new VerificationException("extraData does not match the qualifying data (replayed or foreign statement)");
      }
      b.position(b.position() + 8 + 4 + 4 + 1 + 8); // clockInfo, firmwareVersion
      byte[] name = sized(b);
      sized(b); // qualifiedName
      if (b.hasRemaining()) throw new VerificationException("trailing bytes in the attestation");
      if (!MessageDigest.isEqual(name, Templates.name(keyTpmPublic))) {
        throw new VerificationException("certified name is not the name of the given key public area");
      }
      if (!MessageDigest.isEqual(name, att.certifiedName())) {
        throw new VerificationException("certifiedName field disagrees with the signed statement");
      }
    } catch (BufferUnderflowException | IllegalArgumentException e) {
      throw new VerificationException("malformed TPMS_ATTEST", e);
    }
    if ((attributes(keyTpmPublic) & REQUIRED) != REQUIRED) {
      throw new VerificationException("key lacks fixedTPM|fixedParent|sensitiveDataOrigin: it may be exportable or imported");
    }
  }

  /** TPMA_OBJECT of a TPMT_PUBLIC: type(2) nameAlg(2) attributes(4). */
  private static int attributes(byte[] tpmtPublic) throws VerificationException {
    if (tpmtPublic.length < 8) throw new VerificationException("public area too short");
    return ByteBuffer.wrap(tpmtPublic, 4, 4).getInt();
  }

  private static byte[] sized(ByteBuffer b) {
    byte[] out = new byte[b.getShort() & 0xffff];
    b.get(out);
    return out;
  }
}
