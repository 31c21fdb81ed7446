package io.tpmkms.protection;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPrivateKeySpec;
import java.security.spec.ECPublicKeySpec;
import java.security.spec.RSAPrivateCrtKeySpec;
import java.security.spec.RSAPublicKeySpec;
import java.util.Arrays;
import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1InputStream;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.pkcs.RSAPrivateKey;
import org.bouncycastle.asn1.sec.SECObjectIdentifiers;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x9.X9ECParameters;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;
import org.bouncycastle.crypto.ec.CustomNamedCurves;
import org.bouncycastle.math.ec.ECPoint;
import org.bouncycastle.math.ec.FixedPointCombMultiplier;
import org.bouncycastle.util.BigIntegers;

/**
 * Plaintext key material on its way into a backend (the import path), checked
 * against the algorithm it is declared as. Raw 32 bytes for AES-256 and
 * HMAC-SHA256; PKCS#8 PrivateKeyInfo DER for EC (P-256, P-384) and RSA
 * (2048/3072/4096, matching the algorithm's size).
 *
 * <p>What {@link #parse} refuses, each with {@link BackendException.Kind#INVALID_INPUT}
 * and a message that names the check, never the material:
 * <ul>
 *   <li>AES_256_GCM, HMAC_SHA256: anything but exactly 32 bytes.
 *   <li>Asymmetric: input that is not one DER PrivateKeyInfo, or has bytes after it; a key of
 *       the other type (RSA declared as EC and vice versa); RSASSA-PSS-OID or other key types.
 *   <li>EC: a curve other than the algorithm's (P-256 for EC_SIGN_P256_SHA256, P-384 for
 *       EC_SIGN_P384_SHA384; any other named curve or explicit parameters are "unsupported
 *       curve"); a scalar outside [1, n-1]; an embedded public key that is not d·G.
 *   <li>RSA: a modulus of another size than the algorithm's (below 2048 bits always); a public
 *       exponent other than 65537 (the one exponent every TPM takes); multi-prime keys; primes
 *       not of half the modulus size (FIPS 186-4 B.3, and what a TPM stores), not prime, or
 *       whose CRT values are inconsistent ({@code p·q = n}, {@code d·e ≡ 1 mod lcm(p-1, q-1)},
 *       {@code dP}, {@code dQ}, {@code qInv}).
 * </ul>
 *
 * <p>Fingerprint ({@link #fingerprint()}): SHA-256 over a canonical encoding, the same for every
 * encoding of the same key: AES/HMAC the 32 raw bytes; EC the private scalar as a fixed-length
 * big-endian field element (32 bytes for P-256, 48 for P-384); RSA the modulus (keyBits/8 bytes)
 * followed by the larger of the two primes (keyBits/16 bytes), both big-endian, so that a PKCS#8
 * with p and q swapped has the same fingerprint.
 *
 * <p>Owns copies of the material and zeroes every byte array it holds on {@link #close()}; the
 * {@link BigInteger}s (RSA modulus and primes, EC scalar) and the intermediate Bouncy Castle
 * ASN.1 objects cannot be zeroed — they are immutable and become garbage. Accessors hand out
 * copies, which the caller zeroes. Never printed ({@link #toString()} names only the algorithm).
 * Not thread-safe; used by one import at a time.
 */
public final class KeyMaterial implements AutoCloseable {
  /** The only RSA public exponent accepted (TPMs take 65537; most accept nothing else). */
  public static final BigInteger RSA_EXPONENT = BigInteger.valueOf(65537);
  private static final int SYMMETRIC_LENGTH = 32;
  private static final int PRIME_CERTAINTY = 64;

  private final KeyAlgorithm algorithm;
  // symmetric
  private byte[] raw;
  // EC: fixed-length scalar and public coordinates
  private byte[] ecScalar;
  private byte[] ecX;
  private byte[] ecY;
  // RSA
  private final BigInteger modulus;
  private final BigInteger publicExponent;
  private final BigInteger primeP;
  private final BigInteger primeQ;
  private final BigInteger privateExponent;
  private byte[] largerPrime;
  private final byte[] publicKeyDer;
  private final byte[] fingerprint;
  private boolean closed;

