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
import java.util.HexFormat;

/**
 * Offline verification of a {@link KeyAttestation} with the JDK alone (no TPM,
 * no TSS.Java crypto). Checks, in order: the AK's name is the hash of its public
 * area, which is a restricted signing key; the signature over the attest bytes
 * verifies under the AK public key; TPMS_ATTEST magic is TPM_GENERATED_VALUE and
 * type TPM_ST_ATTEST_CERTIFY; extraData equals the qualifying data; the
 * certified name is nameAlg || SHA-256(TPMT_PUBLIC of the key). Then it reads
 * what the key's public area says about it ({@link Result}): generated in the
 * TPM or imported, fixedTPM, fixedParent, whether it can be duplicated.
 *
 * <p>Two families of methods: {@link #verifyResult} and
 * {@link #verifyStatementResult} accept generated and imported keys and return
 * the {@link Result}, which the caller shows or judges; {@link #verify} and
 * {@link #verifyStatement} (the original ones) also require fixedTPM, fixedParent
 * and sensitiveDataOrigin, i.e. a key generated in the TPM that cannot leave it,
 * and refuse imported keys.
 *
 * <p>Not checked here: that the AK belongs to a genuine TPM (EK certificate
 * chain and credential activation) — the caller's trust decision; and which
 * parent the key is under (the statement's qualifiedName is not checked
 * against an SRK): a key with fixedTPM CLEAR could leave with a duplicable
 * parent, tpmkms imports under the SRK, which is fixedTPM.
 *
 * <p>Stateless and thread-safe.
 */
public final class KeyAttestationVerifier {
  private KeyAttestationVerifier() {}

  static final int TPM_GENERATED_VALUE = 0xff544347;
  static final int TPM_ST_ATTEST_CERTIFY = 0x8017;

  /** Where the key's material came from, by its sensitiveDataOrigin attribute. */
  public enum Origin {
    /** sensitiveDataOrigin SET: the TPM generated the material. */
    GENERATED,
    /** sensitiveDataOrigin CLEAR: the material came from outside (TPM2_Create with data, TPM2_Import). */
    IMPORTED
  }

  /**
   * What a verified statement says about the key, read from its certified public area.
   *
   * @param duplicable false when fixedTPM is SET, or when fixedTPM is CLEAR but the authPolicy is
   *     tpmkms' impossible-duplication digest ({@link #NO_DUPLICATION_POLICY}); true otherwise
   * @param authPolicy the key's authPolicy (empty if none)
   */
  public record Result(Origin origin, boolean fixedTpm, boolean fixedParent, boolean duplicable,
      boolean restricted, boolean decrypt, boolean sign, byte[] authPolicy) {
    public Result {
      authPolicy = authPolicy.clone();
    }

    @Override public byte[] authPolicy() { return authPolicy.clone(); }

    /** Whether the key was generated in the TPM and can never leave it (what {@link #verify} requires). */
    public boolean generatedAndFixed() { return origin == Origin.GENERATED && fixedTpm && fixedParent; }

    /** One line for people, true to the attributes. */
    public String summary() {
      String from = origin == Origin.GENERATED
          ? (fixedTpm ? "generated in this TPM" : "generated in a TPM (this one, or another that duplicated it here)")
          : "imported into this TPM (material came from outside)";
      if (fixedTpm && fixedParent) {
        return from + (origin == Origin.IMPORTED
            ? "; fixedTPM, fixedParent: cannot be duplicated (it cannot leave this TPM; copies of the material may exist outside)"
            : "; fixedTPM, fixedParent: it cannot leave the TPM");
      }
      if (fixedTpm) return from + "; fixedTPM: it cannot leave the TPM";
      String policy = HexFormat.of().formatHex(authPolicy);
      if (!duplicable) {
        return from + "; fixedTPM CLEAR but duplication impossible by policy " + policy
            + " (tpmkms no-duplication digest)";
      }
      return from + "; fixedTPM CLEAR" + (fixedParent ? "" : ", fixedParent CLEAR")
          + "; its policy " + (policy.isEmpty() ? "(empty)" : policy) + " may allow duplication: it may leave the TPM";
    }

    @Override public boolean equals(Object o) {
      return o instanceof Result r && origin == r.origin && fixedTpm == r.fixedTpm && fixedParent == r.fixedParent
          && duplicable == r.duplicable && restricted == r.restricted && decrypt == r.decrypt && sign == r.sign
          && java.util.Arrays.equals(authPolicy, r.authPolicy);
    }

    @Override public int hashCode() { return java.util.Objects.hash(origin, fixedTpm, fixedParent, duplicable); }

    @Override public String toString() { return "Result[" + summary() + "]"; }
  }

