package io.tpmkms.protection.tpm.internal;

import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.jboss.logging.Logger;

/**
 * The one policy session a {@link TpmSession} keeps (TPM2_StartAuthSession: unbound, unsalted,
 * SHA-256, AES-128-CFB for parameter encryption) and the commands it authorizes (ADR 0025).
 *
 * <p>Each use runs the policy assertions of one branch of the object's authPolicy
 * (e.g. PolicyCommandCode(TPM2_Sign) → PolicyAuthValue → PolicyOR(all branches)) and then the
 * command with an HMAC authorization: HMAC-SHA256(key = authValue, cpHash || nonceCaller ||
 * nonceTPM || sessionAttributes), so the auth value itself never crosses the TPM bus. The
 * response HMAC is checked the same way over rpHash, so a tampered response is refused. With
 * continueSession SET the TPM resets the session's policy after each authorized command and the
 * session is reused: one StartAuthSession per connection, not per call.
 *
 * <p>Parameter encryption (ADR 0028): a command may ask for its first parameter to be sent
 * encrypted ({@link #ENCRYPT_COMMAND}, the session's decrypt attribute) and the first parameter of
 * its response to come back encrypted ({@link #ENCRYPT_RESPONSE}, the encrypt attribute); the
 * key and IV are KDFa(authValue, "CFB", newer nonce, older nonce), so only who holds the object's
 * auth value can read them — the HMAC of an AEAD key's data key, an RSA-OAEP plaintext, a new
 * auth value. The HMACs cover the parameters as sent (encrypted).
 *
 * <p>A failed command or policy assertion leaves the session in an unknown state: it is flushed
 * and the next use starts a new one. Not thread-safe: used under the connection's lock.
 */
public final class PolicySession {
  private static final Logger LOG = Logger.getLogger(PolicySession.class);
  private static final int CC_START_AUTH_SESSION = 0x176;
  private static final int SE_POLICY = 0x01;
  private static final int SE_HMAC = 0x00;
  private static final int CONTINUE_SESSION = 0x01;
  /** Send the command's first parameter (a TPM2B) encrypted: the session's decrypt attribute. */
  public static final int ENCRYPT_COMMAND = 0x20;
  /** Have the TPM encrypt the response's first parameter (a TPM2B): the session's encrypt attribute. */
  public static final int ENCRYPT_RESPONSE = 0x40;
  private static final int NONCE = 16;
  private static final SecureRandom RANDOM = new SecureRandom();

  private final TpmSession tpm;
  private int handle;
  private byte[] nonceTpm;
  private long epoch = -1;

  private final int sessionType;
  /** For a salted session: the handle and public point (x, y) of the ECC storage key the salt is sent to. */
  private final int saltKey;
  private final byte[] saltKeyX;
  private final byte[] saltKeyY;
  /** KDFa(salt, "ATH", nonceTPM, nonceCaller): empty for an unsalted session. */
  private byte[] sessionKey = new byte[0];
  /** A salted session kept for the next command too (continueSession SET); see {@link #keepOpen}. */
  private boolean keepOpen;

  /** A policy session. */
  PolicySession(TpmSession tpm) { this(tpm, SE_POLICY, 0, null, null); }

  private PolicySession(TpmSession tpm, int sessionType, int saltKey, byte[] saltKeyX, byte[] saltKeyY) {
    this.tpm = tpm;
    this.sessionType = sessionType;
    this.saltKey = saltKey;
    this.saltKeyX = saltKeyX;
    this.saltKeyY = saltKeyY;
  }

  /**
   * A one-shot HMAC session salted to an ECC P-256 storage key (ADR 0028): the salt is an ECDH
   * secret with an ephemeral key of ours (TPM2B_ENCRYPTED_SECRET = our ephemeral public point;
   * salt = KDFe(Z, "SECRET", ours.x, theirs.x)), so the session key — and with it the HMAC and
   * parameter-encryption keys of an object whose auth value is empty or known, such as the SRK —
   * is known only to us and the TPM. Each {@link #command} ends the session (continueSession CLEAR).
   */
  static PolicySession salted(TpmSession tpm, int storageKey, byte[] x, byte[] y) {
    return new PolicySession(tpm, SE_HMAC, storageKey, x.clone(), y.clone());
  }