  private KeyMaterial(KeyAlgorithm algorithm, byte[] raw, byte[] ecScalar, byte[] ecX, byte[] ecY,
      BigInteger modulus, BigInteger publicExponent, BigInteger primeP, BigInteger primeQ, BigInteger privateExponent,
      byte[] largerPrime, byte[] publicKeyDer, byte[] fingerprint) {
    this.algorithm = algorithm;
    this.raw = raw;
    this.ecScalar = ecScalar;
    this.ecX = ecX;
    this.ecY = ecY;
    this.modulus = modulus;
    this.publicExponent = publicExponent;
    this.primeP = primeP;
    this.primeQ = primeQ;
    this.privateExponent = privateExponent;
    this.largerPrime = largerPrime;
    this.publicKeyDer = publicKeyDer;
    this.fingerprint = fingerprint;
  }

  /**
   * Parses {@code encoded} as {@code algorithm}'s material. Throws
   * {@link BackendException.Kind#INVALID_INPUT} when it is not (wrong length,
   * not PKCS#8, trailing bytes, another key type, size or curve, RSA below 2048).
   * The caller still owns and zeroes {@code encoded}.
   */
  public static KeyMaterial parse(KeyAlgorithm algorithm, byte[] encoded) {
    if (algorithm == null) throw invalid("algorithm is required");
    if (encoded == null || encoded.length == 0) throw invalid("key material is empty");
    if (!algorithm.isAsymmetric()) return symmetric(algorithm, encoded);
    PrivateKeyInfo info = privateKeyInfo(encoded);
    ASN1ObjectIdentifier oid = info.getPrivateKeyAlgorithm().getAlgorithm();
    boolean isEc = X9ObjectIdentifiers.id_ecPublicKey.equals(oid);
    boolean isRsa = PKCSObjectIdentifiers.rsaEncryption.equals(oid);
    if (!isEc && !isRsa) {
      throw invalid("PKCS#8 key type " + oid.getId() + " is neither rsaEncryption nor id-ecPublicKey; "
          + algorithm + " needs " + (algorithm.isEc() ? "an EC" : "an RSA") + " key");
    }
    if (isEc && !algorithm.isEc()) throw invalid("an EC private key cannot be imported as " + algorithm);
    if (isRsa && !algorithm.isRsa()) throw invalid("an RSA private key cannot be imported as " + algorithm);
    return isEc ? ec(algorithm, info) : rsa(algorithm, info);
  }

  // --- symmetric ------------------------------------------------------------------------

  private static KeyMaterial symmetric(KeyAlgorithm algorithm, byte[] encoded) {
    if (encoded.length != SYMMETRIC_LENGTH) {
      throw invalid(algorithm + " key material must be exactly " + SYMMETRIC_LENGTH + " raw bytes, got "
          + encoded.length);
    }
    byte[] raw = encoded.clone();
    return new KeyMaterial(algorithm, raw, null, null, null, null, null, null, null, null, null, null, sha256(raw));
  }

  // --- PKCS#8 ---------------------------------------------------------------------------

  private static PrivateKeyInfo privateKeyInfo(byte[] encoded) {
    ASN1Primitive primitive;
    try (ASN1InputStream in = new ASN1InputStream(new ByteArrayInputStream(encoded), encoded.length, false)) {
      primitive = in.readObject();
      if (primitive == null) throw invalid("key material is not DER PKCS#8 (no ASN.1 object)");
      int rest = in.available();
      if (rest != 0) throw invalid("PKCS#8 key material has " + rest + " trailing bytes");
    } catch (IOException | RuntimeException e) {
      if (e instanceof BackendException be) throw be;
      throw invalid("key material is not DER PKCS#8 PrivateKeyInfo", e);
    }
    try {
      byte[] again = primitive.getEncoded("DER");
      boolean same = again.length == encoded.length;
      Arrays.fill(again, (byte) 0);
      if (!same) throw invalid("PKCS#8 key material is not DER (re-encoding changes its length)");
      return PrivateKeyInfo.getInstance(primitive);
    } catch (IOException | RuntimeException e) {
      if (e instanceof BackendException be) throw be;
      throw invalid("key material is not a PKCS#8 PrivateKeyInfo", e);
    }
  }

  // --- EC -------------------------------------------------------------------------------

