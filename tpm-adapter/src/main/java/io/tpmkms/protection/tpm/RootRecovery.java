package io.tpmkms.protection.tpm;

import io.tpmkms.protection.tpm.internal.Marshal;
import io.tpmkms.protection.tpm.internal.PolicyDigests;
import io.tpmkms.protection.tpm.internal.PolicySession;
import io.tpmkms.protection.tpm.internal.Templates;
import io.tpmkms.protection.tpm.internal.TpmSession;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.ECPublicKey;
import java.security.spec.ECPoint;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
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
 * The recovery branch of the sealed root seed's policy (ADR 0034, "recovery"): an ECDSA P-256 key
 * whose private half the operator keeps offline. The seed's authPolicy is
 * {@code PolicyOR(normal, PolicySigned(recovery key, "tpmkms/root-recovery/v1"))}, so when the
 * platform changed without a re-seal (an unattended firmware or dbx update), a signature by the
 * recovery key over the TPM's fresh nonce unseals the seed once — TPM2_PolicySigned with no expiry
 * and no cpHash, each signature good for one session — and the service re-seals it to the state
 * now. The key's public area (TPMT_PUBLIC, loaded with TPM2_LoadExternal) is kept in the sealed
 * file, so recovery needs only the private key. Stateless.
 */
public final class RootRecovery {
  public static final byte[] POLICY_REF = "tpmkms/root-recovery/v1".getBytes(StandardCharsets.US_ASCII);
  private static final int P256_BYTES = 32;

  private RootRecovery() {}

  /** The public area TPM2_LoadExternal takes for an EC P-256 public key (DER SubjectPublicKeyInfo or a key). */
  public static byte[] publicArea(PublicKey key) {
    if (!(key instanceof ECPublicKey ec) || ec.getParams().getCurve().getField().getFieldSize() != 256) {
      throw new IllegalArgumentException("the root recovery key must be an EC P-256 key");
    }
    ECPoint w = ec.getW();
    TPMT_PUBLIC t = new TPMT_PUBLIC(TPM_ALG_ID.SHA256,
        TPMA_OBJECT.fromInt(Templates.SIGN | Templates.USER_WITH_AUTH), new byte[0],
        new TPMS_ECC_PARMS(TPMT_SYM_DEF_OBJECT.nullObject(), new TPMS_SIG_SCHEME_ECDSA(TPM_ALG_ID.SHA256),
            TPM_ECC_CURVE.NIST_P256, new TPMS_NULL_KDF_SCHEME()),
        new TPMS_ECC_POINT(fixed(w.getAffineX()), fixed(w.getAffineY())));
    return t.toBytes();
  }

  /** The public key of a DER SubjectPublicKeyInfo. */
  public static PublicKey publicKey(byte[] spki) {
    try {
      return KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(spki));
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException("not an EC public key (DER SubjectPublicKeyInfo)", e);
    }
  }

  /** The branch digest: PolicySigned(the key's name, {@link #POLICY_REF}) from a fresh session. */
  static byte[] branch(byte[] publicArea) {
    return PolicyDigests.signed(PolicyDigests.zero(), Templates.name(publicArea), POLICY_REF);
  }

  /** Whether the private key is the one whose public area the sealed file names. */
  static boolean matches(PrivateKey key, byte[] publicArea) {
    if (!(key instanceof ECPrivateKey ec)) return false;
    try {
      TPMT_PUBLIC pub = TPMT_PUBLIC.fromBytes(publicArea);
      TPMS_ECC_POINT p = (TPMS_ECC_POINT) pub.unique;
      var spec = ec.getParams();
      ECPoint q = multiply(spec, ec.getS());
      return Arrays.equals(fixed(q.getAffineX()), p.x) && Arrays.equals(fixed(q.getAffineY()), p.y);
    } catch (RuntimeException e) {
      return false;
    }
  }

  /**
   * Asserts the recovery branch in {@code session}: loads the public key, signs
   * H(nonceTPM || expiration 0 || cpHashA empty || policyRef) with the private key, TPM2_PolicySigned,
   * flushes the key.
   */
  static void assertRecovery(TpmSession s, PolicySession session, byte[] publicArea, PrivateKey key) {
    byte[] nonceTpm = session.nonceTpm();
    byte[] signed;
    try {
      Signature sig = Signature.getInstance("SHA256withECDSAinP1363Format");
      sig.initSign(key);
      sig.update(nonceTpm);
      sig.update(new byte[4]); // expiration 0: no time limit; the nonce makes it good for this session only
      sig.update(POLICY_REF); // cpHashA is empty
      signed = sig.sign();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot sign with the root recovery key: " + e.getMessage(), e);
    }
    byte[] r = Arrays.copyOfRange(signed, 0, P256_BYTES);
    byte[] sv = Arrays.copyOfRange(signed, P256_BYTES, 2 * P256_BYTES);
    byte[] params = new Marshal().tpm2b(nonceTpm).tpm2b(new byte[0]).tpm2b(POLICY_REF).u32(0)
        .u16(TPM_ALG_ID.ECDSA.toInt()).u16(Marshal.ALG_SHA256).tpm2b(r).tpm2b(sv).toBytes();
    int h = TpmKeyProtectionBackend.loadExternal(s, publicArea);
    try {
      session.policySigned(h, params);
    } finally {
      TpmKeyProtectionBackend.flushRaw(s, h);
    }
  }

  private static byte[] fixed(BigInteger v) {
    byte[] b = v.toByteArray();
    if (b.length == P256_BYTES) return b;
    byte[] out = new byte[P256_BYTES];
    if (b.length > P256_BYTES) {
      System.arraycopy(b, b.length - P256_BYTES, out, 0, P256_BYTES);
    } else {
      System.arraycopy(b, 0, out, P256_BYTES - b.length, b.length);
    }
    return out;
  }

  /** Q = d·G with Bouncy Castle (the JDK has no public point multiplication). */
  private static ECPoint multiply(java.security.spec.ECParameterSpec spec, BigInteger d) {
    var curve = org.bouncycastle.asn1.x9.ECNamedCurveTable.getByName("P-256");
    var q = curve.getG().multiply(d).normalize();
    return new ECPoint(q.getAffineXCoord().toBigInteger(), q.getAffineYCoord().toBigInteger());
  }
}