  /**
   * A one-shot policy session salted to an ECC P-256 storage key: as {@link #salted}, for objects
   * whose authPolicy must be satisfied (the sealed root seed bound to PCRs, ADR 0034); the session
   * key encrypts the response and keys the HMAC (with the auth value after PolicyAuthValue).
   */
  static PolicySession saltedPolicy(TpmSession tpm, int storageKey, byte[] x, byte[] y) {
    return new PolicySession(tpm, SE_POLICY, storageKey, x.clone(), y.clone());
  }

  /**
   * For a salted session: whether the next commands keep it (continueSession SET, one
   * StartAuthSession for several commands); the last command must run with {@code false} so that
   * the TPM flushes it.
   */
  public PolicySession keepOpen(boolean keep) {
    this.keepOpen = keep;
    return this;
  }

  /**
   * An HMAC session (unbound, unsalted) for objects used with their auth value (userWithAuth SET):
   * the same command HMAC keyed by the auth value, no policy assertions, so no extra round trip.
   */
  static PolicySession hmac(TpmSession tpm) { return new PolicySession(tpm, SE_HMAC, 0, null, null); }

  /** The session's handle, starting a session if there is none on this connection. */
  public int handle() {
    if (handle != 0 && epoch == tpm.epoch()) return handle;
    byte[] nonceCaller = nonce();
    byte[] salt = null;
    byte[] encryptedSalt = new byte[0];
    if (saltKey != 0) {
      byte[][] ecdh = ecdhSalt(saltKeyX, saltKeyY);
      salt = ecdh[0];
      encryptedSalt = ecdh[1];
    }
    byte[] body = new Marshal().u32(saltKey != 0 ? saltKey : Marshal.RH_NULL).u32(Marshal.RH_NULL)
        .tpm2b(nonceCaller).tpm2b(encryptedSalt)
        .u8(sessionType).u16(SessionCrypto.ALG_AES).u16(SessionCrypto.AES_BITS).u16(SessionCrypto.ALG_CFB)
        .u16(Marshal.ALG_SHA256).toBytes();
    byte[] r = tpm.raw("StartAuthSession", Marshal.command(CC_START_AUTH_SESSION, body));
    ByteBuffer b = ByteBuffer.wrap(r, 10, r.length - 10);
    handle = b.getInt();
    nonceTpm = Marshal.tpm2b(b);
    epoch = tpm.epoch();
    if (salt != null) {
      sessionKey = SessionCrypto.kdfa(salt, "ATH", nonceTpm, nonceCaller, 256);
      Arrays.fill(salt, (byte) 0);
    }
    return handle;
  }

  /** Forgets the session (the connection is gone) without a TPM command. */
  void forget() {
    handle = 0;
    nonceTpm = null;
    Arrays.fill(sessionKey, (byte) 0);
    sessionKey = new byte[0];
  }

  /** Flushes the session; the next use starts a new one. */
  public void reset() {
    if (handle != 0 && epoch == tpm.epoch() && tpm.isConnected()) {
      try {
        tpm.raw("FlushContext", Marshal.command(0x165, new Marshal().u32(handle).toBytes()));
      } catch (RuntimeException e) {
        LOG.debugf("flushing the policy session: %s", e.getMessage());
      }
    }
    forget();
  }

  /** Runs a policy assertion (a command without sessions whose first handle is the policy session). */
  public void assertion(String name, int commandCode, byte[] parameters) {
    byte[] body = new Marshal().u32(handle()).bytes(parameters).toBytes();
    try {
      tpm.raw(name, Marshal.command(commandCode, body));
    } catch (RuntimeException e) {
      reset();
      throw e;
    }
  }

