package io.tpmkms.protection;

import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.interfaces.RSAKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.RSAKeyGenParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import org.jboss.logging.Logger;

/**
 * Where the asymmetric cryptography of SOFTWARE keys (and the verification of every signature,
 * TPM keys' included) runs: on a native provider (Conscrypt, BoringSSL) where it loads and passes
 * its start-up self-test, on Java providers otherwise: Bouncy Castle for ECDSA (7x the JDK 17
 * SunEC rate, and SunEC fails three Wycheproof vectors per curve), the JDK's SunRsaSign/SunJCE for
 * RSA (ADR 0027).
 *
 * <p>Two families are chosen separately: {@link Family#ECDSA} (P-256/P-384 key generation,
 * signing and verification of a digest) and {@link Family#RSA} (key generation, PKCS#1 v1.5 and
 * PSS signing of a digest, PKCS#1 verification, OAEP-SHA256 decryption). AES-GCM and HMAC stay on
 * the JDK (SunJCE measured faster than the native provider there; docs/benchmarks.md). Nothing a
 * client sees depends on the choice: keys are stored as PKCS#8/SPKI, signatures are DER ECDSA or
 * RSA octet strings, whichever provider made them.
 *
 * <p>The choice is made once: {@link #install} (the key service at start, from
 * {@code tpmkms.crypto.provider}) or, if nothing installed one, on first use from the system
 * property {@code tpmkms.crypto.provider} or the environment variable
 * {@code TPMKMS_CRYPTO_PROVIDER} ({@code auto} by default, {@code java} forces the fallback).
 *
 * <p>Thread-safe: JCA engines are kept per thread.
 */
