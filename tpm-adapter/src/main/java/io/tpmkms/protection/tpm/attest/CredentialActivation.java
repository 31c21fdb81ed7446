package io.tpmkms.protection.tpm.attest;

import io.tpmkms.protection.tpm.internal.Marshal;
import io.tpmkms.protection.tpm.internal.ResponseCodes;
import io.tpmkms.protection.tpm.internal.SessionCrypto;
import io.tpmkms.protection.tpm.internal.TpmRcException;
import io.tpmkms.protection.tpm.internal.TpmSession;
import java.math.BigInteger;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.interfaces.ECPublicKey;
import java.security.spec.ECParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.KeyAgreement;
import javax.crypto.Mac;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import javax.crypto.spec.SecretKeySpec;

/**
 * Credential protection (TPM 2.0 Part 1 §24; Part 3 §12.6 TPM2_MakeCredential, §12.5
 * TPM2_ActivateCredential): a verifier encrypts a secret to a TPM's EK so that only that TPM can
 * recover it, and only for a key of the given name loaded in it — which proves the AK is in the
 * same TPM as the certified EK.
 *
 * <p>{@link #make} is TPM2_MakeCredential in software (§24.4-§24.5): a seed is sent to the EK
 * (RSA: OAEP with SHA-256 and label "IDENTITY\0"; ECC: ECDH with an ephemeral key and
 * KDFe(Z, "IDENTITY", ephemeral.x, EK.x)); symKey = KDFa(seed, "STORAGE", AK name, "", 128 bits);
 * encIdentity = AES-128-CFB (IV zero) of TPM2B_DIGEST(secret); HMAC key = KDFa(seed, "INTEGRITY",
 * "", "", 256 bits); credentialBlob = TPM2B_DIGEST(HMAC(encIdentity || AK name)) || encIdentity.
 * SHA-256 name algorithm and AES-CFB EKs only (the TCG default templates).
 *
 * <p>{@link #activate} is the TPM side: the EK (keyHandle) is authorized by a policy session that
 * ran TPM2_PolicySecret(TPM_RH_ENDORSEMENT) with the empty endorsement auth, the AK
 * (activateHandle) by an empty password.
 */
public final class CredentialActivation {
  private CredentialActivation() {}

  private static final SecureRandom RANDOM = new SecureRandom();
  private static final int CC_ACTIVATE_CREDENTIAL = 0x147;
  private static final int CC_POLICY_SECRET = 0x151;
  private static final int CC_START_AUTH_SESSION = 0x176;
  private static final int CC_FLUSH_CONTEXT = 0x165;
  private static final int RH_ENDORSEMENT = 0x4000000B;
  private static final int SE_POLICY = 0x01;
  private static final int MAX_SECRET = 32;
  /** The magic and version of tpm2_makecredential's output file. */
  private static final int TOOLS_MAGIC = 0xBADCC0DE;

  /**
   * TPM2_MakeCredential's output.
   *
   * @param credentialBlob the TPM2B_ID_OBJECT's contents (integrity HMAC as TPM2B, then encIdentity)
   * @param encryptedSecret the TPM2B_ENCRYPTED_SECRET's contents (the seed sent to the EK)
   */
  public record Credential(byte[] credentialBlob, byte[] encryptedSecret) {
    public Credential {
      credentialBlob = credentialBlob.clone();
      encryptedSecret = encryptedSecret.clone();
    }

    @Override public byte[] credentialBlob() { return credentialBlob.clone(); }

    @Override public byte[] encryptedSecret() { return encryptedSecret.clone(); }

    /** tpm2_makecredential's file: 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
    public byte[] toTpm2ToolsFile() {
      return new Marshal().u32(TOOLS_MAGIC).u32(1).tpm2b(credentialBlob).tpm2b(encryptedSecret).toBytes();
    }

    /** Reads what {@link #toTpm2ToolsFile} and tpm2_makecredential write. */
    public static Credential fromTpm2ToolsFile(byte[] file) {
      try {
        ByteBuffer b = ByteBuffer.wrap(file);
        if (b.getInt() != TOOLS_MAGIC) throw new IllegalArgumentException("not a tpm2-tools credential file (magic)");
        int version = b.getInt();
        if (version != 1) throw new IllegalArgumentException("tpm2-tools credential file version " + version);
        Credential c = new Credential(TpmtPublic.tpm2b(b), TpmtPublic.tpm2b(b));
        if (b.hasRemaining()) throw new IllegalArgumentException("trailing bytes in the credential file");
        return c;
      } catch (BufferUnderflowException e) {
        throw new IllegalArgumentException("the credential file is truncated", e);
      }
    }
  }