  private static KeyMaterial ec(KeyAlgorithm algorithm, PrivateKeyInfo info) {
    ASN1ObjectIdentifier curve = namedCurve(info.getPrivateKeyAlgorithm());
    String wanted = algorithm == KeyAlgorithm.EC_SIGN_P384_SHA384 ? "P-384" : "P-256";
    String got;
    if (SECObjectIdentifiers.secp256r1.equals(curve)) {
      got = "P-256";
    } else if (SECObjectIdentifiers.secp384r1.equals(curve)) {
      got = "P-384";
    } else {
      throw invalid("unsupported curve " + curve.getId() + ": " + algorithm + " needs " + wanted);
    }
    if (!got.equals(wanted)) throw invalid("unsupported curve: the key is on " + got + ", " + algorithm + " needs " + wanted);
    org.bouncycastle.asn1.sec.ECPrivateKey ecKey;
    try {
      ecKey = org.bouncycastle.asn1.sec.ECPrivateKey.getInstance(info.parsePrivateKey());
    } catch (IOException | RuntimeException e) {
      throw invalid("PKCS#8 holds no valid ECPrivateKey structure", e);
    }
    org.bouncycastle.asn1.ASN1Object inner = ecKey.getParametersObject();
    if (inner != null && !curve.equals(inner)) {
      throw invalid("ECPrivateKey names another curve than the PKCS#8 algorithm identifier");
    }
    X9ECParameters x9 = CustomNamedCurves.getByName(got);
    BigInteger n = x9.getN();
    BigInteger d = ecKey.getKey();
    if (d.signum() <= 0 || d.compareTo(n) >= 0) throw invalid("EC private scalar is not in [1, n-1]");
    ECPoint q = new FixedPointCombMultiplier().multiply(x9.getG(), d).normalize();
    org.bouncycastle.asn1.ASN1BitString embedded = ecKey.getPublicKey();
    if (embedded != null) {
      ECPoint given;
      try {
        given = x9.getCurve().decodePoint(embedded.getOctets()).normalize();
      } catch (RuntimeException e) {
        throw invalid("the public key in the PKCS#8 is not a point on " + got, e);
      }
      if (!given.equals(q)) throw invalid("the public key in the PKCS#8 does not match the private scalar (not d·G)");
    }
    org.bouncycastle.asn1.ASN1BitString outer = info.getPublicKeyData(); // OneAsymmetricKey (RFC 5958) v2
    if (outer != null) {
      ECPoint given;
      try {
        given = x9.getCurve().decodePoint(outer.getOctets()).normalize();
      } catch (RuntimeException e) {
        throw invalid("the public key in the PKCS#8 is not a point on " + got, e);
      }
      if (!given.equals(q)) throw invalid("the public key in the PKCS#8 does not match the private scalar (not d·G)");
    }
    int size = (x9.getCurve().getFieldSize() + 7) / 8;
    byte[] scalar = BigIntegers.asUnsignedByteArray(size, d);
    byte[] x = BigIntegers.asUnsignedByteArray(size, q.getAffineXCoord().toBigInteger());
    byte[] y = BigIntegers.asUnsignedByteArray(size, q.getAffineYCoord().toBigInteger());
    byte[] spki;
    try {
      ECParameterSpec spec = jcaCurve(got);
      spki = KeyFactory.getInstance("EC").generatePublic(new ECPublicKeySpec(
          new java.security.spec.ECPoint(new BigInteger(1, x), new BigInteger(1, y)), spec)).getEncoded();
    } catch (GeneralSecurityException e) {
      Arrays.fill(scalar, (byte) 0);
      throw new BackendException(BackendException.Kind.INTERNAL, "cannot encode an EC public key", e);
    }
    return new KeyMaterial(algorithm, null, scalar, x, y, null, null, null, null, null, null, spki, sha256(scalar));
  }

  private static ASN1ObjectIdentifier namedCurve(AlgorithmIdentifier id) {
    ASN1Encodable params = id.getParameters();
    if (params instanceof ASN1ObjectIdentifier oid) return oid;
    throw invalid("unsupported curve: EC keys must name their curve (explicit or implicit parameters are refused)");
  }

  private static ECParameterSpec jcaCurve(String name) throws GeneralSecurityException {
    java.security.AlgorithmParameters p = java.security.AlgorithmParameters.getInstance("EC");
    p.init(new ECGenParameterSpec("P-384".equals(name) ? "secp384r1" : "secp256r1"));
    return p.getParameterSpec(ECParameterSpec.class);
  }

  // --- RSA ------------------------------------------------------------------------------