  public void policyCommandCode(int cc) {
    assertion("PolicyCommandCode", PolicyDigests.CC_POLICY_COMMAND_CODE, new Marshal().u32(cc).toBytes());
  }

  /** nonceTPM of the session (started if needed): what a PolicySigned authorization signs. */
  public byte[] nonceTpm() {
    handle();
    return nonceTpm.clone();
  }

  /**
   * TPM2_PolicySigned (Part 3 §23.3): {@code authObject} is a loaded public key, {@code parameters}
   * are nonceTPM, cpHashA, policyRef, expiration and the TPMT_SIGNATURE, as the TPM takes them.
   */
  public void policySigned(int authObject, byte[] parameters) {
    byte[] body = new Marshal().u32(authObject).u32(handle()).bytes(parameters).toBytes();
    try {
      tpm.raw("PolicySigned", Marshal.command(PolicyDigests.CC_POLICY_SIGNED, body));
    } catch (RuntimeException e) {
      reset();
      throw e;
    }
  }

  public void policyAuthValue() {
    assertion("PolicyAuthValue", PolicyDigests.CC_POLICY_AUTH_VALUE, new byte[0]);
  }

  public void policyOr(byte[][] branches) {
    Marshal m = new Marshal().u32(branches.length);
    for (byte[] d : branches) m.tpm2b(d);
    assertion("PolicyOR", PolicyDigests.CC_POLICY_OR, m.toBytes());
  }

  public void policyDuplicationSelect(byte[] objectName, byte[] newParentName) {
    assertion("PolicyDuplicationSelect", PolicyDigests.CC_POLICY_DUPLICATION_SELECT,
        new Marshal().tpm2b(objectName).tpm2b(newParentName).u8(1).toBytes());
  }

  /** @param ticket a TPMT_TK_VERIFIED as TPM2_VerifySignature returned it */
  public void policyAuthorize(byte[] approvedPolicy, byte[] policyRef, byte[] keySignName, byte[] ticket) {
    assertion("PolicyAuthorize", PolicyDigests.CC_POLICY_AUTHORIZE, new Marshal().tpm2b(approvedPolicy)
        .tpm2b(policyRef).tpm2b(keySignName).bytes(ticket).toBytes());
  }

  /**
   * Runs the branch {@code PolicyCommandCode(cc) → PolicyAuthValue → PolicyOR(branches)} and then
   * the command, authorized by this session with {@code authValue}.
   */
  public byte[] authValueBranch(KeyPolicy policy, int cc, String name, int[] handles, byte[][] names,
      byte[] parameters, byte[] authValue, int responseHandles, boolean passwordForSecond) {
    return authValueBranch(policy, cc, name, handles, names, parameters, authValue, responseHandles,
        passwordForSecond, 0);
  }

  /** {@link #authValueBranch} with parameter encryption: {@link #ENCRYPT_COMMAND} and/or {@link #ENCRYPT_RESPONSE}. */
  public byte[] authValueBranch(KeyPolicy policy, int cc, String name, int[] handles, byte[][] names,
      byte[] parameters, byte[] authValue, int responseHandles, boolean passwordForSecond, int encryption) {
    if (sessionType != SE_POLICY) throw new IllegalStateException("policy assertions need a policy session");
    if (!policy.allows(cc)) throw new IllegalStateException("no auth-value branch for command 0x" + Integer.toHexString(cc));
    policyCommandCode(cc);
    if (policy.assertsPcrs(cc)) PcrPolicy.assertPcrs(this, policy.binding().pcrs(), policy.binding().digest());
    policyAuthValue();
    policyOr(policy.branchArray());
    return command(name, cc, handles, names, parameters, authValue, responseHandles, passwordForSecond, encryption);
  }

  /**
   * Sends an authorized command: the first handle is authorized by this session (HMAC with
   * {@code authValue}; an empty one when the policy asserted no auth value), the second, if
   * {@code passwordForSecond}, by an empty password. Returns the response parameters.
   */
  public byte[] command(String name, int cc, int[] handles, byte[][] names, byte[] parameters, byte[] authValue,
      int responseHandles, boolean passwordForSecond) {
    return command(name, cc, handles, names, parameters, authValue, responseHandles, passwordForSecond, 0);
  }

