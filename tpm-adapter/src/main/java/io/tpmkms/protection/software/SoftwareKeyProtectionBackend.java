package io.tpmkms.protection.software;

import io.tpmkms.protection.AsymmetricCrypto;
import io.tpmkms.protection.BackendDescription;
import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.Capability;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.KeyAttestation;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeyMaterial;
import io.tpmkms.protection.KeyProtectionBackend;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.ProtectionLevel;
import io.tpmkms.protection.RsaPadding;
import java.nio.charset.StandardCharsets;
import java.security.DrbgParameters;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HexFormat;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.crypto.digests.SHA256Digest;
import org.bouncycastle.crypto.generators.HKDFBytesGenerator;
import org.bouncycastle.crypto.params.HKDFParameters;
import org.jboss.logging.Logger;

/**
 * The software key-protection backend: keys are generated and used in this
 * process (EC and RSA on the provider {@link AsymmetricCrypto} chose: BoringSSL through Conscrypt
 * where it loads, the JDK's otherwise; AES-GCM and HMAC on the JDK's SunJCE), and each
 * key's material leaves only as a blob wrapped under a key-encryption key (KEK)
 * derived from the root seed.
 *
 * <ul>
 *   <li>KEK = HKDF-SHA256(ikm = seed, salt = empty, info = "tpmkms/software/kek/v1"), 32 bytes.
 *   <li>Root id = the first 8 bytes of SHA-256("tpmkms/software/root-id/v1" || seed); written
 *       into each blob so a blob from another root is refused with a clear message.
 *   <li>Blob format v1 (generated keys) and v2 (imported keys, flag byte): see {@link SoftwareBlob}
 *       and docs/tpm-adapter.md.
 * </ul>
 *
 * <p>Threading: safe for concurrent use without a global lock. Unwrapped keys
 * are kept in a bounded cache (default {@value #DEFAULT_CACHE_CAPACITY} entries)
 * keyed by the blob, so a hot key is unwrapped and parsed once; {@link #destroy}
 * evicts an entry and {@link #close} clears the cache. Ciphers, MACs and random
 * generators are per thread.
 *
 * <p>Errors: only {@link BackendException}. KEY_INVALID for a blob that cannot
 * be opened (bad magic, unknown version, another backend, another root, failed
 * integrity check); INVALID_INPUT for bad caller input, for failed decryption
 * (message "decryption failed", the cause kept for the log) and for an
 * operation the key's algorithm does not allow; UNAVAILABLE after {@link #close}.
 * Messages never contain key material.
 */
public final class SoftwareKeyProtectionBackend implements KeyProtectionBackend {
  public static final String ID = "software";
  public static final int DEFAULT_CACHE_CAPACITY = 10_000;

