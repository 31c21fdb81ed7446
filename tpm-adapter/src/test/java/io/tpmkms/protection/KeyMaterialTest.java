package io.tpmkms.protection;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.BackendException.Kind;
import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.RSAPrivateCrtKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.RSAKeyGenParameterSpec;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.bouncycastle.asn1.DERBitString;
import org.bouncycastle.asn1.DERNull;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.pkcs.RSAPrivateKey;
import org.bouncycastle.asn1.sec.SECObjectIdentifiers;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x9.X962Parameters;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;
import org.bouncycastle.crypto.ec.CustomNamedCurves;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.util.BigIntegers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/** KeyMaterial: what it accepts, each refusal with INVALID_INPUT, fingerprints, accessors, zeroing. */
class KeyMaterialTest {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Map<String, KeyPair> PAIRS = new ConcurrentHashMap<>();

  // --- symmetric ------------------------------------------------------------------------

  @ParameterizedTest
  @EnumSource(value = KeyAlgorithm.class, names = {"AES_256_GCM", "HMAC_SHA256"})
  void symmetric_32Bytes_isAccepted_fingerprintIsSha256OfTheKey(KeyAlgorithm alg) throws Exception {
    byte[] key = random(32);
    try (KeyMaterial m = KeyMaterial.parse(alg, key)) {
      assertEquals(alg, m.algorithm());
      assertArrayEquals(key, m.rawKey());
      assertArrayEquals(MessageDigest.getInstance("SHA-256").digest(key), m.fingerprint());
      assertFalse(m.toString().contains(HexFormat.of().formatHex(key)));
      assertThrows(IllegalStateException.class, m::publicKeyDer);
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 16, 31, 33, 64})
  void symmetric_otherLengths_areInvalidInput(int n) {
    BackendException e = refused(KeyAlgorithm.AES_256_GCM, new byte[n]);
    assertTrue(e.getMessage().contains(n == 0 ? "empty" : "exactly 32"), e.getMessage());
    refused(KeyAlgorithm.HMAC_SHA256, new byte[n]);
  }

  @Test
  void close_zeroesEveryHeldArray_andAccessorsRefuseAfterwards() throws Exception {
    KeyMaterial sym = KeyMaterial.parse(KeyAlgorithm.HMAC_SHA256, random(32));
    KeyMaterial ec = KeyMaterial.parse(KeyAlgorithm.EC_SIGN_P256_SHA256, pair("EC256").getPrivate().getEncoded());
    KeyMaterial rsa = KeyMaterial.parse(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256,
        pair("RSA2048").getPrivate().getEncoded());
    for (KeyMaterial m : new KeyMaterial[] {sym, ec, rsa}) {
      m.close();
      m.close(); // idempotent
      for (String f : new String[] {"raw", "ecScalar", "ecX", "ecY", "largerPrime"}) {
        var field = KeyMaterial.class.getDeclaredField(f);
        field.setAccessible(true);
        byte[] b = (byte[]) field.get(m);
        if (b != null) assertTrue(Arrays.equals(new byte[b.length], b), f + " not zeroed");
      }
      assertThrows(IllegalStateException.class, m::fingerprint);
    }
    assertThrows(IllegalStateException.class, sym::rawKey);
    assertThrows(IllegalStateException.class, ec::ecPrivateScalar);
    assertThrows(IllegalStateException.class, rsa::rsaPrime);
  }

  // --- PKCS#8 framing and key type -------------------------------------------------------

  @Test
  void pkcs8_withTrailingBytes_isInvalidInput() {
    byte[] der = pair("EC256").getPrivate().getEncoded();
    byte[] longer = Arrays.copyOf(der, der.length + 1);
    assertTrue(refused(KeyAlgorithm.EC_SIGN_P256_SHA256, longer).getMessage().contains("trailing"));
    byte[] rsa = pair("RSA2048").getPrivate().getEncoded();
    byte[] rsaLonger = Arrays.copyOf(rsa, rsa.length + 7);
    assertTrue(refused(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256, rsaLonger).getMessage().contains("trailing"));
  }

  @Test
  void garbageAndTruncatedDer_areInvalidInput() {
    refused(KeyAlgorithm.EC_SIGN_P256_SHA256, random(100));
    byte[] der = pair("EC256").getPrivate().getEncoded();
    refused(KeyAlgorithm.EC_SIGN_P256_SHA256, Arrays.copyOf(der, der.length - 1));
    refused(KeyAlgorithm.RSA_SIGN_PSS_2048_SHA256, new byte[] {0x30, 0x00});
  }