  /**
   * {@link #command} with parameter encryption: {@code encryption} is 0 or a combination of
   * {@link #ENCRYPT_COMMAND} and {@link #ENCRYPT_RESPONSE}; both need a non-empty {@code authValue}
   * (the key of the encryption) and a TPM2B as the first parameter of the command or response.
   */
  public byte[] command(String name, int cc, int[] handles, byte[][] names, byte[] parameters, byte[] authValue,
      int responseHandles, boolean passwordForSecond, int encryption) {
    if ((encryption & ~(ENCRYPT_COMMAND | ENCRYPT_RESPONSE)) != 0) throw new IllegalArgumentException("encryption");
    int session = handle();
    boolean oneShot = saltKey != 0 && !keepOpen;
    // sessionValue = sessionKey || authValue: the HMAC key and the parameter-encryption key
    byte[] sessionValue = concat(sessionKey, authValue);
    if (encryption != 0 && sessionValue.length == 0) {
      reset(); // a policy branch may have been asserted already: the session's digest is spent
      throw new IllegalStateException("parameter encryption needs the object's auth value or a salted session");
    }
    byte[] nonceCaller = nonce();
    int attributes = (oneShot ? 0 : CONTINUE_SESSION) | encryption;
    if ((encryption & ENCRYPT_COMMAND) != 0) {
      parameters = parameters.clone();
      SessionCrypto.cfbFirstParameter(parameters, sessionValue, nonceCaller, nonceTpm, true);
    }
    byte[] cpHash = cpHash(cc, names, parameters);
    byte[] hmac = sessionValue.length == 0 ? new byte[0]
        : hmac(sessionValue, cpHash, nonceCaller, nonceTpm, new byte[] {(byte) attributes});
    Marshal auth = new Marshal().u32(session).tpm2b(nonceCaller).u8(attributes).tpm2b(hmac);
    if (passwordForSecond) auth.u32(Marshal.RS_PW).u16(0).u8(0).u16(0);
    Marshal body = new Marshal();
    for (int h : handles) body.u32(h);
    body.u32(auth.size()).bytes(auth.toBytes()).bytes(parameters);
    int size = 10 + body.size();
    byte[] cmd = ByteBuffer.allocate(size).putShort((short) Marshal.ST_SESSIONS).putInt(size).putInt(cc)
        .put(body.toBytes()).array();
    byte[] r;
    try {
      r = tpm.raw(name, cmd);
    } catch (RuntimeException e) {
      reset();
      throw e;
    } finally {
      Arrays.fill(cmd, (byte) 0);
    }
    byte[] outHandles = new byte[4 * responseHandles];
    byte[] params;
    byte[] newNonce;
    int attrs;
    byte[] responseHmac;
    try {
      ByteBuffer b = ByteBuffer.wrap(r);
      if ((b.getShort() & 0xffff) != Marshal.ST_SESSIONS) throw new IllegalArgumentException("tag");
      b.position(10);
      b.get(outHandles);
      params = new byte[b.getInt()];
      b.get(params);
      newNonce = Marshal.tpm2b(b);
      attrs = b.get() & 0xff;
      responseHmac = Marshal.tpm2b(b);
    } catch (RuntimeException e) {
      reset(); // the TPM rolled its nonce; ours is unknown now
      throw new TpmRcException(name + "(malformed response)", ResponseCodes.FAILURE);
    }
    if (sessionValue.length > 0) {
      byte[] rpHash = PolicyDigests.hash(PolicyDigests.u32(0), PolicyDigests.u32(cc), params);
      byte[] expected = hmac(sessionValue, rpHash, newNonce, nonceCaller, new byte[] {(byte) attrs});
      if (!MessageDigest.isEqual(expected, responseHmac)) {
        reset();
        throw new TpmRcException(name + "(response HMAC does not verify: response altered)", ResponseCodes.INTEGRITY);
      }
    }
    nonceTpm = newNonce;
    if ((encryption & ENCRYPT_RESPONSE) != 0) {
      try {
        SessionCrypto.cfbFirstParameter(params, sessionValue, newNonce, nonceCaller, false);
      } catch (IllegalArgumentException e) {
        reset();
        throw new TpmRcException(name + "(malformed encrypted response)", ResponseCodes.FAILURE);
      }
    }
    Arrays.fill(sessionValue, (byte) 0);
    if (oneShot) forget(); // continueSession CLEAR: the TPM flushed the session
    if (responseHandles == 0) return params;
    byte[] out = new byte[outHandles.length + params.length];
    System.arraycopy(outHandles, 0, out, 0, outHandles.length);
    System.arraycopy(params, 0, out, outHandles.length, params.length);
    return out;
  }

