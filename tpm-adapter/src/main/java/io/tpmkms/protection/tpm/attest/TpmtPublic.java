package io.tpmkms.protection.tpm.attest;

import java.math.BigInteger;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.security.AlgorithmParameters;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import java.security.spec.RSAPublicKeySpec;

/**
 * The parts of an RSA or ECC TPMT_PUBLIC (TPM 2.0 Part 2 §12.2.4) the attestation checks need,
 * parsed by hand from untrusted bytes: every size is bounded by the input, trailing bytes are
 * refused. Failures are {@link IllegalArgumentException}s.
 *
 * @param symmetric the symmetric algorithm of a storage key (TPM_ALG_NULL for signing keys)
 * @param scheme the signing or encryption scheme (TPM_ALG_NULL: none fixed)
 * @param schemeHash the scheme's hash algorithm, 0 when the scheme is NULL
 * @param rsaModulus the RSA modulus, or null; {@code x}, {@code y} the ECC point, or null
 */
public record TpmtPublic(int type, int nameAlg, int attributes, byte[] authPolicy, int symmetric, int symmetricBits,
    int symmetricMode, int scheme, int schemeHash, int keyBitsOrCurve, long rsaExponent, byte[] rsaModulus, byte[] x,
    byte[] y) {
  public static final int ALG_RSA = 0x0001;
  public static final int ALG_ECC = 0x0023;
  public static final int ALG_NULL = 0x0010;
  public static final int ALG_SHA256 = 0x000B;
  public static final int ALG_AES = 0x0006;
  public static final int ALG_CFB = 0x0043;
  public static final int ALG_RSASSA = 0x0014;
  public static final int ALG_RSAPSS = 0x0016;
  public static final int ALG_ECDSA = 0x0018;
  public static final int ALG_ECDAA = 0x001A;
  public static final int CURVE_P256 = 0x0003;
  public static final int CURVE_P384 = 0x0004;

  public static TpmtPublic parse(byte[] tpmtPublic) {
    try {
      ByteBuffer b = ByteBuffer.wrap(tpmtPublic);
      int type = u16(b);
      int nameAlg = u16(b);
      int attributes = b.getInt();
      byte[] policy = tpm2b(b);
      int sym = u16(b);
      int symBits = 0;
      int symMode = 0;
      if (sym != ALG_NULL) {
        symBits = u16(b);
        symMode = u16(b);
      }
      int scheme = u16(b);
      int schemeHash = 0;
      if (scheme != ALG_NULL) {
        schemeHash = u16(b);
        if (scheme == ALG_ECDAA) u16(b); // count
      }
      TpmtPublic p;
      if (type == ALG_RSA) {
        int keyBits = u16(b);
        long exponent = Integer.toUnsignedLong(b.getInt());
        byte[] n = tpm2b(b);
        p = new TpmtPublic(type, nameAlg, attributes, policy, sym, symBits, symMode, scheme, schemeHash, keyBits,
            exponent == 0 ? 65537 : exponent, n, null, null);
      } else if (type == ALG_ECC) {
        int curve = u16(b);
        if (u16(b) != ALG_NULL) u16(b); // kdf scheme and its hash
        byte[] x = tpm2b(b);
        byte[] y = tpm2b(b);
        p = new TpmtPublic(type, nameAlg, attributes, policy, sym, symBits, symMode, scheme, schemeHash, curve, 0, null,
            x, y);
      } else {
        throw new IllegalArgumentException("not an RSA or ECC public area (type 0x" + Integer.toHexString(type) + ")");
      }
      if (b.hasRemaining()) throw new IllegalArgumentException("trailing bytes after the public area");
      return p;
    } catch (BufferUnderflowException | NullPointerException e) {
      throw new IllegalArgumentException("the public area is truncated", e);
    }
  }

  /** A TPM2B_PUBLIC (as tpm2_readpublic -o and tpm2_createak -u write it) without its size. */
  public static byte[] fromTpm2b(byte[] tpm2bPublic) {
    if (tpm2bPublic.length < 2) throw new IllegalArgumentException("TPM2B_PUBLIC truncated");
    int n = ((tpm2bPublic[0] & 0xff) << 8) | (tpm2bPublic[1] & 0xff);
    if (n != tpm2bPublic.length - 2) throw new IllegalArgumentException("TPM2B_PUBLIC size " + n + " of " + tpm2bPublic.length);
    return java.util.Arrays.copyOfRange(tpm2bPublic, 2, tpm2bPublic.length);
  }

  public boolean isRsa() { return type == ALG_RSA; }

  public boolean has(int attributeBits) { return (attributes & attributeBits) == attributeBits; }

  /** The JCA public key; P-256 and P-384 curves only. */
  public PublicKey publicKey() {
    try {
      if (type == ALG_RSA) {
        return KeyFactory.getInstance("RSA").generatePublic(
            new RSAPublicKeySpec(new BigInteger(1, rsaModulus), BigInteger.valueOf(rsaExponent)));
      }
      return KeyFactory.getInstance("EC").generatePublic(
          new ECPublicKeySpec(new ECPoint(new BigInteger(1, x), new BigInteger(1, y)), curve(keyBitsOrCurve)));
    } catch (GeneralSecurityException | RuntimeException e) {
      throw new IllegalArgumentException("the public area's key is not usable: " + e.getMessage(), e);
    }
  }

  static ECParameterSpec curve(int curveId) throws GeneralSecurityException {
    String name = switch (curveId) {
      case CURVE_P256 -> "secp256r1";
      case CURVE_P384 -> "secp384r1";
      default -> throw new IllegalArgumentException("unsupported curve 0x" + Integer.toHexString(curveId));
    };
    AlgorithmParameters params = AlgorithmParameters.getInstance("EC");
    params.init(new ECGenParameterSpec(name));
    return params.getParameterSpec(ECParameterSpec.class);
  }

  /** The byte length of a coordinate on the curve. */
  static int coordinateBytes(int curveId) { return curveId == CURVE_P384 ? 48 : 32; }

  private static int u16(ByteBuffer b) { return b.getShort() & 0xffff; }

  static byte[] tpm2b(ByteBuffer b) {
    int n = b.getShort() & 0xffff;
    if (n > b.remaining()) throw new IllegalArgumentException("a size field of " + n + " past the end");
    byte[] v = new byte[n];
    b.get(v);
    return v;
  }
}