  private static KeyMaterial rsa(KeyAlgorithm algorithm, PrivateKeyInfo info) {
    RSAPrivateKey k;
    try {
      k = RSAPrivateKey.getInstance(info.parsePrivateKey());
    } catch (IOException | RuntimeException e) {
      throw invalid("PKCS#8 holds no valid RSAPrivateKey structure", e);
    }
    if (k.getVersion().signum() != 0) throw invalid("multi-prime RSA keys are not supported");
    BigInteger n = k.getModulus();
    int bits = n.bitLength();
    if (bits < 2048) throw invalid("RSA key of " + bits + " bits is below the 2048-bit minimum");
    if (bits != algorithm.keyBits()) {
      throw invalid("RSA key of " + bits + " bits cannot be imported as " + algorithm + " (needs "
          + algorithm.keyBits() + " bits)");
    }
    BigInteger e = k.getPublicExponent();
    if (!RSA_EXPONENT.equals(e)) {
      throw invalid("RSA public exponent must be 65537 (the exponent TPMs take), the key has another");
    }
    org.bouncycastle.asn1.ASN1BitString outer = info.getPublicKeyData(); // OneAsymmetricKey (RFC 5958) v2
    if (outer != null) {
      org.bouncycastle.asn1.pkcs.RSAPublicKey pub;
      try {
        pub = org.bouncycastle.asn1.pkcs.RSAPublicKey.getInstance(outer.getOctets());
      } catch (RuntimeException ex) {
        throw invalid("the public key in the PKCS#8 is not an RSA public key", ex);
      }
      if (!pub.getModulus().equals(n) || !pub.getPublicExponent().equals(e)) {
        throw invalid("the public key in the PKCS#8 does not match the private key");
      }
    }
    BigInteger p = k.getPrime1();
    BigInteger q = k.getPrime2();
    BigInteger d = k.getPrivateExponent();
    if (p.signum() <= 0 || q.signum() <= 0 || !p.multiply(q).equals(n)) {
      throw invalid("RSA key is inconsistent: p·q is not the modulus");
    }
    if (p.bitLength() != bits / 2 || q.bitLength() != bits / 2) {
      throw invalid("RSA primes must each have half the modulus size (" + bits / 2 + " bits)");
    }
    BigInteger one = BigInteger.ONE;
    BigInteger p1 = p.subtract(one);
    BigInteger q1 = q.subtract(one);
    BigInteger lcm = p1.divide(p1.gcd(q1)).multiply(q1);
    if (d.signum() <= 0 || d.compareTo(n) >= 0 || !d.multiply(e).mod(lcm).equals(one)) {
      throw invalid("RSA key is inconsistent: d·e is not 1 mod lcm(p-1, q-1)");
    }
    if (!k.getExponent1().equals(d.mod(p1)) || !k.getExponent2().equals(d.mod(q1))) {
      throw invalid("RSA key is inconsistent: CRT exponents dP, dQ do not match d");
    }
    if (!k.getCoefficient().equals(q.modInverse(p))) {
      throw invalid("RSA key is inconsistent: CRT coefficient qInv is not q^-1 mod p");
    }
    if (!p.isProbablePrime(PRIME_CERTAINTY) || !q.isProbablePrime(PRIME_CERTAINTY)) {
      throw invalid("RSA key is inconsistent: a factor of the modulus is not prime");
    }
    BigInteger larger = p.max(q);
    byte[] nBytes = BigIntegers.asUnsignedByteArray(bits / 8, n);
    byte[] prime = BigIntegers.asUnsignedByteArray(bits / 16, larger);
    byte[] canonical = new byte[nBytes.length + prime.length];
    System.arraycopy(nBytes, 0, canonical, 0, nBytes.length);
    System.arraycopy(prime, 0, canonical, nBytes.length, prime.length);
    byte[] fp = sha256(canonical);
    Arrays.fill(canonical, (byte) 0);
    byte[] spki;
    try {
      spki = KeyFactory.getInstance("RSA").generatePublic(new RSAPublicKeySpec(n, e)).getEncoded();
    } catch (GeneralSecurityException ex) {
      Arrays.fill(prime, (byte) 0);
      throw new BackendException(BackendException.Kind.INTERNAL, "cannot encode an RSA public key", ex);
    }
    return new KeyMaterial(algorithm, null, null, null, null, n, e, p, q, d, prime, spki, fp);
  }

  // --- accessors ------------------------------------------------------------------------

  public KeyAlgorithm algorithm() { return algorithm; }

  /**
   * SHA-256 over the canonical encoding of the material (see the class comment): what a
   * DESTROYED version's tombstone keeps, so that only the same material can be re-imported.
   */
  public byte[] fingerprint() {
    ensureOpen();
    return fingerprint.clone();
  }

  /** AES/HMAC: a copy of the 32 raw key bytes; the caller zeroes it. */
  public byte[] rawKey() {
    ensureOpen();
    if (raw == null) throw new IllegalStateException(algorithm + " material has no raw symmetric key");
    return raw.clone();
  }