  private static final Logger LOG = Logger.getLogger(SoftwareKeyProtectionBackend.class);
  private static final byte[] KEK_INFO = "tpmkms/software/kek/v1".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] ROOT_ID_LABEL = "tpmkms/software/root-id/v1".getBytes(StandardCharsets.US_ASCII);
  private static final int SYMMETRIC_KEY_LENGTH = 32;
  private static final int AEAD_NONCE_LENGTH = 12;
  private static final int AEAD_TAG_LENGTH = 16;

  private static final BackendDescription DESCRIPTION = new BackendDescription(
      ID, ProtectionLevel.SOFTWARE,
      EnumSet.of(Capability.GENERATE, Capability.IMPORT, Capability.SIGN, Capability.ENCRYPT,
          Capability.ASYMMETRIC_DECRYPT, Capability.MAC, Capability.RANDOM),
      EnumSet.allOf(KeyAlgorithm.class));

  private static final ThreadLocal<SecureRandom> RANDOM = ThreadLocal.withInitial(
      SoftwareKeyProtectionBackend::newRandom);
  private static final ThreadLocal<Cipher> AES_GCM = ThreadLocal.withInitial(
      () -> instance(() -> Cipher.getInstance("AES/GCM/NoPadding")));
  private static final ThreadLocal<Mac> HMAC_SHA256 = ThreadLocal.withInitial(
      () -> instance(() -> Mac.getInstance("HmacSHA256")));

  /** An unwrapped key, as kept in the cache. */
  private sealed interface Unwrapped permits Symmetric, Asymmetric {
    KeyAlgorithm algorithm();
    boolean imported();
  }

  private record Symmetric(KeyAlgorithm algorithm, SecretKey key, boolean imported) implements Unwrapped {}

  /** {@code key} is held by the provider {@link AsymmetricCrypto} chose for its family (parsed once). */
  private record Asymmetric(KeyAlgorithm algorithm, PrivateKey key, byte[] spki, boolean imported)
      implements Unwrapped {}

  private final AsymmetricCrypto crypto;
  private final SecretKey kek;
  private final byte[] rootId;
  private final KeyCache<Unwrapped> cache;
  private volatile boolean closed;

  /** A backend with a cache of {@value #DEFAULT_CACHE_CAPACITY} unwrapped keys. */
  public SoftwareKeyProtectionBackend(RootKeySource rootKeySource) {
    this(rootKeySource, DEFAULT_CACHE_CAPACITY);
  }

  /**
   * @param cacheCapacity how many unwrapped keys to keep in memory, at least 1
   * @throws BackendException from the root key source (KEY_INVALID, INTERNAL)
   */
  public SoftwareKeyProtectionBackend(RootKeySource rootKeySource, int cacheCapacity) {
    this(rootKeySource, cacheCapacity, AsymmetricCrypto.current());
  }

  /**
   * @param crypto where EC and RSA operations run (native or JDK providers)
   */
  public SoftwareKeyProtectionBackend(RootKeySource rootKeySource, int cacheCapacity, AsymmetricCrypto crypto) {
    if (rootKeySource == null) throw new IllegalArgumentException("root key source is required");
    if (crypto == null) throw new IllegalArgumentException("crypto providers are required");
    this.crypto = crypto;
    byte[] seed = rootKeySource.rootSeed();
    try {
      if (seed == null || seed.length != RootKeySource.SEED_LENGTH) {
        throw new BackendException(Kind.KEY_INVALID, "root seed must be " + RootKeySource.SEED_LENGTH + " bytes");
      }
      byte[] kekBytes = new byte[32];
      HKDFBytesGenerator hkdf = new HKDFBytesGenerator(new SHA256Digest());
      hkdf.init(new HKDFParameters(seed, new byte[0], KEK_INFO));
      hkdf.generateBytes(kekBytes, 0, kekBytes.length);
      this.kek = new SecretKeySpec(kekBytes, "AES");
      Arrays.fill(kekBytes, (byte) 0);
      MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
      sha256.update(ROOT_ID_LABEL);
      sha256.update(seed);
      this.rootId = Arrays.copyOf(sha256.digest(), SoftwareBlob.ROOT_ID_LENGTH);
    } catch (NoSuchAlgorithmException e) {
      throw new BackendException(Kind.INTERNAL, "SHA-256 unavailable", e);
    } finally {
      if (seed != null) Arrays.fill(seed, (byte) 0);
    }
    this.cache = new KeyCache<>(cacheCapacity);
    LOG.infof("software key-protection backend ready (root id %s; %s)", HexFormat.of().formatHex(rootId),
        crypto.summary());
  }

  @Override
  public BackendDescription describe() { return DESCRIPTION; }

  /** The 8-byte id of the root this backend wraps under (not secret), hex. */
  public String rootId() { return HexFormat.of().formatHex(rootId); }

  @Override
  public GeneratedKey generate(KeySpec spec) {
    ensureOpen();
    if (spec == null) throw new BackendException(Kind.INVALID_INPUT, "key spec is required");
    KeyAlgorithm alg = spec.algorithm();
    if (spec.platformBinding() != null) {
      throw new BackendException(Kind.UNSUPPORTED, "SOFTWARE keys cannot be bound to platform state: that needs a TPM key");
    }
    SecureRandom random = RANDOM.get();
    boolean exportable = spec.exportPolicy() == io.tpmkms.protection.ExportPolicy.DUPLICABLE;
    if (alg.isAsymmetric()) {
      KeyPair pair = generatePair(alg, random);
      return seal(alg, pair.getPublic().getEncoded(), pair.getPrivate(), null, random, false, exportable);
    }
    byte[] key = new byte[SYMMETRIC_KEY_LENGTH];
    random.nextBytes(key);
    return seal(alg, null, null, key, random, false, exportable);
  }

  /**
   * Seals caller-supplied material into the same blob layout {@link #generate} writes (format
   * v2 with the imported flag, {@link SoftwareBlob}); EC and RSA keys are stored as the SPKI
   * derived from the private key and the JDK's PKCS#8 encoding of the checked key.
   *
   * @throws BackendException INVALID_INPUT when the material is not of the spec's algorithm
   */
  @Override
  public GeneratedKey importKey(KeySpec spec, KeyMaterial material) {
    ensureOpen();
    if (spec == null) throw new BackendException(Kind.INVALID_INPUT, "key spec is required");
    if (material == null) throw new BackendException(Kind.INVALID_INPUT, "key material is required");
    KeyAlgorithm alg = spec.algorithm();
    if (material.algorithm() != alg) {
      throw new BackendException(Kind.INVALID_INPUT,
          "key material was checked as " + material.algorithm() + " but the key is " + alg);
    }
    SecureRandom random = RANDOM.get();
    boolean exportable = spec.exportPolicy() == io.tpmkms.protection.ExportPolicy.DUPLICABLE;
    if (alg.isAsymmetric()) {
      return seal(alg, material.publicKeyDer(), material.toJcaPrivateKey(), null, random, true, exportable);
    }
    return seal(alg, null, null, material.rawKey(), random, true, exportable);
  }

  /** Seals a key pair or a symmetric key (zeroing {@code symmetricKey} and every copy made here). */
  private GeneratedKey seal(KeyAlgorithm alg, byte[] spki, PrivateKey priv, byte[] symmetricKey,
      SecureRandom random, boolean imported, boolean exportable) {
    byte[] material = symmetricKey;
    try {
      if (priv != null) {
        byte[] pkcs8 = priv.getEncoded();
        material = new byte[2 + spki.length + pkcs8.length];
        material[0] = (byte) (spki.length >>> 8);
        material[1] = (byte) spki.length;
        System.arraycopy(spki, 0, material, 2, spki.length);
        System.arraycopy(pkcs8, 0, material, 2 + spki.length, pkcs8.length);
        Arrays.fill(pkcs8, (byte) 0);
      }
      KeyHandle handle = new KeyHandle(SoftwareBlob.seal(alg, rootId, kek, material, random, imported, exportable));
      return new GeneratedKey(handle, spki);
    } finally {
      if (material != null) Arrays.fill(material, (byte) 0);
    }
  }

  /** DUPLICABLE when the blob carries the exportable flag (generated with that export policy). */
  @Override
  public io.tpmkms.protection.ExportPolicy exportPolicy(KeyHandle handle) {
    ensureOpen();
    if (handle == null) throw new BackendException(Kind.INVALID_INPUT, "key handle is required");
    SoftwareBlob.Opened o = SoftwareBlob.open(handle.blob(), rootId, kek);
    Arrays.fill(o.material(), (byte) 0);
    return o.exportable() ? io.tpmkms.protection.ExportPolicy.DUPLICABLE : io.tpmkms.protection.ExportPolicy.NON_EXPORTABLE;
  }

  /**
   * Exports a DUPLICABLE key wrapped for {@code wrappingKey} in the import-jobs format
   * ({@link io.tpmkms.protection.ImportWrapping}: RSA-OAEP-SHA256 of a one-time AES-256 key, then
   * AES-KWP of the material; or RSA-OAEP of the material directly for symmetric keys with a direct
   * method), so any tpmkms import job, Cloud KMS or Vault BYOK import takes it. The material is the
   * 32 raw bytes (AES, HMAC) or PKCS#8 DER (EC, RSA); every plaintext copy is zeroed.
   *
   * @throws BackendException INVALID_INPUT for a NON_EXPORTABLE key, a wrapping key that is not of the
   *     method's size, or an asymmetric key with a direct method
   */
  public byte[] exportWrapped(KeyHandle handle, io.tpmkms.protection.ImportWrapping.Method method,
      java.security.PublicKey wrappingKey) {
    ensureOpen();
    if (handle == null || method == null || wrappingKey == null || method.duplication()) {
      throw new BackendException(Kind.INVALID_INPUT, "key, RSA wrapping method and wrapping key are required");
    }
    SoftwareBlob.Opened o = SoftwareBlob.open(handle.blob(), rootId, kek);
    byte[] m = o.material();
    byte[] material = null;
    try {
      if (!o.exportable()) throw new BackendException(Kind.INVALID_INPUT, "the key is NON_EXPORTABLE");
      if (o.algorithm().isAsymmetric()) {
        if (!method.aesKeyWrap()) {
          throw new BackendException(Kind.INVALID_INPUT, "method " + method + " carries symmetric material only");
        }
        int spkiLength = ((m[0] & 0xff) << 8) | (m[1] & 0xff);
        material = Arrays.copyOfRange(m, 2 + spkiLength, m.length);
      } else {
        material = m.clone();
      }
      try {
        return io.tpmkms.protection.ImportWrapping.wrap(method, wrappingKey, material);
      } catch (IllegalArgumentException e) {
        throw new BackendException(Kind.INVALID_INPUT, e.getMessage(), e);
      }
    } finally {
      Arrays.fill(m, (byte) 0);
      if (material != null) Arrays.fill(material, (byte) 0);
    }
  }

  /**
   * Whether the handle's key was imported (its blob is format v2 with the imported flag) rather
   * than generated here. Opens the blob, so a blob of another root is KEY_INVALID.
   */
  public boolean imported(KeyHandle handle) {
    return unwrap(handle).imported();
  }

  @Override
  public byte[] publicKey(KeyHandle handle) {
    Unwrapped key = unwrap(handle);
    if (!(key instanceof Asymmetric a)) {
      throw notAllowed(key.algorithm(), "have a public key");
    }
    return a.spki().clone();
  }

  @Override
  public byte[] sign(KeyHandle handle, byte[] digest) {
    Asymmetric key = asymmetric(handle, KeyAlgorithm.Kind.SIGN, "sign");
    KeyAlgorithm alg = key.algorithm();
    RsaPadding.checkDigest(alg, digest);
    try {
      return crypto.signDigest(alg, key.key(), digest, RANDOM.get());
    } catch (GeneralSecurityException | RuntimeException e) {
      throw new BackendException(Kind.INTERNAL, "signing failed with " + alg, e);
    }
  }

  @Override
  public byte[] encrypt(KeyHandle handle, byte[] plaintext, byte[] aad) {
    SecretKey key = symmetric(handle, KeyAlgorithm.Kind.SYMMETRIC_AEAD, "encrypt");
    if (plaintext == null) throw new BackendException(Kind.INVALID_INPUT, "plaintext is required");
    byte[] nonce = new byte[AEAD_NONCE_LENGTH];
    RANDOM.get().nextBytes(nonce);
    byte[] out = new byte[AEAD_NONCE_LENGTH + plaintext.length + AEAD_TAG_LENGTH];
    System.arraycopy(nonce, 0, out, 0, AEAD_NONCE_LENGTH);
    try {
      Cipher c = AES_GCM.get();
      c.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(AEAD_TAG_LENGTH * 8, nonce));
      if (aad != null && aad.length > 0) c.updateAAD(aad);
      c.doFinal(plaintext, 0, plaintext.length, out, AEAD_NONCE_LENGTH);
      return out;
    } catch (GeneralSecurityException e) {
      AES_GCM.remove();
      throw new BackendException(Kind.INTERNAL, "encryption failed to run", e);
    }
  }

  @Override
  public byte[] decrypt(KeyHandle handle, byte[] payload, byte[] aad) {
    SecretKey key = symmetric(handle, KeyAlgorithm.Kind.SYMMETRIC_AEAD, "decrypt");
    if (payload == null || payload.length < AEAD_NONCE_LENGTH + AEAD_TAG_LENGTH) {
      throw new BackendException(Kind.INVALID_INPUT, "decryption failed",
          new IllegalArgumentException("payload shorter than nonce and tag"));
    }
    try {
      Cipher c = AES_GCM.get();
      c.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(AEAD_TAG_LENGTH * 8, payload, 0, AEAD_NONCE_LENGTH));
      if (aad != null && aad.length > 0) c.updateAAD(aad);
      return c.doFinal(payload, AEAD_NONCE_LENGTH, payload.length - AEAD_NONCE_LENGTH);
    } catch (AEADBadTagException e) {
      throw new BackendException(Kind.INVALID_INPUT, "decryption failed", e);
    } catch (GeneralSecurityException e) {
      AES_GCM.remove();
      throw new BackendException(Kind.INVALID_INPUT, "decryption failed", e);
    }
  }

  @Override
  public byte[] asymmetricDecrypt(KeyHandle handle, byte[] ciphertext) {
    Asymmetric key = asymmetric(handle, KeyAlgorithm.Kind.ASYMMETRIC_DECRYPT, "decrypt");
    if (ciphertext == null || ciphertext.length == 0) {
      throw new BackendException(Kind.INVALID_INPUT, "decryption failed",
          new IllegalArgumentException("empty ciphertext"));
    }
    try {
      return crypto.oaepDecrypt(key.key(), ciphertext);
    } catch (GeneralSecurityException | RuntimeException e) {
      throw new BackendException(Kind.INVALID_INPUT, "decryption failed", e);
    }
  }

  @Override
  public byte[] mac(KeyHandle handle, byte[] data) {
    SecretKey key = symmetric(handle, KeyAlgorithm.Kind.MAC, "compute a MAC");
    if (data == null) throw new BackendException(Kind.INVALID_INPUT, "data is required");
    try {
      Mac m = HMAC_SHA256.get();
      m.init(key);
      return m.doFinal(data);
    } catch (GeneralSecurityException e) {
      HMAC_SHA256.remove();
      throw new BackendException(Kind.INTERNAL, "MAC failed to run", e);
    }
  }

  @Override
  public byte[] randomBytes(int length) {
    ensureOpen();
    if (length <= 0) throw new BackendException(Kind.INVALID_INPUT, "length must be > 0, was " + length);
    byte[] out = new byte[length];
    RANDOM.get().nextBytes(out);
    return out;
  }

  /** Software keys live in this process: there is no device to attest them. */
  @Override
  public KeyAttestation certify(KeyHandle handle, byte[] qualifyingData) {
    throw new BackendException(Kind.UNSUPPORTED, "the software backend cannot attest keys (no CERTIFY capability)");
  }

  /**
   * Evicts the handle's unwrapped key from the cache. The blob itself stays
   * valid: the material is gone once the caller has dropped every copy of it.
   */
  @Override
  public void destroy(KeyHandle handle) {
    if (handle != null) cache.remove(handle);
  }

  /** Clears the cache; later calls throw UNAVAILABLE. Idempotent. */
  @Override
  public void close() {
    closed = true;
    cache.clear();
  }

  /** Number of unwrapped keys in the cache (for tests and metrics). */
  int cachedKeyCount() { return cache.size(); }

  // --- unwrapping -------------------------------------------------------------------------

  private Unwrapped unwrap(KeyHandle handle) {
    ensureOpen();
    if (handle == null) throw new BackendException(Kind.INVALID_INPUT, "key handle is required");
    return cache.get(handle, this::load);
  }

  private Unwrapped load(KeyHandle handle) {
    SoftwareBlob.Opened opened = SoftwareBlob.open(handle.blob(), rootId, kek);
    KeyAlgorithm alg = opened.algorithm();
    byte[] m = opened.material();
    try {
      if (!alg.isAsymmetric()) {
        if (m.length != SYMMETRIC_KEY_LENGTH) throw malformed(alg, null);
        return new Symmetric(alg, new SecretKeySpec(m, alg == KeyAlgorithm.HMAC_SHA256 ? "HmacSHA256" : "AES"),
            opened.imported());
      }
      if (m.length < 2) throw malformed(alg, null);
      int spkiLength = ((m[0] & 0xff) << 8) | (m[1] & 0xff);
      if (spkiLength == 0 || 2 + spkiLength >= m.length) throw malformed(alg, null);
      byte[] spki = Arrays.copyOfRange(m, 2, 2 + spkiLength);
      byte[] pkcs8 = Arrays.copyOfRange(m, 2 + spkiLength, m.length);
      PrivateKey priv;
      try {
        priv = crypto.privateKey(alg, pkcs8);
      } catch (GeneralSecurityException | RuntimeException e) {
        throw malformed(alg, e);
      } finally {
        Arrays.fill(pkcs8, (byte) 0);
      }
      if (!alg.isEc() && !(priv instanceof java.security.interfaces.RSAKey)) throw malformed(alg, null);
      return new Asymmetric(alg, priv, spki, opened.imported());
    } finally {
      Arrays.fill(m, (byte) 0);
    }
  }

  private SecretKey symmetric(KeyHandle handle, KeyAlgorithm.Kind kind, String operation) {
    Unwrapped key = unwrap(handle);
    if (key.algorithm().kind() != kind || !(key instanceof Symmetric s)) {
      throw notAllowed(key.algorithm(), operation);
    }
    return s.key();
  }

  private Asymmetric asymmetric(KeyHandle handle, KeyAlgorithm.Kind kind, String operation) {
    Unwrapped key = unwrap(handle);
    if (key.algorithm().kind() != kind || !(key instanceof Asymmetric a)) {
      throw notAllowed(key.algorithm(), operation);
    }
    return a;
  }

  private void ensureOpen() {
    if (closed) throw new BackendException(Kind.UNAVAILABLE, "software backend is closed");
  }

  private static BackendException notAllowed(KeyAlgorithm alg, String operation) {
    return new BackendException(Kind.INVALID_INPUT,
        "a " + alg + " key cannot " + operation + " (key purpose " + alg.kind() + ")");
  }

  private static BackendException malformed(KeyAlgorithm alg, Throwable cause) {
    return new BackendException(Kind.KEY_INVALID, "key blob holds malformed " + alg + " material", cause);
  }

  // --- generation and JCA plumbing --------------------------------------------------------

  private KeyPair generatePair(KeyAlgorithm alg, SecureRandom random) {
    try {
      return crypto.generate(alg, random);
    } catch (GeneralSecurityException e) {
      throw new BackendException(Kind.INTERNAL, "cannot generate a " + alg + " key", e);
    }
  }

  private static SecureRandom newRandom() {
    try {
      return SecureRandom.getInstance("DRBG",
          DrbgParameters.instantiation(256, DrbgParameters.Capability.RESEED_ONLY, null));
    } catch (NoSuchAlgorithmException e) {
      return new SecureRandom();
    }
  }

  private interface JcaFactory<T> { T get() throws GeneralSecurityException; }

  private static <T> T instance(JcaFactory<T> f) {
    try {
      return f.get();
    } catch (GeneralSecurityException e) {
      throw new BackendException(Kind.INTERNAL, "JCA algorithm unavailable", e);
    }
  }
}