  static byte[] cpHash(int cc, byte[][] names, byte[] parameters) {
    MessageDigest md = SessionCrypto.sha256();
    md.update(PolicyDigests.u32(cc));
    for (byte[] n : names) md.update(n);
    md.update(parameters);
    return md.digest();
  }

  private static byte[] hmac(byte[] key, byte[]... parts) {
    Mac m = SessionCrypto.hmacSha256(key);
    for (byte[] p : parts) m.update(p);
    return m.doFinal();
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  /**
   * The salt of a session salted to an ECC P-256 key (TPM 2.0 Part 1, C.6.1): an ephemeral key pair
   * e; Z = x(e · Q); salt = KDFe(SHA-256, Z, "SECRET", Qe.x, Q.x, 256). Returns {salt,
   * TPM2B_ENCRYPTED_SECRET contents = TPMS_ECC_POINT(Qe)}.
   */
  static byte[][] ecdhSalt(byte[] x, byte[] y) {
    try {
      java.security.AlgorithmParameters params = java.security.AlgorithmParameters.getInstance("EC");
      params.init(new java.security.spec.ECGenParameterSpec("secp256r1"));
      java.security.spec.ECParameterSpec curve = params.getParameterSpec(java.security.spec.ECParameterSpec.class);
      java.security.PublicKey theirs = java.security.KeyFactory.getInstance("EC").generatePublic(
          new java.security.spec.ECPublicKeySpec(new java.security.spec.ECPoint(
              new java.math.BigInteger(1, x), new java.math.BigInteger(1, y)), curve));
      java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance("EC");
      g.initialize(curve, RANDOM);
      java.security.KeyPair e = g.generateKeyPair();
      javax.crypto.KeyAgreement ka = javax.crypto.KeyAgreement.getInstance("ECDH");
      ka.init(e.getPrivate());
      ka.doPhase(theirs, true);
      byte[] z = ka.generateSecret();
      java.security.spec.ECPoint q = ((java.security.interfaces.ECPublicKey) e.getPublic()).getW();
      byte[] ex = fixed(q.getAffineX(), 32);
      byte[] ey = fixed(q.getAffineY(), 32);
      byte[] salt = SessionCrypto.kdfe(z, "SECRET", ex, fixed(new java.math.BigInteger(1, x), 32), 256);
      Arrays.fill(z, (byte) 0);
      return new byte[][] {salt, new Marshal().tpm2b(ex).tpm2b(ey).toBytes()};
    } catch (GeneralSecurityException ex) {
      throw new IllegalStateException("ECDH salt", ex);
    }
  }

  private static byte[] fixed(java.math.BigInteger v, int n) {
    byte[] b = v.toByteArray();
    if (b.length == n) return b;
    byte[] out = new byte[n];
    if (b.length > n) System.arraycopy(b, b.length - n, out, 0, n);
    else System.arraycopy(b, 0, out, n - b.length, b.length);
    return out;
  }

  private static byte[] nonce() {
    byte[] n = new byte[NONCE];
    RANDOM.nextBytes(n);
    return n;
  }
}