public final class AsymmetricCrypto {
  private static final Logger LOG = Logger.getLogger(AsymmetricCrypto.class);
  private static final OAEPParameterSpec OAEP_SHA256 = new OAEPParameterSpec(
      "SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT);
  private static final int PSS_SALT_LENGTH = 32;

  /** Which providers to use. */
  public enum Mode {
    /** The native provider for each family where it loads and passes its self-test; the JDK's otherwise. */
    AUTO,
    /** Java providers only: Bouncy Castle for ECDSA, the JDK's SunRsaSign/SunJCE for RSA. */
    JAVA;

    /** {@code auto} or {@code java}, any case. */
    public static Mode parse(String value) {
      try {
        return valueOf(value.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException | NullPointerException e) {
        throw new IllegalArgumentException("tpmkms.crypto.provider must be auto or java, was '" + value + "'");
      }
    }
  }

  /** The operations chosen together. */
  public enum Family {
    ECDSA("ECDSA P-256/P-384: key generation, sign, verify"),
    RSA("RSA: key generation, PKCS#1 v1.5 and PSS sign, PKCS#1 verify, OAEP-SHA256 decrypt");

    private final String description;

    Family(String description) {
      this.description = description;
    }

    public String description() {
      return description;
    }
  }

  private static volatile AsymmetricCrypto current;

  private final Mode mode;
  /** null: the JDK's default provider lookup. */
  private final Provider ec;
  private final Provider rsa;
  private final boolean ecNative;
  private final boolean rsaNative;
  /** Why the native provider is not used ("" when it is used for every family). */
  private final String nativeNote;

  private final ThreadLocal<Signature> ecdsa;
  private final ThreadLocal<Signature> rsaPkcs1;
  private final ThreadLocal<Cipher> rsaRaw;
  private final ThreadLocal<Cipher> rsaOaep;

  private AsymmetricCrypto(Mode mode, Provider nativeProvider, boolean ecNative, boolean rsaNative,
      String nativeNote) {
    this.mode = mode;
    this.ecNative = ecNative;
    this.rsaNative = rsaNative;
    this.ec = ecNative ? nativeProvider : BouncyCastle.PROVIDER;
    this.rsa = rsaNative ? nativeProvider : null;
    this.nativeNote = nativeNote;
    this.ecdsa = ThreadLocal.withInitial(() -> engine(() -> ec == null
        ? Signature.getInstance("NONEwithECDSA") : Signature.getInstance("NONEwithECDSA", ec)));
    this.rsaPkcs1 = ThreadLocal.withInitial(() -> engine(() -> rsa == null
        ? Signature.getInstance("NONEwithRSA") : Signature.getInstance("NONEwithRSA", rsa)));
    this.rsaRaw = ThreadLocal.withInitial(() -> engine(() -> rsa == null
        ? Cipher.getInstance("RSA/ECB/NoPadding") : Cipher.getInstance("RSA/ECB/NoPadding", rsa)));
    this.rsaOaep = ThreadLocal.withInitial(() -> engine(() -> rsa == null
        ? Cipher.getInstance("RSA/ECB/OAEPPadding") : Cipher.getInstance("RSA/ECB/OAEPPadding", rsa)));
  }

  // --- selection -----------------------------------------------------------------------------

  /** The providers in use; chosen on first call from the system property or environment if none was installed. */
  public static AsymmetricCrypto current() {
    AsymmetricCrypto c = current;
    if (c != null) return c;
    synchronized (AsymmetricCrypto.class) {
      if (current == null) {
        String setting = System.getProperty("tpmkms.crypto.provider", System.getenv("TPMKMS_CRYPTO_PROVIDER"));
        current = announce(select(setting == null || setting.isBlank() ? Mode.AUTO : Mode.parse(setting)));
      }
      return current;
    }
  }

  /**
   * Chooses the providers for {@code mode} and makes them {@link #current()}; logs the choice
   * once. Installing the mode already current keeps it (no second self-test).
   */
  public static synchronized AsymmetricCrypto install(Mode mode) {
    if (current != null && current.mode == mode) return current;
    current = announce(select(mode));
    return current;
  }

  /** Chooses providers for {@code mode}, self-testing the native one, without installing them. */
  public static AsymmetricCrypto select(Mode mode) {
    if (mode == Mode.JAVA) {
      return new AsymmetricCrypto(mode, null, false, false, "the native provider is off (tpmkms.crypto.provider=java)");
    }
    Provider nativeProvider;
    try {
      nativeProvider = NativeProvider.load();
    } catch (Throwable e) {
      // Another OS or architecture, a missing glibc, a sandbox refusing the library: the JDK serves.
      return new AsymmetricCrypto(mode, null, false, false, "the native provider (Conscrypt) did not load: " + e);
    }
    AsymmetricCrypto candidate = new AsymmetricCrypto(mode, nativeProvider, true, true, "");
    AsymmetricCrypto java = new AsymmetricCrypto(Mode.JAVA, null, false, false, "");
    StringBuilder note = new StringBuilder();
    boolean ec = true;
    boolean rsa = true;
    try {
      selfTestEcdsa(candidate, java);
    } catch (Throwable e) {
      ec = false;
      note.append("ECDSA self-test on ").append(nativeProvider.getName()).append(" failed: ").append(e).append("; ");
    }
    try {
      selfTestRsa(candidate, java);
    } catch (Throwable e) {
      rsa = false;
      note.append("RSA self-test on ").append(nativeProvider.getName()).append(" failed: ").append(e).append("; ");
    }
    return new AsymmetricCrypto(mode, nativeProvider, ec, rsa, note.toString());
  }

  private static AsymmetricCrypto announce(AsymmetricCrypto c) {
    if (c.nativeNote.isEmpty()) {
      LOG.infof("software cryptography: %s", c.summary());
    } else {
      LOG.warnf("software cryptography: %s (%s)", c.summary(), c.nativeNote);
    }
    return c;
  }

  /** Bouncy Castle as a provider instance of its own (not installed in the JVM's provider list). */
  private static final class BouncyCastle {
    static final Provider PROVIDER = new org.bouncycastle.jce.provider.BouncyCastleProvider();
  }

  /** Conscrypt, kept apart so that a missing class or library fails here and nowhere else. */
  private static final class NativeProvider {
    static Provider load() {
      if (!org.conscrypt.Conscrypt.isAvailable()) {
        Throwable why = null;
        try {
          org.conscrypt.Conscrypt.checkAvailability();
        } catch (Throwable e) {
          why = e;
        }
        throw new IllegalStateException("Conscrypt's native library is not available", why);
      }
      return org.conscrypt.Conscrypt.newProvider();
    }
  }

  // --- what was chosen -----------------------------------------------------------------------

  public Mode mode() {
    return mode;
  }

  /**
   * The provider per family: {ECDSA=Conscrypt 2.5.2 (BoringSSL), RSA=...} or, on the Java path,
   * {ECDSA=Bouncy Castle 1.83, RSA=SunJCE}.
   */
  public Map<Family, String> providers() {
    Map<Family, String> m = new EnumMap<>(Family.class);
    m.put(Family.ECDSA, describe(ec));
    m.put(Family.RSA, rsa == null ? jdkName("Signature", "NONEwithRSA") : describe(rsa));
    return m;
  }

  /** Whether {@code family} runs on the native provider. */
  public boolean isNative(Family family) {
    return family == Family.ECDSA ? ecNative : rsaNative;
  }

  /** Why a family is not native ("" when every family is). */
  public String note() {
    return nativeNote;
  }

  /** "ECDSA: Conscrypt 2.5.2 (BoringSSL); RSA: Conscrypt 2.5.2 (BoringSSL); AES-GCM, HMAC: SunJCE". */
  public String summary() {
    var p = providers();
    return "ECDSA: " + p.get(Family.ECDSA) + "; RSA: " + p.get(Family.RSA) + "; AES-GCM, HMAC: "
        + jdkName("Cipher", "AES/GCM/NoPadding");
  }

  private static String describe(Provider p) {
    if (p.getName().equals("Conscrypt")) {
      var v = org.conscrypt.Conscrypt.version();
      return "Conscrypt " + v.major() + "." + v.minor() + "." + v.patch() + " (BoringSSL)";
    }
    if (p.getName().equals("BC")) return "Bouncy Castle " + p.getVersionStr();
    return p.getName();
  }

  private static String jdkName(String type, String algorithm) {
    try {
      return switch (type) {
        case "Signature" -> Signature.getInstance(algorithm).getProvider().getName();
        default -> Cipher.getInstance(algorithm).getProvider().getName();
      };
    } catch (GeneralSecurityException e) {
      return "unavailable";
    }
  }

  // --- operations ----------------------------------------------------------------------------

  /** A private key from PKCS#8 DER, as the family's provider holds it (a native key: parsed once, used many times). */
  public PrivateKey privateKey(KeyAlgorithm alg, byte[] pkcs8) throws GeneralSecurityException {
    Provider p = provider(alg);
    KeyFactory f = p == null ? KeyFactory.getInstance(keyType(alg)) : KeyFactory.getInstance(keyType(alg), p);
    return f.generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
  }

  /** A public key from SPKI DER. */
  public PublicKey publicKey(KeyAlgorithm alg, byte[] spki) throws GeneralSecurityException {
    Provider p = provider(alg);
    KeyFactory f = p == null ? KeyFactory.getInstance(keyType(alg)) : KeyFactory.getInstance(keyType(alg), p);
    return f.generatePublic(new X509EncodedKeySpec(spki));
  }

  /** A new EC or RSA key pair for {@code alg} (RSA with public exponent 65537). */
  public KeyPair generate(KeyAlgorithm alg, SecureRandom random) throws GeneralSecurityException {
    if (!alg.isAsymmetric()) throw new IllegalArgumentException(alg + " is not asymmetric");
    Provider p = provider(alg);
    KeyPairGenerator g = p == null
        ? KeyPairGenerator.getInstance(keyType(alg)) : KeyPairGenerator.getInstance(keyType(alg), p);
    if (alg.isEc()) {
      g.initialize(new ECGenParameterSpec(alg.keyBits() == 384 ? "secp384r1" : "secp256r1"), random);
    } else {
      g.initialize(new RSAKeyGenParameterSpec(alg.keyBits(), RSAKeyGenParameterSpec.F4), random);
    }
    return g.generateKeyPair();
  }

  /**
   * Signs a digest of the algorithm's hash: DER ECDSA, PKCS#1 v1.5 (DigestInfo), or RSASSA-PSS
   * (MGF1-SHA256, salt 32 bytes, trailer 0xbc) encoded here and raised to the private exponent by
   * the provider's raw RSA.
   */
  public byte[] signDigest(KeyAlgorithm alg, PrivateKey key, byte[] digest, SecureRandom random)
      throws GeneralSecurityException {
    RsaPadding.checkDigest(alg, digest);
    if (alg.isEc()) {
      Signature s = ecdsa.get();
      s.initSign(key, random);
      s.update(digest);
      return s.sign();
    }
    if (alg.isPss()) {
      int modBits = ((RSAKey) key).getModulus().bitLength();
      byte[] em = emsaPssEncode(digest, modBits - 1, random);
      byte[] block = new byte[(modBits + 7) / 8];
      System.arraycopy(em, 0, block, block.length - em.length, em.length);
      Cipher c = rsaRaw.get();
      c.init(Cipher.ENCRYPT_MODE, key);
      byte[] sig = c.doFinal(block);
      return leftPad(sig, block.length);
    }
    Signature s = rsaPkcs1.get();
    s.initSign(key, random);
    s.update(RsaPadding.digestInfo(alg, digest));
    return s.sign();
  }

  /**
   * Verifies a signature over a digest; malformed signatures are invalid (false), not errors.
   * PSS verification is Bouncy Castle's (an independent implementation of what {@link #signDigest} encodes).
   */
  public boolean verifyDigest(KeyAlgorithm alg, PublicKey key, byte[] digest, byte[] signature)
      throws GeneralSecurityException {
    RsaPadding.checkDigest(alg, digest);
    if (signature == null) return false;
    if (alg.isPss()) {
      return RsaPadding.verifyPssPrehashed((java.security.interfaces.RSAPublicKey) key, digest, signature);
    }
    Provider p = provider(alg);
    String name = alg.isEc() ? "NONEwithECDSA" : "NONEwithRSA";
    Signature s = p == null ? Signature.getInstance(name) : Signature.getInstance(name, p);
    s.initVerify(key);
    s.update(alg.isEc() ? digest : RsaPadding.digestInfo(alg, digest));
    try {
      return s.verify(signature);
    } catch (java.security.SignatureException | RuntimeException e) {
      // a signature of the wrong length or a bad encoding: invalid (providers differ in what they throw)
      return false;
    }
  }

  /** RSA-OAEP (SHA-256, MGF1-SHA256, empty label) decryption. */
  public byte[] oaepDecrypt(PrivateKey key, byte[] ciphertext) throws GeneralSecurityException {
    Cipher c = rsaOaep.get();
    c.init(Cipher.DECRYPT_MODE, key, OAEP_SHA256);
    return c.doFinal(ciphertext);
  }

  private Provider provider(KeyAlgorithm alg) {
    return alg.isEc() ? ec : rsa;
  }

  private static String keyType(KeyAlgorithm alg) {
    return alg.isEc() ? "EC" : "RSA";
  }

  /** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) of a SHA-256 message hash, MGF1-SHA256, salt of 32 bytes. */
  static byte[] emsaPssEncode(byte[] mHash, int emBits, SecureRandom random) throws GeneralSecurityException {
    int hLen = 32;
    int emLen = (emBits + 7) / 8;
    if (emLen < hLen + PSS_SALT_LENGTH + 2) throw new GeneralSecurityException("modulus too short for PSS");
    byte[] salt = new byte[PSS_SALT_LENGTH];
    random.nextBytes(salt);
    MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
    sha256.update(new byte[8]);
    sha256.update(mHash);
    sha256.update(salt);
    byte[] h = sha256.digest();
    byte[] db = new byte[emLen - hLen - 1];
    db[db.length - PSS_SALT_LENGTH - 1] = 0x01;
    System.arraycopy(salt, 0, db, db.length - PSS_SALT_LENGTH, PSS_SALT_LENGTH);
    byte[] mask = mgf1Sha256(h, db.length, sha256);
    for (int i = 0; i < db.length; i++) db[i] ^= mask[i];
    db[0] &= (byte) (0xff >>> (8 * emLen - emBits));
    byte[] em = new byte[emLen];
    System.arraycopy(db, 0, em, 0, db.length);
    System.arraycopy(h, 0, em, db.length, hLen);
    em[emLen - 1] = (byte) 0xbc;
    return em;
  }

  private static byte[] mgf1Sha256(byte[] seed, int length, MessageDigest sha256) {
    byte[] out = new byte[length];
    int offset = 0;
    for (int counter = 0; offset < length; counter++) {
      sha256.update(seed);
      sha256.update(new byte[] {(byte) (counter >>> 24), (byte) (counter >>> 16), (byte) (counter >>> 8),
          (byte) counter});
      byte[] block = sha256.digest();
      int n = Math.min(block.length, length - offset);
      System.arraycopy(block, 0, out, offset, n);
      offset += n;
    }
    return out;
  }

  private static byte[] leftPad(byte[] value, int length) {
    if (value.length == length) return value;
    byte[] out = new byte[length];
    System.arraycopy(value, 0, out, length - value.length, value.length);
    return out;
  }

  // --- self-tests ----------------------------------------------------------------------------

  /** Signs with each side and verifies with the other, and refuses a changed digest. */
  private static void selfTestEcdsa(AsymmetricCrypto candidate, AsymmetricCrypto jdk) throws GeneralSecurityException {
    SecureRandom random = new SecureRandom();
    for (KeyAlgorithm alg : new KeyAlgorithm[] {KeyAlgorithm.EC_SIGN_P256_SHA256, KeyAlgorithm.EC_SIGN_P384_SHA384}) {
      KeyPair pair = candidate.generate(alg, random);
      byte[] spki = pair.getPublic().getEncoded();
      byte[] pkcs8 = pair.getPrivate().getEncoded();
      byte[] digest = new byte[alg.digestLength()];
      random.nextBytes(digest);
      byte[] sig = candidate.signDigest(alg, candidate.privateKey(alg, pkcs8), digest, random);
      require(jdk.verifyDigest(alg, jdk.publicKey(alg, spki), digest, sig), alg + ": JDK rejects its signature");
      byte[] jdkSig = jdk.signDigest(alg, jdk.privateKey(alg, pkcs8), digest, random);
      require(candidate.verifyDigest(alg, candidate.publicKey(alg, spki), digest, jdkSig),
          alg + ": rejects the JDK's signature");
      digest[0] ^= 1;
      require(!candidate.verifyDigest(alg, candidate.publicKey(alg, spki), digest, sig),
          alg + ": accepts a signature over another digest");
      Arrays.fill(pkcs8, (byte) 0);
    }
  }

  /**
   * PKCS#1 v1.5 is deterministic: both providers must produce the same bytes from one key (a
   * known-answer test across implementations); PSS must verify with Bouncy Castle; OAEP must open
   * what the JDK sealed.
   */
  private static void selfTestRsa(AsymmetricCrypto candidate, AsymmetricCrypto jdk) throws GeneralSecurityException {
    SecureRandom random = new SecureRandom();
    KeyAlgorithm alg = KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256;
    KeyPair pair = candidate.generate(alg, random);
    byte[] spki = pair.getPublic().getEncoded();
    byte[] pkcs8 = pair.getPrivate().getEncoded();
    try {
      PrivateKey nativeKey = candidate.privateKey(alg, pkcs8);
      PrivateKey jdkKey = jdk.privateKey(alg, pkcs8);
      PublicKey jdkPublic = jdk.publicKey(alg, spki);
      byte[] digest = new byte[32];
      random.nextBytes(digest);
      byte[] sig = candidate.signDigest(alg, nativeKey, digest, random);
      require(Arrays.equals(sig, jdk.signDigest(alg, jdkKey, digest, random)),
          "RSA PKCS#1 v1.5: the signature differs from the JDK's");
      require(candidate.verifyDigest(alg, candidate.publicKey(alg, spki), digest, sig), "RSA PKCS#1: rejects its own");
      KeyAlgorithm pss = KeyAlgorithm.RSA_SIGN_PSS_2048_SHA256;
      byte[] pssSig = candidate.signDigest(pss, nativeKey, digest, random);
      require(RsaPadding.verifyPssPrehashed((java.security.interfaces.RSAPublicKey) jdkPublic, digest, pssSig),
          "RSA-PSS: Bouncy Castle rejects its signature");
      Cipher seal = Cipher.getInstance("RSA/ECB/OAEPPadding");
      seal.init(Cipher.ENCRYPT_MODE, jdkPublic, OAEP_SHA256);
      byte[] secret = new byte[32];
      random.nextBytes(secret);
      require(Arrays.equals(secret, candidate.oaepDecrypt(nativeKey, seal.doFinal(secret))),
          "RSA-OAEP: does not open the JDK's ciphertext");
    } finally {
      Arrays.fill(pkcs8, (byte) 0);
    }
  }

  private static void require(boolean ok, String what) throws GeneralSecurityException {
    if (!ok) throw new GeneralSecurityException(what);
  }

  private interface JcaFactory<T> {
    T get() throws GeneralSecurityException;
  }

  private static <T> T engine(JcaFactory<T> f) {
    try {
      return f.get();
    } catch (GeneralSecurityException e) {
      throw new BackendException(BackendException.Kind.INTERNAL, "JCA algorithm unavailable", e);
    }
  }

  @Override
  public String toString() {
    return summary();
  }
}