  /** EC: the curve, "P-256" or "P-384". */
  public String ecCurve() {
    requireEc();
    return ecScalar.length == 48 ? "P-384" : "P-256";
  }

  /** EC: a copy of the private scalar d, big-endian, field-size bytes (32 or 48); the caller zeroes it. */
  public byte[] ecPrivateScalar() {
    requireEc();
    return ecScalar.clone();
  }

  /** EC: the x coordinate of Q = d·G, field-size bytes. */
  public byte[] ecPublicX() {
    requireEc();
    return ecX.clone();
  }

  /** EC: the y coordinate of Q = d·G, field-size bytes. */
  public byte[] ecPublicY() {
    requireEc();
    return ecY.clone();
  }

  /** RSA: the modulus n. */
  public BigInteger rsaModulus() {
    requireRsa();
    return modulus;
  }

  /** RSA: the public exponent (always 65537). */
  public BigInteger rsaPublicExponent() {
    requireRsa();
    return publicExponent;
  }

  /** RSA: the first prime of the PKCS#8 (p). */
  public BigInteger rsaPrimeP() {
    requireRsa();
    return primeP;
  }

  /** RSA: the second prime of the PKCS#8 (q). */
  public BigInteger rsaPrimeQ() {
    requireRsa();
    return primeQ;
  }

  /**
   * RSA: a copy of the larger prime, big-endian, exactly keyBits/16 bytes (the TPM's
   * TPM2B_PRIVATE_KEY_RSA); the caller zeroes it.
   */
  public byte[] rsaPrime() {
    requireRsa();
    return largerPrime.clone();
  }

  /**
   * EC/RSA: the private key as a JCA key (built from the checked values, not from the input
   * bytes). Its encoding is PKCS#8 DER.
   */
  public PrivateKey toJcaPrivateKey() {
    ensureOpen();
    try {
      if (algorithm.isEc()) {
        return KeyFactory.getInstance("EC").generatePrivate(
            new ECPrivateKeySpec(new BigInteger(1, ecScalar), jcaCurve(ecCurve())));
      }
      if (algorithm.isRsa()) {
        BigInteger p1 = primeP.subtract(BigInteger.ONE);
        BigInteger q1 = primeQ.subtract(BigInteger.ONE);
        return KeyFactory.getInstance("RSA").generatePrivate(new RSAPrivateCrtKeySpec(modulus, publicExponent,
            privateExponent, primeP, primeQ, privateExponent.mod(p1), privateExponent.mod(q1),
            primeQ.modInverse(primeP)));
      }
    } catch (GeneralSecurityException e) {
      throw new BackendException(BackendException.Kind.INTERNAL, "cannot build a JCA " + algorithm + " key", e);
    }
    throw new IllegalStateException(algorithm + " material is not an asymmetric key");
  }

  /**
   * EC/RSA: DER SubjectPublicKeyInfo derived from the private key (for EC, Q = d·G; a public key
   * inside the PKCS#8 was checked against it), encoded as the JDK encodes it — the same bytes the
   * backends' {@code publicKey(handle)} return.
   */
  public byte[] publicKeyDer() {
    ensureOpen();
    if (publicKeyDer == null) throw new IllegalStateException(algorithm + " material has no public key");
    return publicKeyDer.clone();
  }

  /** Zeroes every byte array held; idempotent. Accessors throw IllegalStateException afterwards. */
  @Override
  public void close() {
    closed = true;
    for (byte[] b : new byte[][] {raw, ecScalar, ecX, ecY, largerPrime}) {
      if (b != null) Arrays.fill(b, (byte) 0);
    }
  }

  @Override public String toString() { return "KeyMaterial[" + algorithm + ", hidden]"; }

  private void ensureOpen() {
    if (closed) throw new IllegalStateException("key material was closed (zeroed)");
  }

  private void requireEc() {
    ensureOpen();
    if (ecScalar == null) throw new IllegalStateException(algorithm + " material is not an EC key");
  }

  private void requireRsa() {
    ensureOpen();
    if (modulus == null) throw new IllegalStateException(algorithm + " material is not an RSA key");
  }

  private static byte[] sha256(byte[] b) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(b);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static BackendException invalid(String message) {
    return new BackendException(BackendException.Kind.INVALID_INPUT, message);
  }

  private static BackendException invalid(String message, Throwable cause) {
    // the cause may quote bytes of the input in its message: keep only its type
    return new BackendException(BackendException.Kind.INVALID_INPUT,
        message + " (" + cause.getClass().getSimpleName() + ")");
  }
}