  @Test
  void rsaDeclaredAsEc_andEcDeclaredAsRsa_areInvalidInput() {
    BackendException e = refused(KeyAlgorithm.EC_SIGN_P256_SHA256, pair("RSA2048").getPrivate().getEncoded());
    assertTrue(e.getMessage().contains("RSA private key cannot be imported as EC_SIGN_P256_SHA256"), e.getMessage());
    e = refused(KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256, pair("EC256").getPrivate().getEncoded());
    assertTrue(e.getMessage().contains("EC private key cannot be imported"), e.getMessage());
  }

  @Test
  void symmetricKeyDeclaredAsAsymmetric_isInvalidInput() {
    refused(KeyAlgorithm.EC_SIGN_P256_SHA256, random(32));
  }

  // --- EC -------------------------------------------------------------------------------

  @Test
  void ec_p256AndP384_areAccepted_publicKeyEqualsTheJcaOne_scalarSignsVerifiably() throws Exception {
    for (KeyAlgorithm alg : new KeyAlgorithm[] {KeyAlgorithm.EC_SIGN_P256_SHA256, KeyAlgorithm.EC_SIGN_P384_SHA384}) {
      KeyPair p = pair("EC" + alg.keyBits());
      try (KeyMaterial m = KeyMaterial.parse(alg, p.getPrivate().getEncoded())) {
        int size = alg.keyBits() / 8;
        assertEquals(alg.keyBits() == 384 ? "P-384" : "P-256", m.ecCurve());
        byte[] d = m.ecPrivateScalar();
        assertEquals(size, d.length);
        assertEquals(((ECPrivateKey) p.getPrivate()).getS(), new BigInteger(1, d));
        assertArrayEquals(MessageDigest.getInstance("SHA-256").digest(d), m.fingerprint(), "fingerprint = H(scalar)");
        assertArrayEquals(p.getPublic().getEncoded(), m.publicKeyDer());
        assertEquals(size, m.ecPublicX().length);
        assertEquals(size, m.ecPublicY().length);
        Signature s = Signature.getInstance(alg.keyBits() == 384 ? "SHA384withECDSA" : "SHA256withECDSA");
        s.initSign(m.toJcaPrivateKey());
        s.update(new byte[] {1, 2, 3});
        byte[] sig = s.sign();
        s.initVerify(p.getPublic());
        s.update(new byte[] {1, 2, 3});
        assertTrue(s.verify(sig));
      }
    }
  }

  @Test
  void ec_otherCurveOfOurs_isUnsupportedCurve() {
    BackendException e = refused(KeyAlgorithm.EC_SIGN_P256_SHA256, pair("EC384").getPrivate().getEncoded());
    assertTrue(e.getMessage().contains("unsupported curve"), e.getMessage());
    e = refused(KeyAlgorithm.EC_SIGN_P384_SHA384, pair("EC256").getPrivate().getEncoded());
    assertTrue(e.getMessage().contains("unsupported curve"), e.getMessage());
  }

