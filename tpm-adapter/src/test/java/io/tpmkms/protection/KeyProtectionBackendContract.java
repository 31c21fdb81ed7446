package io.tpmkms.protection;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.BackendException.Kind;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.SignatureException;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The contract every {@link KeyProtectionBackend} meets, in the style of
 * Parsec's per-provider suites: a backend's test extends this class and says
 * how to open the backend. Results are checked independently of the backend
 * (JCA verification over the data, JCA OAEP encryption from the public key).
 * Algorithms the backend does not describe are skipped.
 *
 * <p>One instance per class: the backend is opened once, and generated keys are
 * reused across tests (RSA generation is slow, above all on a TPM).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class KeyProtectionBackendContract {

  /** The backend under test, on the test's root; closed by the contract. */
  protected abstract KeyProtectionBackend openBackend();

  /** A fresh backend instance on the same root as {@link #openBackend()}: a restart. Closed by the contract. */
  protected abstract KeyProtectionBackend reopenBackend();

  private static final SecureRandom RNG = new SecureRandom();
  private KeyProtectionBackend backend;
  private final Map<KeyAlgorithm, GeneratedKey> keys = new ConcurrentHashMap<>();

  @BeforeAll
  final void openContractBackend() { backend = openBackend(); }

  @AfterAll
  final void closeContractBackend() {
    if (backend != null) backend.close();
  }

  protected final KeyProtectionBackend backend() { return backend; }

  /** A key of the algorithm, generated once per class; skips the test if the backend lacks it. */
  protected final GeneratedKey key(KeyAlgorithm alg) {
    assumeSupported(alg);
    return keys.computeIfAbsent(alg, a -> backend.generate(new KeySpec(a)));
  }

  protected final void assumeSupported(KeyAlgorithm alg) {
    Assumptions.assumeTrue(backend.describe().supports(alg), () -> backend.describe().id() + " lacks " + alg);
  }

  static Stream<KeyAlgorithm> allAlgorithms() { return Arrays.stream(KeyAlgorithm.values()); }
  static Stream<KeyAlgorithm> symmetricAlgorithms() { return allAlgorithms().filter(a -> !a.isAsymmetric()); }
  /** All but RSA above 2048 bits, for tests that generate fresh keys. */
  static Stream<KeyAlgorithm> quickAlgorithms() {
    return allAlgorithms().filter(a -> !(a.isRsa() && a.keyBits() > 2048));
  }
  static Stream<KeyAlgorithm> asymmetricAlgorithms() { return allAlgorithms().filter(KeyAlgorithm::isAsymmetric); }
  static Stream<KeyAlgorithm> signAlgorithms() { return ofKind(KeyAlgorithm.Kind.SIGN); }
  static Stream<KeyAlgorithm> aeadAlgorithms() { return ofKind(KeyAlgorithm.Kind.SYMMETRIC_AEAD); }
  static Stream<KeyAlgorithm> decryptAlgorithms() { return ofKind(KeyAlgorithm.Kind.ASYMMETRIC_DECRYPT); }
  static Stream<KeyAlgorithm> macAlgorithms() { return ofKind(KeyAlgorithm.Kind.MAC); }

  private static Stream<KeyAlgorithm> ofKind(KeyAlgorithm.Kind kind) {
    return allAlgorithms().filter(a -> a.kind() == kind);
  }

  // --- describe and generate --------------------------------------------------------------

  @Test
  void describe_namesItselfAndCanGenerate() {
    BackendDescription d = backend.describe();
    assertNotNull(d.id());
    assertFalse(d.id().isBlank());
    assertNotNull(d.level());
    assertTrue(d.supports(Capability.GENERATE));
    assertFalse(d.algorithms().isEmpty());
  }

  @ParameterizedTest
  @MethodSource("quickAlgorithms")
  void generate_twice_givesDistinctHandles(KeyAlgorithm alg) {
    GeneratedKey a = key(alg);
    GeneratedKey b = backend.generate(new KeySpec(alg));
    assertNotEquals(a.handle(), b.handle());
    if (alg.isAsymmetric()) assertFalse(Arrays.equals(a.publicKeyDer(), b.publicKeyDer()));
  }

  @ParameterizedTest
  @MethodSource("asymmetricAlgorithms")
  void generate_asymmetric_publicKeyParsesWithJcaAndHasTheSize(KeyAlgorithm alg) throws Exception {
    GeneratedKey k = key(alg);
    assertNotNull(k.publicKeyDer());
    assertArrayEquals(k.publicKeyDer(), backend.publicKey(k.handle()));
    PublicKey pub = KeyFactory.getInstance(alg.isEc() ? "EC" : "RSA")
        .generatePublic(new X509EncodedKeySpec(k.publicKeyDer()));
    if (alg.isEc()) {
      assertEquals(alg.keyBits(), ((ECPublicKey) pub).getParams().getCurve().getField().getFieldSize());
    } else {
      RSAPublicKey rsa = (RSAPublicKey) pub;
      assertEquals(alg.keyBits(), rsa.getModulus().bitLength());
      assertEquals(65537, rsa.getPublicExponent().intValueExact());
    }
  }

  @ParameterizedTest
  @MethodSource("symmetricAlgorithms")
  void generate_symmetric_hasNoPublicKey(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    assertNull(k.publicKeyDer());
    assertKind(Kind.INVALID_INPUT, () -> backend.publicKey(k.handle()));
  }

  // --- sign ---------------------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource("signAlgorithms")
  void sign_digest_verifiesWithJcaOverTheDataAndWithSignatureVerifier(KeyAlgorithm alg) throws Exception {
    GeneratedKey k = key(alg);
    byte[] data = randomBytes(1000);
    byte[] sig = backend.sign(k.handle(), alg.digest(data));
    assertTrue(jcaVerify(alg, k.publicKeyDer(), data, sig), "JCA rejects the signature");
    assertTrue(SignatureVerifier.verifyDigest(alg, k.publicKeyDer(), alg.digest(data), sig));
    if (alg.isRsa()) assertEquals(alg.keyBits() / 8, sig.length);
  }

  @ParameterizedTest
  @MethodSource("signAlgorithms")
  void sign_tamperedSignature_doesNotVerify(KeyAlgorithm alg) throws Exception {
    GeneratedKey k = key(alg);
    byte[] data = randomBytes(100);
    byte[] sig = backend.sign(k.handle(), alg.digest(data));
    byte[] bad = sig.clone();
    bad[bad.length - 1] ^= 0x01; // inside the last integer for ECDSA DER, keeps the DER well-formed
    assertFalse(jcaVerify(alg, k.publicKeyDer(), data, bad));
    assertFalse(SignatureVerifier.verifyDigest(alg, k.publicKeyDer(), alg.digest(data), bad));
  }

  @ParameterizedTest
  @MethodSource("signAlgorithms")
  void sign_otherData_doesNotVerify(KeyAlgorithm alg) throws Exception {
    GeneratedKey k = key(alg);
    byte[] sig = backend.sign(k.handle(), alg.digest("one".getBytes(StandardCharsets.UTF_8)));
    byte[] other = "two".getBytes(StandardCharsets.UTF_8);
    assertFalse(jcaVerify(alg, k.publicKeyDer(), other, sig));
    assertFalse(SignatureVerifier.verifyDigest(alg, k.publicKeyDer(), alg.digest(other), sig));
  }

  @ParameterizedTest
  @MethodSource("signAlgorithms")
  void sign_wrongDigestLength_isInvalidInput(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    int n = alg.digestLength();
    for (int len : new int[] {0, n - 1, n + 1, n == 32 ? 48 : 32}) {
      assertKind(Kind.INVALID_INPUT, () -> backend.sign(k.handle(), new byte[len]));
    }
    assertKind(Kind.INVALID_INPUT, () -> backend.sign(k.handle(), null));
  }

  @ParameterizedTest
  @MethodSource("signAlgorithms")
  void signatureVerifier_wrongDigestLength_isInvalidInput(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    byte[] sig = backend.sign(k.handle(), new byte[alg.digestLength()]);
    assertKind(Kind.INVALID_INPUT,
        () -> SignatureVerifier.verifyDigest(alg, k.publicKeyDer(), new byte[alg.digestLength() + 1], sig));
  }

  // --- AEAD ---------------------------------------------------------------------------------

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 31, 64 * 1024})
  void encrypt_thenDecrypt_givesThePlaintextBack(int size) {
    for (KeyAlgorithm alg : aeadAlgorithms().toList()) {
      if (!backend.describe().supports(alg)) continue;
      GeneratedKey k = key(alg);
      byte[] plaintext = randomBytes(size);
      byte[] aad = "context".getBytes(StandardCharsets.UTF_8);
      byte[] payload = backend.encrypt(k.handle(), plaintext, aad);
      assertArrayEquals(plaintext, backend.decrypt(k.handle(), payload, aad));
      byte[] noAad = backend.encrypt(k.handle(), plaintext, new byte[0]);
      assertArrayEquals(plaintext, backend.decrypt(k.handle(), noAad, new byte[0]));
    }
  }

  @ParameterizedTest
  @MethodSource("aeadAlgorithms")
  void encrypt_samePlaintextTwice_givesDifferentPayloads(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    byte[] plaintext = "same".getBytes(StandardCharsets.UTF_8);
    byte[] a = backend.encrypt(k.handle(), plaintext, null);
    byte[] b = backend.encrypt(k.handle(), plaintext, null);
    assertFalse(Arrays.equals(a, b));
    assertFalse(Arrays.equals(Arrays.copyOf(a, 12), Arrays.copyOf(b, 12)), "nonce reused");
  }

  @ParameterizedTest
  @MethodSource("aeadAlgorithms")
  void decrypt_wrongAad_isInvalidInput(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    byte[] payload = backend.encrypt(k.handle(), randomBytes(40), bytes("aad-1"));
    assertDecryptionFailed(() -> backend.decrypt(k.handle(), payload, bytes("aad-2")));
    assertDecryptionFailed(() -> backend.decrypt(k.handle(), payload, new byte[0]));
  }

  @ParameterizedTest
  @MethodSource("aeadAlgorithms")
  void decrypt_flippedBit_isInvalidInput(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    byte[] payload = backend.encrypt(k.handle(), randomBytes(40), bytes("aad"));
    for (int i : new int[] {0, payload.length / 2, payload.length - 1}) { // nonce, ciphertext, tag
      byte[] bad = payload.clone();
      bad[i] ^= 0x04;
      assertDecryptionFailed(() -> backend.decrypt(k.handle(), bad, bytes("aad")));
    }
  }

  @ParameterizedTest
  @MethodSource("aeadAlgorithms")
  void decrypt_truncatedPayload_isInvalidInput(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    byte[] payload = backend.encrypt(k.handle(), randomBytes(40), null);
    for (int len : new int[] {0, 1, 12, 27, 28, payload.length - 1}) {
      byte[] cut = Arrays.copyOf(payload, len);
      assertDecryptionFailed(() -> backend.decrypt(k.handle(), cut, null));
    }
    assertKind(Kind.INVALID_INPUT, () -> backend.decrypt(k.handle(), null, null));
  }

  @ParameterizedTest
  @MethodSource("aeadAlgorithms")
  void decrypt_underAnotherKey_isInvalidInput(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    GeneratedKey other = backend.generate(new KeySpec(alg));
    byte[] payload = backend.encrypt(k.handle(), randomBytes(40), null);
    assertDecryptionFailed(() -> backend.decrypt(other.handle(), payload, null));
  }

  // --- asymmetric decryption ----------------------------------------------------------------

  @ParameterizedTest
  @MethodSource("decryptAlgorithms")
  void asymmetricDecrypt_jcaOaepCiphertext_givesThePlaintextBack(KeyAlgorithm alg) throws Exception {
    GeneratedKey k = key(alg);
    for (byte[] plaintext : List.of(randomBytes(32), new byte[0], randomBytes(alg.keyBits() / 8 - 66))) {
      byte[] ct = jcaOaepEncrypt(k.publicKeyDer(), plaintext);
      assertArrayEquals(plaintext, backend.asymmetricDecrypt(k.handle(), ct));
    }
  }

  @ParameterizedTest
  @MethodSource("decryptAlgorithms")
  void asymmetricDecrypt_garbage_isInvalidInput(KeyAlgorithm alg) throws Exception {
    GeneratedKey k = key(alg);
    int n = alg.keyBits() / 8;
    byte[] garbage = randomBytes(n);
    garbage[0] = 0x00; // below the modulus, so only the padding check can fail
    assertDecryptionFailed(() -> backend.asymmetricDecrypt(k.handle(), garbage));
    assertDecryptionFailed(() -> backend.asymmetricDecrypt(k.handle(), randomBytes(n + 1)));
    byte[] flipped = jcaOaepEncrypt(k.publicKeyDer(), bytes("secret"));
    flipped[n / 2] ^= 0x01;
    assertDecryptionFailed(() -> backend.asymmetricDecrypt(k.handle(), flipped));
    assertKind(Kind.INVALID_INPUT, () -> backend.asymmetricDecrypt(k.handle(), new byte[0]));
  }

  // --- MAC ----------------------------------------------------------------------------------

  @ParameterizedTest
  @MethodSource("macAlgorithms")
  void mac_sameData_sameMacOf32Bytes(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    byte[] data = randomBytes(500);
    byte[] a = backend.mac(k.handle(), data);
    assertEquals(32, a.length);
    assertArrayEquals(a, backend.mac(k.handle(), data.clone()));
    assertFalse(Arrays.equals(a, backend.mac(k.handle(), randomBytes(500))), "other data, same MAC");
    assertEquals(32, backend.mac(k.handle(), new byte[0]).length);
  }

  @ParameterizedTest
  @MethodSource("macAlgorithms")
  void mac_otherKey_otherMac(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    GeneratedKey other = backend.generate(new KeySpec(alg));
    byte[] data = bytes("data");
    assertFalse(Arrays.equals(backend.mac(k.handle(), data), backend.mac(other.handle(), data)));
  }

  // --- random -------------------------------------------------------------------------------

  @ParameterizedTest
  @ValueSource(ints = {1, 16, 32, 1000})
  void randomBytes_givesTheRequestedLengthAndFreshBytes(int length) {
    Assumptions.assumeTrue(backend.describe().supports(Capability.RANDOM));
    byte[] a = backend.randomBytes(length);
    byte[] b = backend.randomBytes(length);
    assertEquals(length, a.length);
    assertEquals(length, b.length);
    if (length >= 16) assertFalse(Arrays.equals(a, b), "two draws are equal");
  }

  @Test
  void randomBytes_nonPositiveLength_isInvalidInput() {
    Assumptions.assumeTrue(backend.describe().supports(Capability.RANDOM));
    assertKind(Kind.INVALID_INPUT, () -> backend.randomBytes(0));
    assertKind(Kind.INVALID_INPUT, () -> backend.randomBytes(-1));
  }

  // --- handles across restarts, corrupt blobs, wrong purpose --------------------------------

  @ParameterizedTest
  @MethodSource("allAlgorithms")
  void handle_afterReopen_stillWorks(KeyAlgorithm alg) throws Exception {
    GeneratedKey k = key(alg);
    byte[] data = bytes("survives a restart");
    byte[] before = useKey(backend, alg, k);
    try (KeyProtectionBackend reopened = reopenBackend()) {
      switch (alg.kind()) {
        case SYMMETRIC_AEAD -> assertArrayEquals(data, reopened.decrypt(k.handle(), before, data));
        case MAC -> assertArrayEquals(before, reopened.mac(k.handle(), data));
        case SIGN -> {
          assertArrayEquals(k.publicKeyDer(), reopened.publicKey(k.handle()));
          assertTrue(jcaVerify(alg, k.publicKeyDer(), data, reopened.sign(k.handle(), alg.digest(data))));
        }
        case ASYMMETRIC_DECRYPT ->
            assertArrayEquals(data, reopened.asymmetricDecrypt(k.handle(), jcaOaepEncrypt(k.publicKeyDer(), data)));
      }
    }
  }

  @ParameterizedTest
  @MethodSource("allAlgorithms")
  void corruptedBlob_isKeyInvalid(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    byte[] blob = k.handle().blob();
    blob[blob.length / 2] ^= 0x10;
    KeyHandle corrupt = new KeyHandle(blob);
    assertKind(Kind.KEY_INVALID, () -> useKey(backend, alg, new GeneratedKey(corrupt, k.publicKeyDer())));
  }

  @ParameterizedTest
  @MethodSource("allAlgorithms")
  void truncatedOrForeignBlob_isKeyInvalid(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    byte[] blob = k.handle().blob();
    KeyHandle truncated = new KeyHandle(Arrays.copyOf(blob, blob.length / 2));
    assertKind(Kind.KEY_INVALID, () -> useKey(backend, alg, new GeneratedKey(truncated, k.publicKeyDer())));
    KeyHandle garbage = new KeyHandle(randomBytes(blob.length));
    assertKind(Kind.KEY_INVALID, () -> useKey(backend, alg, new GeneratedKey(garbage, k.publicKeyDer())));
  }

  @ParameterizedTest
  @MethodSource("allAlgorithms")
  void operationNotAllowedByTheAlgorithm_isInvalidInput(KeyAlgorithm alg) {
    GeneratedKey k = key(alg);
    KeyHandle h = k.handle();
    Map<KeyAlgorithm.Kind, Executable> ops = Map.of(
        KeyAlgorithm.Kind.SYMMETRIC_AEAD, () -> backend.encrypt(h, bytes("x"), null),
        KeyAlgorithm.Kind.SIGN, () -> backend.sign(h, new byte[alg.digestLength()]),
        KeyAlgorithm.Kind.ASYMMETRIC_DECRYPT, () -> backend.asymmetricDecrypt(h, new byte[256]),
        KeyAlgorithm.Kind.MAC, () -> backend.mac(h, bytes("x")));
    int checked = 0;
    for (var op : ops.entrySet()) {
      if (op.getKey() == alg.kind()) continue;
      assertKind(Kind.INVALID_INPUT, op.getValue());
      checked++;
    }
    if (alg.kind() != KeyAlgorithm.Kind.SYMMETRIC_AEAD) {
      byte[] payload = new byte[64];
      assertKind(Kind.INVALID_INPUT, () -> backend.decrypt(h, payload, null));
    }
    assertEquals(3, checked);
  }

  @ParameterizedTest
  @MethodSource("quickAlgorithms")
  void destroy_isIdempotentAndTheBlobStaysUsable(KeyAlgorithm alg) throws Exception {
    assumeSupported(alg);
    GeneratedKey k = backend.generate(new KeySpec(alg));
    useKey(backend, alg, k);
    backend.destroy(k.handle());
    backend.destroy(k.handle());
    // the backend is stateless: a destroyed cache entry or unloaded object is reloaded from the blob
    useKey(backend, alg, k);
  }

  // --- concurrency --------------------------------------------------------------------------

  @Test
  void concurrentUse_8threadsMixedOps_allCorrect() throws Exception {
    List<KeyAlgorithm> algs = Stream.of(KeyAlgorithm.AES_256_GCM, KeyAlgorithm.HMAC_SHA256,
            KeyAlgorithm.EC_SIGN_P256_SHA256, KeyAlgorithm.RSA_SIGN_PSS_2048_SHA256,
            KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256)
        .filter(a -> backend.describe().supports(a)).toList();
    Assumptions.assumeFalse(algs.isEmpty());
    Map<KeyAlgorithm, GeneratedKey> k = new ConcurrentHashMap<>();
    for (KeyAlgorithm a : algs) k.put(a, key(a));
    // a second AES key that no other test touched, so its first unwrap races across threads
    GeneratedKey fresh = backend.describe().supports(KeyAlgorithm.AES_256_GCM) ? backend.generate(new KeySpec(KeyAlgorithm.AES_256_GCM)) : null;
    byte[] macData = bytes("mac data");
    byte[] expectedMac = k.containsKey(KeyAlgorithm.HMAC_SHA256)
        ? backend.mac(k.get(KeyAlgorithm.HMAC_SHA256).handle(), macData) : null;

    int threads = 8;
    int opsPerThread = 200;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    CountDownLatch start = new CountDownLatch(1);
    List<Future<Integer>> results = new ArrayList<>();
    try {
      for (int t = 0; t < threads; t++) {
        int thread = t;
        Callable<Integer> task = () -> {
          start.await();
          SecureRandom r = new SecureRandom();
          int done = 0;
          for (int i = 0; i < opsPerThread; i++) {
            KeyAlgorithm alg = algs.get((thread + i) % algs.size());
            GeneratedKey key = k.get(alg);
            byte[] data = new byte[1 + r.nextInt(300)];
            r.nextBytes(data);
            switch (alg.kind()) {
              case SYMMETRIC_AEAD -> {
                GeneratedKey use = fresh != null && i % 2 == 0 ? fresh : key;
                byte[] aad = ("t" + thread + "i" + i).getBytes(StandardCharsets.UTF_8);
                assertArrayEquals(data, backend.decrypt(use.handle(), backend.encrypt(use.handle(), data, aad), aad));
              }
              case MAC -> assertArrayEquals(expectedMac, backend.mac(key.handle(), macData));
              case SIGN -> assertTrue(jcaVerify(alg, key.publicKeyDer(), data, backend.sign(key.handle(), alg.digest(data))));
              case ASYMMETRIC_DECRYPT -> {
                byte[] pt = Arrays.copyOf(data, Math.min(data.length, 100));
                assertArrayEquals(pt, backend.asymmetricDecrypt(key.handle(), jcaOaepEncrypt(key.publicKeyDer(), pt)));
              }
            }
            done++;
          }
          return done;
        };
        results.add(pool.submit(task));
      }
      start.countDown();
      int total = 0;
      for (Future<Integer> f : results) total += f.get(5, TimeUnit.MINUTES);
      assertEquals(threads * opsPerThread, total);
    } finally {
      pool.shutdownNow();
    }
  }

  // --- import -------------------------------------------------------------------------------

  /** JCA key pairs by curve / modulus size, shared by the algorithms of that size. */
  private final Map<String, java.security.KeyPair> importPairs = new ConcurrentHashMap<>();

  private java.security.KeyPair importPair(KeyAlgorithm alg) {
    return importPairs.computeIfAbsent((alg.isEc() ? "EC" : "RSA") + alg.keyBits(), id -> {
      try {
        java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance(alg.isEc() ? "EC" : "RSA");
        if (alg.isEc()) {
          g.initialize(new java.security.spec.ECGenParameterSpec(alg.keyBits() == 384 ? "secp384r1" : "secp256r1"));
        } else {
          g.initialize(alg.keyBits());
        }
        return g.generateKeyPair();
      } catch (java.security.GeneralSecurityException e) {
        throw new IllegalStateException(e);
      }
    });
  }

  @ParameterizedTest
  @MethodSource("allAlgorithms")
  void importKey_jcaMaterial_worksAsTheOriginalKey_andAfterReopen(KeyAlgorithm alg) throws Exception {
    assumeSupported(alg);
    Assumptions.assumeTrue(backend.describe().supports(Capability.IMPORT), "no IMPORT capability");
    byte[] raw = alg.isAsymmetric() ? null : randomBytes(32);
    java.security.KeyPair pair = alg.isAsymmetric() ? importPair(alg) : null;
    GeneratedKey k;
    try (KeyMaterial m = KeyMaterial.parse(alg, raw != null ? raw : pair.getPrivate().getEncoded())) {
      k = backend.importKey(new KeySpec(alg), m);
    }
    byte[] data = bytes("imported material");
    for (KeyProtectionBackend b : new KeyProtectionBackend[] {backend, null}) {
      try (KeyProtectionBackend reopened = b == null ? reopenBackend() : null) {
        KeyProtectionBackend use = b == null ? reopened : b;
        switch (alg.kind()) {
          case MAC -> {
            javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
            mac.init(new javax.crypto.spec.SecretKeySpec(raw, "HmacSHA256"));
            assertArrayEquals(mac.doFinal(data), use.mac(k.handle(), data));
          }
          case SYMMETRIC_AEAD -> assertArrayEquals(data, use.decrypt(k.handle(), use.encrypt(k.handle(), data, data), data));
          case SIGN -> {
            assertArrayEquals(pair.getPublic().getEncoded(), use.publicKey(k.handle()));
            assertTrue(jcaVerify(alg, pair.getPublic().getEncoded(), data, use.sign(k.handle(), alg.digest(data))));
          }
          case ASYMMETRIC_DECRYPT -> assertArrayEquals(data,
              use.asymmetricDecrypt(k.handle(), jcaOaepEncrypt(pair.getPublic().getEncoded(), data)));
        }
      }
    }
    if (alg.isAsymmetric()) assertArrayEquals(pair.getPublic().getEncoded(), k.publicKeyDer());
    else assertNull(k.publicKeyDer());
  }

  @Test
  void importKey_materialCheckedAsAnotherAlgorithm_isInvalidInput() {
    Assumptions.assumeTrue(backend.describe().supports(Capability.IMPORT), "no IMPORT capability");
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.HMAC_SHA256, randomBytes(32))) {
      assertKind(Kind.INVALID_INPUT, () -> backend.importKey(new KeySpec(KeyAlgorithm.AES_256_GCM), m));
    }
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.EC_SIGN_P256_SHA256,
        importPair(KeyAlgorithm.EC_SIGN_P256_SHA256).getPrivate().getEncoded())) {
      assertKind(Kind.INVALID_INPUT, () -> backend.importKey(new KeySpec(KeyAlgorithm.EC_SIGN_P384_SHA384), m));
    }
    assertKind(Kind.INVALID_INPUT, () -> backend.importKey(new KeySpec(KeyAlgorithm.AES_256_GCM), null));
  }

  // --- helpers ------------------------------------------------------------------------------

  /** Runs the algorithm's main operation; for AEAD returns a payload of "survives a restart" under that AAD. */
  private byte[] useKey(KeyProtectionBackend b, KeyAlgorithm alg, GeneratedKey k) throws Exception {
    byte[] data = bytes("survives a restart");
    return switch (alg.kind()) {
      case SYMMETRIC_AEAD -> {
        byte[] payload = b.encrypt(k.handle(), data, data);
        assertArrayEquals(data, b.decrypt(k.handle(), payload, data));
        yield payload;
      }
      case MAC -> {
        byte[] tag = b.mac(k.handle(), data);
        assertEquals(alg.digestLength(), tag.length);
        assertArrayEquals(tag, b.mac(k.handle(), data), "the same key and data give the same tag");
        assertFalse(Arrays.equals(tag, b.mac(k.handle(), bytes("other data"))), "other data, another tag");
        yield tag;
      }
      case SIGN -> {
        byte[] sig = b.sign(k.handle(), alg.digest(data));
        assertTrue(jcaVerify(alg, k.publicKeyDer(), data, sig));
        yield sig;
      }
      case ASYMMETRIC_DECRYPT -> {
        byte[] pt = b.asymmetricDecrypt(k.handle(), jcaOaepEncrypt(k.publicKeyDer(), data));
        assertArrayEquals(data, pt);
        yield pt;
      }
    };
  }

  /** Independent verification over the data with the JDK's signature algorithms. */
  protected static boolean jcaVerify(KeyAlgorithm alg, byte[] spki, byte[] data, byte[] sig) throws Exception {
    PublicKey pub = KeyFactory.getInstance(alg.isEc() ? "EC" : "RSA").generatePublic(new X509EncodedKeySpec(spki));
    Signature s;
    if (alg.isEc()) {
      s = Signature.getInstance(alg == KeyAlgorithm.EC_SIGN_P384_SHA384 ? "SHA384withECDSA" : "SHA256withECDSA");
    } else if (alg.isPss()) {
      s = Signature.getInstance("RSASSA-PSS");
      s.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
    } else {
      s = Signature.getInstance("SHA256withRSA");
    }
    s.initVerify(pub);
    s.update(data);
    try {
      return s.verify(sig);
    } catch (SignatureException e) {
      return false; // malformed: not a valid signature
    }
  }

  protected static byte[] jcaOaepEncrypt(byte[] spki, byte[] plaintext) throws Exception {
    PublicKey pub = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(spki));
    Cipher c = Cipher.getInstance("RSA/ECB/OAEPPadding");
    c.init(Cipher.ENCRYPT_MODE, pub,
        new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT));
    return c.doFinal(plaintext);
  }

  protected static BackendException assertKind(Kind kind, Executable op) {
    BackendException e = assertThrows(BackendException.class, op);
    assertEquals(kind, e.kind(), () -> "message: " + e.getMessage());
    return e;
  }

  private static void assertDecryptionFailed(Executable op) {
    BackendException e = assertKind(Kind.INVALID_INPUT, op);
    assertEquals("decryption failed", e.getMessage());
  }

  protected static byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    RNG.nextBytes(b);
    return b;
  }

  protected static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }
}