  /** Why the TPM refused to activate a credential. */
  public enum Refusal {
    /**
     * TPM_RC_INTEGRITY: the blob was made for another key name, or altered — or, for an ECC EK, made for
     * another TPM's EK (ECDH then yields another seed, which only the integrity check notices).
     */
    NOT_FOR_THIS_KEY,
    /**
     * The seed does not decrypt under this EK: made for another TPM. TPM_RC_VALUE, SIZE, ECC_POINT or
     * SCHEME; libtpms (swtpm) answers TPM_RC_FAILURE when RSA-OAEP decoding fails, so that counts too.
     */
    NOT_FOR_THIS_EK,
    /** Any other response code (authorization, handles). */
    OTHER
  }

  /** TPM2_ActivateCredential failed; {@link #refusal} classifies the response code. */
  public static final class ActivationException extends Exception {
    private final Refusal refusal;
    private final int rc;

    public ActivationException(Refusal refusal, int rc, String message) {
      super(refusal + ": " + message);
      this.refusal = refusal;
      this.rc = rc;
    }

    public Refusal refusal() { return refusal; }

    public int rc() { return rc; }
  }

  /**
   * TPM2_MakeCredential in software.
   *
   * @param ekTpmtPublic the EK's public area (TPMT_PUBLIC): RSA or ECC P-256/P-384, SHA-256 name
   *     algorithm, AES-CFB symmetric
   * @param akName the name of the key the credential is for (nameAlg || digest)
   * @param secret 1 to 32 bytes
   */
  public static Credential make(byte[] ekTpmtPublic, byte[] akName, byte[] secret) {
    if (secret.length == 0 || secret.length > MAX_SECRET) {
      throw new IllegalArgumentException("the secret has 1 to " + MAX_SECRET + " bytes, not " + secret.length);
    }
    if (akName.length != 34) throw new IllegalArgumentException("an AK name is SHA-256: 34 bytes");
    TpmtPublic ek = TpmtPublic.parse(ekTpmtPublic);
    if (ek.nameAlg() != TpmtPublic.ALG_SHA256) throw new IllegalArgumentException("EK name algorithm is not SHA-256");
    if (ek.symmetric() != TpmtPublic.ALG_AES || ek.symmetricMode() != TpmtPublic.ALG_CFB) {
      throw new IllegalArgumentException("the EK is not a storage key with AES-CFB");
    }
    byte[] seed = null;
    byte[] symKey = null;
    byte[] hmacKey = null;
    byte[] plain = null;
    try {
      byte[] encryptedSecret;
      if (ek.isRsa()) {
        seed = new byte[32];
        RANDOM.nextBytes(seed);
        encryptedSecret = rsaOaep(ek, seed);
      } else {
        byte[][] ecdh = ecdhSeed(ek);
        seed = ecdh[0];
        encryptedSecret = ecdh[1];
      }
      symKey = SessionCrypto.kdfa(seed, "STORAGE", akName, new byte[0], ek.symmetricBits());
      plain = new Marshal().tpm2b(secret).toBytes();
      Cipher c = Cipher.getInstance("AES/CFB/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(symKey, "AES"), new IvParameterSpec(new byte[16]));
      byte[] encIdentity = c.doFinal(plain);
      hmacKey = SessionCrypto.kdfa(seed, "INTEGRITY", new byte[0], new byte[0], 256);
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(hmacKey, "HmacSHA256"));
      mac.update(encIdentity);
      byte[] integrity = mac.doFinal(akName);
      byte[] blob = new Marshal().tpm2b(integrity).bytes(encIdentity).toBytes();
      return new Credential(blob, encryptedSecret);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("MakeCredential: " + e.getMessage(), e);
    } finally {
      for (byte[] b : new byte[][] {seed, symKey, hmacKey, plain}) if (b != null) Arrays.fill(b, (byte) 0);
    }
  }