  @Test
  void ec_foreignCurves_p521AndSecp256k1_areUnsupportedCurve() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp521r1"));
    BackendException e = refused(KeyAlgorithm.EC_SIGN_P256_SHA256, g.generateKeyPair().getPrivate().getEncoded());
    assertTrue(e.getMessage().contains("unsupported curve"), e.getMessage());
    KeyPairGenerator k1 = KeyPairGenerator.getInstance("EC", new BouncyCastleProvider());
    k1.initialize(new ECGenParameterSpec("secp256k1"));
    e = refused(KeyAlgorithm.EC_SIGN_P256_SHA256, k1.generateKeyPair().getPrivate().getEncoded());
    assertTrue(e.getMessage().contains("unsupported curve"), e.getMessage());
  }

  @Test
  void ec_explicitCurveParameters_areUnsupportedCurve() throws Exception {
    BackendException e = refused(KeyAlgorithm.EC_SIGN_P256_SHA256, ecPkcs8(
        new AlgorithmIdentifier(X9ObjectIdentifiers.id_ecPublicKey, new X962Parameters(CustomNamedCurves.getByName("P-256"))),
        BigInteger.TEN, null));
    assertTrue(e.getMessage().contains("unsupported curve"), e.getMessage());
  }

  @Test
  void ec_scalarOutOfRange_isInvalidInput() throws Exception {
    BigInteger n = CustomNamedCurves.getByName("P-256").getN();
    for (BigInteger d : new BigInteger[] {BigInteger.ZERO, n, n.add(BigInteger.ONE)}) {
      BackendException e = refused(KeyAlgorithm.EC_SIGN_P256_SHA256, ecPkcs8(p256(), d, null));
      assertTrue(e.getMessage().contains("[1, n-1]"), e.getMessage());
    }
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.EC_SIGN_P256_SHA256,
        ecPkcs8(p256(), n.subtract(BigInteger.ONE), null))) {
      assertEquals(32, m.ecPrivateScalar().length);
    }
  }

  @Test
  void ec_embeddedPublicKey_mustBeDTimesG() throws Exception {
    var x9 = CustomNamedCurves.getByName("P-256");
    BigInteger d = new BigInteger(250, RANDOM).add(BigInteger.ONE);
    byte[] right = x9.getG().multiply(d).normalize().getEncoded(false);
    byte[] wrong = x9.getG().multiply(d.add(BigInteger.ONE)).normalize().getEncoded(false);
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.EC_SIGN_P256_SHA256, ecPkcs8(p256(), d, right))) {
      assertEquals(d, new BigInteger(1, m.ecPrivateScalar()));
    }
    BackendException e = refused(KeyAlgorithm.EC_SIGN_P256_SHA256, ecPkcs8(p256(), d, wrong));
    assertTrue(e.getMessage().contains("does not match the private scalar"), e.getMessage());
    byte[] offCurve = right.clone();
    offCurve[offCurve.length - 1] ^= 1;
    refused(KeyAlgorithm.EC_SIGN_P256_SHA256, ecPkcs8(p256(), d, offCurve));
  }

  @Test
  void oneAsymmetricKeyV2_outerPublicKey_mustMatch() throws Exception {
    var x9 = CustomNamedCurves.getByName("P-256");
    BigInteger d = new BigInteger(250, RANDOM).add(BigInteger.ONE);
    var ec = new org.bouncycastle.asn1.sec.ECPrivateKey(256, d, null);
    byte[] right = x9.getG().multiply(d).normalize().getEncoded(false);
    byte[] wrong = x9.getG().multiply(d.add(BigInteger.ONE)).normalize().getEncoded(false);
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.EC_SIGN_P256_SHA256,
        new PrivateKeyInfo(p256(), ec, null, right).getEncoded("DER"))) {
      assertEquals(d, new BigInteger(1, m.ecPrivateScalar()));
    }
    BackendException e = refused(KeyAlgorithm.EC_SIGN_P256_SHA256, new PrivateKeyInfo(p256(), ec, null, wrong).getEncoded("DER"));
    assertTrue(e.getMessage().contains("does not match"), e.getMessage());
    RSAPrivateCrtKey k = (RSAPrivateCrtKey) pair("RSA2048").getPrivate();
    var rsa = new RSAPrivateKey(k.getModulus(), k.getPublicExponent(), k.getPrivateExponent(), k.getPrimeP(),
        k.getPrimeQ(), k.getPrimeExponentP(), k.getPrimeExponentQ(), k.getCrtCoefficient());
    byte[] otherPub = new org.bouncycastle.asn1.pkcs.RSAPublicKey(k.getModulus().add(BigInteger.TWO),
        k.getPublicExponent()).getEncoded("DER");
    refused(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256, new PrivateKeyInfo(
        new AlgorithmIdentifier(PKCSObjectIdentifiers.rsaEncryption, DERNull.INSTANCE), rsa, null, otherPub).getEncoded("DER"));
  }

  // --- RSA ------------------------------------------------------------------------------

  @Test
  void rsa_2048_isAccepted_accessorsAndFingerprint() throws Exception {
    KeyPair p = pair("RSA2048");
    RSAPrivateCrtKey k = (RSAPrivateCrtKey) p.getPrivate();
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.RSA_SIGN_PSS_2048_SHA256, k.getEncoded())) {
      assertEquals(k.getModulus(), m.rsaModulus());
      assertEquals(BigInteger.valueOf(65537), m.rsaPublicExponent());
      assertEquals(k.getPrimeP(), m.rsaPrimeP());
      assertEquals(k.getPrimeQ(), m.rsaPrimeQ());
      byte[] prime = m.rsaPrime();
      assertEquals(128, prime.length);
      assertEquals(k.getPrimeP().max(k.getPrimeQ()), new BigInteger(1, prime));
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      sha.update(BigIntegers.asUnsignedByteArray(256, k.getModulus()));
      sha.update(prime);
      assertArrayEquals(sha.digest(), m.fingerprint(), "fingerprint = H(n || larger prime)");
      assertArrayEquals(p.getPublic().getEncoded(), m.publicKeyDer());
      assertEquals(k.getPrivateExponent(), ((RSAPrivateCrtKey) m.toJcaPrivateKey()).getPrivateExponent());
    }
  }

  @Test
  void rsa_primesSwapped_sameFingerprint() throws Exception {
    RSAPrivateCrtKey k = (RSAPrivateCrtKey) pair("RSA2048").getPrivate();
    byte[] swapped = rsaPkcs8(k.getModulus(), k.getPublicExponent(), k.getPrivateExponent(), k.getPrimeQ(),
        k.getPrimeP(), k.getPrimeExponentQ(), k.getPrimeExponentP(), k.getPrimeP().modInverse(k.getPrimeQ()));
    try (KeyMaterial a = KeyMaterial.parse(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256, k.getEncoded());
        KeyMaterial b = KeyMaterial.parse(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256, swapped)) {
      assertArrayEquals(a.fingerprint(), b.fingerprint());
    }
  }

  @Test
  void rsa_sizeMustEqualTheAlgorithms() {
    BackendException e = refused(KeyAlgorithm.RSA_SIGN_PKCS1_3072_SHA256, pair("RSA2048").getPrivate().getEncoded());
    assertTrue(e.getMessage().contains("needs 3072 bits"), e.getMessage());
    refused(KeyAlgorithm.RSA_SIGN_PKCS1_4096_SHA256, pair("RSA2048").getPrivate().getEncoded());
    refused(KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256, pair("RSA3072").getPrivate().getEncoded());
  }

  @Test
  void rsa_below2048_isInvalidInput() {
    BackendException e = refused(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256, pair("RSA1024").getPrivate().getEncoded());
    assertTrue(e.getMessage().contains("below the 2048-bit minimum"), e.getMessage());
  }

  @Test
  void rsa_exponentOtherThan65537_isInvalidInput() {
    BackendException e = refused(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256, pair("RSA2048e3").getPrivate().getEncoded());
    assertTrue(e.getMessage().contains("65537"), e.getMessage());
  }

  @Test
  void rsa_inconsistentCrtValues_areInvalidInput() {
    RSAPrivateCrtKey k = (RSAPrivateCrtKey) pair("RSA2048").getPrivate();
    BigInteger n = k.getModulus();
    BigInteger e = k.getPublicExponent();
    BigInteger d = k.getPrivateExponent();
    BigInteger p = k.getPrimeP();
    BigInteger q = k.getPrimeQ();
    BigInteger dp = k.getPrimeExponentP();
    BigInteger dq = k.getPrimeExponentQ();
    BigInteger qi = k.getCrtCoefficient();
    BigInteger two = BigInteger.TWO;
    String[][] cases = {
        {"p·q is not the modulus"}, {"d·e"}, {"dP, dQ"}, {"dP, dQ"}, {"qInv"}, {"p·q is not the modulus"}};
    byte[][] bad = {
        rsaPkcs8(n, e, d, p.nextProbablePrime(), q, dp, dq, qi),
        rsaPkcs8(n, e, d.add(two), p, q, dp, dq, qi),
        rsaPkcs8(n, e, d, p, q, dp.add(BigInteger.ONE), dq, qi),
        rsaPkcs8(n, e, d, p, q, dp, dq.add(BigInteger.ONE), qi),
        rsaPkcs8(n, e, d, p, q, dp, dq, qi.add(BigInteger.ONE)),
        rsaPkcs8(n.add(two), e, d, p, q, dp, dq, qi)};
    for (int i = 0; i < bad.length; i++) {
      BackendException ex = refused(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256, bad[i]);
      assertTrue(ex.getMessage().contains(cases[i][0]), i + ": " + ex.getMessage());
    }
    // and the untouched values pass, built the same way
    try (KeyMaterial ok = KeyMaterial.parse(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256, rsaPkcs8(n, e, d, p, q, dp, dq, qi))) {
      assertEquals(n, ok.rsaModulus());
    }
  }

  @Test
  void rsa_unbalancedPrimes_areInvalidInput() {
    BigInteger p = BigInteger.probablePrime(1000, RANDOM);
    BigInteger q;
    BigInteger n;
    do {
      q = BigInteger.probablePrime(1048, RANDOM);
      n = p.multiply(q);
    } while (n.bitLength() != 2048 || !p.subtract(BigInteger.ONE).gcd(BigInteger.valueOf(65537)).equals(BigInteger.ONE)
        || !q.subtract(BigInteger.ONE).gcd(BigInteger.valueOf(65537)).equals(BigInteger.ONE));
    BigInteger e = BigInteger.valueOf(65537);
    BigInteger p1 = p.subtract(BigInteger.ONE);
    BigInteger q1 = q.subtract(BigInteger.ONE);
    BigInteger d = e.modInverse(p1.divide(p1.gcd(q1)).multiply(q1));
    BackendException ex = refused(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256,
        rsaPkcs8(n, e, d, p, q, d.mod(p1), d.mod(q1), q.modInverse(p)));
    assertTrue(ex.getMessage().contains("half the modulus size"), ex.getMessage());
  }

  @Test
  void messages_neverHoldTheMaterial() {
    byte[] key = random(33);
    BackendException e = refused(KeyAlgorithm.AES_256_GCM, key);
    assertFalse(e.getMessage().toLowerCase().contains(HexFormat.of().formatHex(key, 0, 8)));
    byte[] der = pair("EC256").getPrivate().getEncoded();
    byte[] longer = Arrays.copyOf(der, der.length + 3);
    e = refused(KeyAlgorithm.EC_SIGN_P256_SHA256, longer);
    assertFalse(e.getMessage().toLowerCase().contains(HexFormat.of().formatHex(der, der.length - 8, der.length)));
  }

  // --- helpers --------------------------------------------------------------------------

  private static BackendException refused(KeyAlgorithm alg, byte[] encoded) {
    BackendException e = assertThrows(BackendException.class, () -> KeyMaterial.parse(alg, encoded));
    assertEquals(Kind.INVALID_INPUT, e.kind(), e.getMessage());
    return e;
  }

  private static AlgorithmIdentifier p256() {
    return new AlgorithmIdentifier(X9ObjectIdentifiers.id_ecPublicKey, SECObjectIdentifiers.secp256r1);
  }

  private static byte[] ecPkcs8(AlgorithmIdentifier id, BigInteger d, byte[] publicPoint) throws Exception {
    var ec = publicPoint == null ? new org.bouncycastle.asn1.sec.ECPrivateKey(256, d, null)
        : new org.bouncycastle.asn1.sec.ECPrivateKey(256, d, new DERBitString(publicPoint), null);
    return new PrivateKeyInfo(id, ec).getEncoded("DER");
  }

  private static byte[] rsaPkcs8(BigInteger n, BigInteger e, BigInteger d, BigInteger p, BigInteger q,
      BigInteger dp, BigInteger dq, BigInteger qi) {
    try {
      return new PrivateKeyInfo(new AlgorithmIdentifier(PKCSObjectIdentifiers.rsaEncryption, DERNull.INSTANCE),
          new RSAPrivateKey(n, e, d, p, q, dp, dq, qi)).getEncoded("DER");
    } catch (java.io.IOException ex) {
      throw new IllegalStateException(ex);
    }
  }

  private static KeyPair pair(String id) {
    return PAIRS.computeIfAbsent(id, x -> {
      try {
        if (x.startsWith("EC")) {
          KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
          g.initialize(new ECGenParameterSpec(x.equals("EC384") ? "secp384r1" : "secp256r1"));
          return g.generateKeyPair();
        }
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        int bits = Integer.parseInt(x.substring(3, 7));
        g.initialize(new RSAKeyGenParameterSpec(bits, x.endsWith("e3") ? BigInteger.valueOf(3) : RSAKeyGenParameterSpec.F4));
        return g.generateKeyPair();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
  }

  private static byte[] random(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }
}