  /**
   * Whether a key's public area (as certified) is a tpmkms key of {@code alg} bound to the platform
   * state {@code binding} (ADR 0036): its authPolicy is exactly the policy that asserts those PCR
   * values before every use, and userWithAuth is CLEAR, so no use is possible without them.
   * Recomputed offline from the binding; nothing from the service is trusted.
   */
  public static boolean boundTo(byte[] keyTpmPublic, io.tpmkms.protection.KeyAlgorithm alg,
      io.tpmkms.protection.PlatformBinding binding) {
    if (keyTpmPublic == null || alg == null || binding == null || !binding.resolved()) return false;
    try {
      tss.tpm.TPMT_PUBLIC pub = tss.tpm.TPMT_PUBLIC.fromBytes(keyTpmPublic);
      return Templates.matchesPlatformBound(alg, pub, io.tpmkms.protection.tpm.internal.KeyPolicy.platformBound(alg, binding));
    } catch (RuntimeException e) {
      return false;
    }
  }

  /** The authPolicy tpmkms gives imported EC/RSA keys: no policy session can satisfy it (see Templates). */
  public static byte[] noDuplicationPolicy() { return NO_DUPLICATION_POLICY.clone(); }

  private static final byte[] NO_DUPLICATION_POLICY = Templates.NO_DUPLICATION_POLICY.clone();

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
    if (att == null) throw new VerificationException("attestation and key public area required");
    // the original order: statement, attributes, then the public key
    requireGenerated(verifyResult(att, att.certifiedTpmPublic(), qualifyingData));
    checkSpki(att, expectedSpki);
  }

  /**
   * As {@link #verifyStatement}, for generated and imported keys: returns what the statement
   * says about the key instead of requiring a generated one.
   *
   * @throws VerificationException if any check fails
   */
  public static Result verifyStatementResult(KeyAttestation att, byte[] qualifyingData, byte[] expectedSpki)
      throws VerificationException {
    if (att == null) throw new VerificationException("attestation and key public area required");
    Result result = verifyResult(att, att.certifiedTpmPublic(), qualifyingData);
    checkSpki(att, expectedSpki);
    return result;
  }

  private static void checkSpki(KeyAttestation att, byte[] expectedSpki) throws VerificationException {
    if (expectedSpki == null) return;
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
    requireGenerated(verifyResult(att, keyTpmPublic, qualifyingData));
  }

  private static void requireGenerated(Result r) throws VerificationException {
    if (!r.generatedAndFixed()) {
      throw new VerificationException(
          "key lacks fixedTPM|fixedParent|sensitiveDataOrigin: it may be exportable or imported (" + r.summary() + ")");
    }
  }

  /**
   * As {@link #verify}, for generated and imported keys: every check but the attribute
   * requirement, and returns what the key's public area says.
   *
   * @throws VerificationException if any check fails
   */
  public static Result verifyResult(KeyAttestation att, byte[] keyTpmPublic, byte[] qualifyingData)
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
    return readResult(keyTpmPublic);
  }

  private static Result readResult(byte[] keyTpmPublic) throws VerificationException {
    int a = attributes(keyTpmPublic);
    byte[] policy;
    try {
      ByteBuffer b = ByteBuffer.wrap(keyTpmPublic, 8, keyTpmPublic.length - 8);
      policy = sized(b);
    } catch (BufferUnderflowException | IllegalArgumentException e) {
      throw new VerificationException("malformed key public area", e);
    }
    boolean fixedTpm = (a & Templates.FIXED_TPM) != 0;
    boolean fixedParent = (a & Templates.FIXED_PARENT) != 0;
    boolean duplicable = !fixedTpm && !MessageDigest.isEqual(policy, NO_DUPLICATION_POLICY);
    return new Result((a & Templates.SENSITIVE_DATA_ORIGIN) != 0 ? Origin.GENERATED : Origin.IMPORTED,
        fixedTpm, fixedParent, duplicable, (a & Templates.RESTRICTED) != 0, (a & Templates.DECRYPT) != 0,
        (a & Templates.SIGN) != 0, policy);
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