  private static byte[] rsaOaep(TpmtPublic ek, byte[] seed) throws GeneralSecurityException {
    Cipher c = Cipher.getInstance("RSA/ECB/OAEPPadding");
    c.init(Cipher.ENCRYPT_MODE, ek.publicKey(), new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256,
        new PSource.PSpecified("IDENTITY\0".getBytes(StandardCharsets.US_ASCII))), RANDOM);
    return c.doFinal(seed);
  }

  /** {seed, TPMS_ECC_POINT of the ephemeral key} (Part 1 §C.6.4, ECDH with KDFe). */
  private static byte[][] ecdhSeed(TpmtPublic ek) throws GeneralSecurityException {
    ECParameterSpec curve = TpmtPublic.curve(ek.keyBitsOrCurve());
    int n = TpmtPublic.coordinateBytes(ek.keyBitsOrCurve());
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(curve, RANDOM);
    KeyPair e = g.generateKeyPair();
    KeyAgreement ka = KeyAgreement.getInstance("ECDH");
    ka.init(e.getPrivate());
    ka.doPhase(ek.publicKey(), true);
    byte[] z = ka.generateSecret();
    try {
      var q = ((ECPublicKey) e.getPublic()).getW();
      byte[] ex = fixed(q.getAffineX(), n);
      byte[] ey = fixed(q.getAffineY(), n);
      byte[] seed = SessionCrypto.kdfe(z, "IDENTITY", ex, fixed(new BigInteger(1, ek.x()), n), 256);
      return new byte[][] {seed, new Marshal().tpm2b(ex).tpm2b(ey).toBytes()};
    } finally {
      Arrays.fill(z, (byte) 0);
    }
  }

  private static byte[] fixed(BigInteger v, int n) {
    byte[] b = v.toByteArray();
    byte[] out = new byte[n];
    if (b.length >= n) System.arraycopy(b, b.length - n, out, 0, n);
    else System.arraycopy(b, 0, out, n - b.length, b.length);
    return out;
  }

  /**
   * TPM2_ActivateCredential with objects already loaded: a policy session with
   * TPM2_PolicySecret(TPM_RH_ENDORSEMENT) authorizes the EK, an empty password the AK. The session
   * is flushed whatever happens. Call under the connection's lock.
   *
   * @return the secret
   * @throws ActivationException when the TPM refuses the credential
   */
  public static byte[] activate(TpmSession s, int akHandle, int ekHandle, byte[] credentialBlob, byte[] encryptedSecret)
      throws ActivationException {
    int session = endorsementPolicySession(s);
    boolean flushed = false;
    try {
      byte[] nonce = new byte[16];
      RANDOM.nextBytes(nonce);
      Marshal auth = new Marshal().u32(Marshal.RS_PW).u16(0).u8(0).u16(0) // the AK: empty password
          .u32(session).tpm2b(nonce).u8(0).u16(0); // the EK: the policy session, not continued
      byte[] body = new Marshal().u32(akHandle).u32(ekHandle).u32(auth.size()).bytes(auth.toBytes())
          .tpm2b(credentialBlob).tpm2b(encryptedSecret).toBytes();
      byte[] r;
      try {
        r = s.raw("ActivateCredential", sessionsCommand(CC_ACTIVATE_CREDENTIAL, body));
      } catch (TpmRcException e) {
        throw refused(e.rc());
      }
      flushed = true; // continueSession CLEAR: the TPM flushed it
      ByteBuffer b = ByteBuffer.wrap(r, 10, r.length - 10);
      b.getInt(); // parameterSize
      return Marshal.tpm2b(b);
    } finally {
      if (!flushed) flushQuietly(s, session);
    }
  }

  static ActivationException refused(int rc) {
    int base = ResponseCodes.base(rc);
    Refusal r = base == ResponseCodes.INTEGRITY ? Refusal.NOT_FOR_THIS_KEY
        : base == ResponseCodes.VALUE || base == ResponseCodes.SIZE || base == ResponseCodes.ECC_POINT
            || base == ResponseCodes.SCHEME || base == ResponseCodes.FAILURE ? Refusal.NOT_FOR_THIS_EK : Refusal.OTHER;
    return new ActivationException(r, rc, "the TPM refused the credential: " + ResponseCodes.describe(rc));
  }

  /** An unsalted, unbound SHA-256 policy session that ran TPM2_PolicySecret(TPM_RH_ENDORSEMENT). */
  static int endorsementPolicySession(TpmSession s) {
    byte[] nonce = new byte[16];
    RANDOM.nextBytes(nonce);
    byte[] start = new Marshal().u32(Marshal.RH_NULL).u32(Marshal.RH_NULL).tpm2b(nonce).tpm2b(new byte[0])
        .u8(SE_POLICY).u16(TpmtPublic.ALG_NULL).u16(TpmtPublic.ALG_SHA256).toBytes();
    byte[] r = s.raw("StartAuthSession", Marshal.command(CC_START_AUTH_SESSION, start));
    int session = ByteBuffer.wrap(r, 10, 4).getInt();
    try {
      Marshal auth = new Marshal().u32(Marshal.RS_PW).u16(0).u8(0).u16(0);
      byte[] body = new Marshal().u32(RH_ENDORSEMENT).u32(session).u32(auth.size()).bytes(auth.toBytes())
          .tpm2b(new byte[0]).tpm2b(new byte[0]).tpm2b(new byte[0]).u32(0).toBytes();
      s.raw("PolicySecret", sessionsCommand(CC_POLICY_SECRET, body));
      return session;
    } catch (RuntimeException e) {
      flushQuietly(s, session);
      throw e;
    }
  }

  static byte[] sessionsCommand(int cc, byte[] body) {
    int size = 10 + body.length;
    return ByteBuffer.allocate(size).putShort((short) Marshal.ST_SESSIONS).putInt(size).putInt(cc).put(body).array();
  }

  static void flushQuietly(TpmSession s, int handle) {
    try {
      s.raw("FlushContext", Marshal.command(CC_FLUSH_CONTEXT, new Marshal().u32(handle).toBytes()));
    } catch (RuntimeException e) {
      // already gone
    }
  }
}
