package io.tpmkms.protection.software;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.AsymmetricCrypto;
import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.Capability;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeyMaterial;
import io.tpmkms.protection.KeyProtectionBackend;
import io.tpmkms.protection.KeyProtectionBackendContract;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.ProtectionLevel;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.stream.Stream;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.crypto.digests.SHA256Digest;
import org.bouncycastle.crypto.generators.HKDFBytesGenerator;
import org.bouncycastle.crypto.params.HKDFParameters;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** The backend contract on the software backend, plus what only the software backend promises. */
class SoftwareKeyProtectionBackendTest extends KeyProtectionBackendContract {

  private final Path dir;
  private final Path seedFile;

  SoftwareKeyProtectionBackendTest() throws IOException {
    dir = Files.createTempDirectory("tpmkms-software-");
    seedFile = dir.resolve("keys/root.seed");
  }

  @AfterAll
  void deleteTempDir() throws IOException {
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
    }
  }

  /** Where EC and RSA run: the providers chosen by default (native where it loads); a subclass forces the JDK's. */
  protected AsymmetricCrypto crypto() {
    return AsymmetricCrypto.current();
  }

  @Override
  protected KeyProtectionBackend openBackend() {
    return new SoftwareKeyProtectionBackend(new FileRootKeySource(seedFile), 10_000, crypto());
  }

  @Override
  protected KeyProtectionBackend reopenBackend() {
    return new SoftwareKeyProtectionBackend(new FileRootKeySource(seedFile), 10_000, crypto());
  }

  private Path freshSeedPath(String name) throws IOException {
    return Files.createTempDirectory(dir, name).resolve("sub/dir/root.seed");
  }

  // --- root seed ----------------------------------------------------------------------------

  @Test
  void describe_isSoftwareWithEveryAlgorithm() {
    var d = backend().describe();
    assertEquals("software", d.id());
    assertEquals(ProtectionLevel.SOFTWARE, d.level());
    assertEquals(EnumSet.of(Capability.GENERATE, Capability.IMPORT, Capability.SIGN, Capability.ENCRYPT,
        Capability.ASYMMETRIC_DECRYPT, Capability.MAC, Capability.RANDOM), d.capabilities());
    assertEquals(EnumSet.allOf(KeyAlgorithm.class), d.algorithms());
  }

  @Test
  void seed_firstStart_createsA0600FileAndTheSecondStartReusesIt() throws Exception {
    Path seed = freshSeedPath("first");
    GeneratedKey k;
    try (var b = new SoftwareKeyProtectionBackend(new FileRootKeySource(seed))) {
      k = b.generate(new KeySpec(KeyAlgorithm.AES_256_GCM));
    }
    assertEquals(32, Files.size(seed));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(seed)));
    assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(seed.getParent())));
    try (Stream<Path> siblings = Files.list(seed.getParent())) {
      assertEquals(List.of(seed), siblings.toList(), "temporary file left behind");
    }
    byte[] first = Files.readAllBytes(seed);
    byte[] read = new FileRootKeySource(seed).rootSeed();
    assertArrayEquals(first, read);
    assertArrayEquals(first, Files.readAllBytes(seed), "seed rewritten on second start");
    try (var b = new SoftwareKeyProtectionBackend(new FileRootKeySource(seed))) {
      byte[] payload = b.encrypt(k.handle(), bytes("x"), null);
      assertArrayEquals(bytes("x"), b.decrypt(k.handle(), payload, null));
    }
  }

  @Test
  void seed_groupReadable_isRefused() throws Exception {
    Path seed = freshSeedPath("group");
    new FileRootKeySource(seed).rootSeed();
    Files.setPosixFilePermissions(seed, PosixFilePermissions.fromString("rw-r-----"));
    BackendException e = assertKind(Kind.KEY_INVALID, () -> new SoftwareKeyProtectionBackend(new FileRootKeySource(seed)));
    assertTrue(e.getMessage().contains("group or others"), e.getMessage());
    Files.setPosixFilePermissions(seed, PosixFilePermissions.fromString("rw----r--"));
    assertKind(Kind.KEY_INVALID, () -> new FileRootKeySource(seed).rootSeed());
  }

  /**
   * A Kubernetes Secret mounted with fsGroup: the file is reached through the kubelet's
   * {@code ..data} symlink, read-only and group-readable by the pod's group. Accepted when that
   * group is the process's own; a writable file, or another group, is still refused.
   */
  @Test
  void seed_asMountedSecret_readOnlyOurGroup_isAccepted_otherGroupRefused() throws Exception {
    Path made = freshSeedPath("secret-src");
    byte[] bytes = new FileRootKeySource(made).rootSeed();
    Path mount = Files.createTempDirectory("secret-mount");
    Path data = Files.createDirectory(mount.resolve("..2026_12_06_07_00_00.1"));
    Files.write(data.resolve("software-root.key"), bytes);
    Files.createSymbolicLink(mount.resolve("..data"), data.getFileName());
    Path seed = mount.resolve("software-root.key");
    Files.createSymbolicLink(seed, Path.of("..data/software-root.key"));
    Path real = data.resolve("software-root.key");
    Object ourGid = Files.getAttribute(Path.of("/proc/self"), "unix:gid");
    Files.setAttribute(real, "unix:gid", ourGid);
    Files.setPosixFilePermissions(real, PosixFilePermissions.fromString("r--r-----"));
    assertArrayEquals(bytes, new FileRootKeySource(seed).rootSeed(), "the mounted Secret is read");

    Files.setPosixFilePermissions(real, PosixFilePermissions.fromString("rw-r-----"));
    assertKind(Kind.KEY_INVALID, () -> new FileRootKeySource(seed).rootSeed());
    Files.setPosixFilePermissions(real, PosixFilePermissions.fromString("r--r--r--"));
    assertKind(Kind.KEY_INVALID, () -> new FileRootKeySource(seed).rootSeed());

    Files.setPosixFilePermissions(real, PosixFilePermissions.fromString("r--r-----"));
    int otherGid = ((Integer) ourGid) + 4242;
    try {
      Files.setAttribute(real, "unix:gid", otherGid);
    } catch (java.io.IOException notPermitted) {
      org.junit.jupiter.api.Assumptions.abort("cannot change a file's group here (not root): " + notPermitted);
    }
    assertKind(Kind.KEY_INVALID, () -> new FileRootKeySource(seed).rootSeed());
  }

  @Test
  void seed_wrongLength_isRefused() throws Exception {
    Path seed = freshSeedPath("length");
    Files.createDirectories(seed.getParent());
    Files.write(seed, new byte[31]);
    Files.setPosixFilePermissions(seed, PosixFilePermissions.fromString("rw-------"));
    BackendException e = assertKind(Kind.KEY_INVALID, () -> new FileRootKeySource(seed).rootSeed());
    assertTrue(e.getMessage().contains("31 bytes, expected 32"), e.getMessage());
    Files.write(seed, new byte[0]);
    assertKind(Kind.KEY_INVALID, () -> new SoftwareKeyProtectionBackend(new FileRootKeySource(seed)));
  }

  // --- blobs --------------------------------------------------------------------------------

  @Test
  void blob_fromAnotherSeed_isKeyInvalidMentioningTheRoot() throws Exception {
    GeneratedKey k;
    try (var other = new SoftwareKeyProtectionBackend(new FileRootKeySource(freshSeedPath("other")))) {
      k = other.generate(new KeySpec(KeyAlgorithm.AES_256_GCM));
    }
    BackendException e = assertKind(Kind.KEY_INVALID, () -> backend().encrypt(k.handle(), bytes("x"), null));
    assertTrue(e.getMessage().contains("different root key"), e.getMessage());
  }

  @Test
  void blob_header_followsFormatV1() throws Exception {
    byte[] blob = key(KeyAlgorithm.HMAC_SHA256).handle().blob();
    assertArrayEquals("TKMS".getBytes(StandardCharsets.US_ASCII), Arrays.copyOf(blob, 4));
    assertEquals(0x01, blob[4]);
    assertEquals(0x01, blob[5]);
    assertEquals(40, ((blob[6] & 0xff) << 8) | (blob[7] & 0xff));
    assertArrayEquals(expectedRootId(Files.readAllBytes(seedFile)), Arrays.copyOfRange(blob, 8, 16));
    assertEquals(28 + 32 + 16, blob.length);
  }

  @Test
  void blob_badHeaderFields_areKeyInvalidWithTheReason() {
    KeyHandle h = key(KeyAlgorithm.AES_256_GCM).handle();
    assertBlobRefused(h, 0, "bad magic");
    assertBlobRefused(h, 4, "unknown key blob format version");
    assertBlobRefused(h, 5, "not a software key blob");
    assertBlobRefused(h, 7, "integrity check failed"); // algorithm code 1 -> 0x..05? caught by fromCode or the tag
    assertBlobRefused(h, 12, "different root key");
    assertBlobRefused(h, 20, "integrity check failed"); // nonce
  }

  private void assertBlobRefused(KeyHandle h, int index, String reason) {
    byte[] blob = h.blob();
    blob[index] ^= 0x02;
    BackendException e = assertKind(Kind.KEY_INVALID, () -> backend().encrypt(new KeyHandle(blob), bytes("x"), null));
    if (index == 7) {
      assertTrue(e.getMessage().contains("unknown algorithm code") || e.getMessage().contains(reason), e.getMessage());
    } else {
      assertTrue(e.getMessage().contains(reason), e.getMessage());
    }
  }

  @Test
  void blob_neverHoldsTheRawKey_provenByAnIndependentUnwrap() throws Exception {
    byte[] seed = Files.readAllBytes(seedFile);
    // AES: unwrap by the documented format, then decrypt the backend's payload with plain JCA
    GeneratedKey aes = key(KeyAlgorithm.AES_256_GCM);
    byte[] rawAes = independentUnwrap(seed, aes.handle().blob(), KeyAlgorithm.AES_256_GCM);
    assertEquals(32, rawAes.length);
    assertEquals(-1, indexOf(aes.handle().blob(), rawAes), "raw AES key inside the blob");
    byte[] aad = bytes("aad");
    byte[] payload = backend().encrypt(aes.handle(), bytes("independent"), aad);
    assertEquals(12 + "independent".length() + 16, payload.length);
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(rawAes, "AES"), new GCMParameterSpec(128, payload, 0, 12));
    c.updateAAD(aad);
    assertArrayEquals(bytes("independent"), c.doFinal(payload, 12, payload.length - 12));

    // HMAC: the unwrapped key gives the backend's MAC under plain JCA
    GeneratedKey hmac = key(KeyAlgorithm.HMAC_SHA256);
    byte[] rawHmac = independentUnwrap(seed, hmac.handle().blob(), KeyAlgorithm.HMAC_SHA256);
    assertEquals(-1, indexOf(hmac.handle().blob(), rawHmac), "raw HMAC key inside the blob");
    Mac m = Mac.getInstance("HmacSHA256");
    m.init(new SecretKeySpec(rawHmac, "HmacSHA256"));
    assertArrayEquals(m.doFinal(bytes("data")), backend().mac(hmac.handle(), bytes("data")));

    // EC: length-prefixed SPKI, then PKCS#8 that signs verifiably under the backend's public key
    GeneratedKey ec = key(KeyAlgorithm.EC_SIGN_P256_SHA256);
    byte[] material = independentUnwrap(seed, ec.handle().blob(), KeyAlgorithm.EC_SIGN_P256_SHA256);
    int spkiLength = ((material[0] & 0xff) << 8) | (material[1] & 0xff);
    assertArrayEquals(ec.publicKeyDer(), Arrays.copyOfRange(material, 2, 2 + spkiLength));
    PrivateKey priv = KeyFactory.getInstance("EC")
        .generatePrivate(new PKCS8EncodedKeySpec(Arrays.copyOfRange(material, 2 + spkiLength, material.length)));
    Signature s = Signature.getInstance("SHA256withECDSA");
    s.initSign(priv);
    s.update(bytes("data"));
    assertTrue(jcaVerify(KeyAlgorithm.EC_SIGN_P256_SHA256, ec.publicKeyDer(), bytes("data"), s.sign()));
  }

  @Test
  void blob_ofAnImportedKey_isFormatV2WithTheImportedFlag_andHoldsTheMaterial() throws Exception {
    SoftwareKeyProtectionBackend b = (SoftwareKeyProtectionBackend) backend();
    byte[] raw = randomBytes(32);
    GeneratedKey k;
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.HMAC_SHA256, raw)) {
      k = b.importKey(new KeySpec(KeyAlgorithm.HMAC_SHA256), m);
    }
    byte[] blob = k.handle().blob();
    assertArrayEquals(new byte[] {'T', 'K', 'M', 'S', 2, 1, 0, 40, 1}, Arrays.copyOf(blob, 9));
    assertArrayEquals(expectedRootId(Files.readAllBytes(seedFile)), Arrays.copyOfRange(blob, 9, 17));
    assertEquals(29 + 32 + 16, blob.length);
    assertEquals(-1, indexOf(blob, raw), "raw key inside the blob");
    // unwrap by the documented v2 layout: nonce at 17, AAD = the 29-byte header
    byte[] kek = new byte[32];
    HKDFBytesGenerator hkdf = new HKDFBytesGenerator(new SHA256Digest());
    hkdf.init(new HKDFParameters(Files.readAllBytes(seedFile), new byte[0],
        "tpmkms/software/kek/v1".getBytes(StandardCharsets.US_ASCII)));
    hkdf.generateBytes(kek, 0, 32);
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(kek, "AES"), new GCMParameterSpec(128, blob, 17, 12));
    c.updateAAD(blob, 0, 29);
    assertArrayEquals(raw, c.doFinal(blob, 29, blob.length - 29));
    assertTrue(b.imported(k.handle()));
    assertFalse(b.imported(key(KeyAlgorithm.HMAC_SHA256).handle()));
    // the flags are authenticated: setting EXPORTABLE (bit 1) on a blob does not make its key exportable
    byte[] exportable = blob.clone();
    exportable[8] = 3;
    assertTrue(assertKind(Kind.KEY_INVALID, () -> b.mac(new KeyHandle(exportable), bytes("x")))
        .getMessage().contains("integrity check failed"));
    assertTrue(assertKind(Kind.KEY_INVALID, () -> b.exportPolicy(new KeyHandle(exportable)))
        .getMessage().contains("integrity check failed"));
    // unknown flags, and a v2 blob without flags (never written), are refused
    byte[] cleared = blob.clone();
    cleared[8] = 0;
    assertTrue(assertKind(Kind.KEY_INVALID, () -> b.mac(new KeyHandle(cleared), bytes("x")))
        .getMessage().contains("unknown flags"));
    byte[] odd = blob.clone();
    odd[8] = 5;
    assertTrue(assertKind(Kind.KEY_INVALID, () -> b.mac(new KeyHandle(odd), bytes("x")))
        .getMessage().contains("unknown flags"));
  }

  @Test
  void generate_rsa4096Algorithms_give4096BitGeneratedKeys() throws Exception {
    SoftwareKeyProtectionBackend b = (SoftwareKeyProtectionBackend) backend();
    for (KeyAlgorithm alg : new KeyAlgorithm[] {KeyAlgorithm.RSA_SIGN_PKCS1_4096_SHA256,
        KeyAlgorithm.RSA_SIGN_PSS_4096_SHA256, KeyAlgorithm.RSA_DECRYPT_OAEP_4096_SHA256}) {
      GeneratedKey g = key(alg);
      var pub = (java.security.interfaces.RSAPublicKey) KeyFactory.getInstance("RSA")
          .generatePublic(new java.security.spec.X509EncodedKeySpec(g.publicKeyDer()));
      assertEquals(4096, pub.getModulus().bitLength(), alg.toString());
      assertFalse(b.imported(g.handle()));
    }
  }

  /** Follows docs/tpm-adapter.md, not the backend's code. */
  private static byte[] independentUnwrap(byte[] seed, byte[] blob, KeyAlgorithm expected) throws Exception {
    assertArrayEquals(new byte[] {'T', 'K', 'M', 'S', 1, 1}, Arrays.copyOf(blob, 6));
    assertEquals(expected.code(), ((blob[6] & 0xff) << 8) | (blob[7] & 0xff));
    byte[] kek = new byte[32];
    HKDFBytesGenerator hkdf = new HKDFBytesGenerator(new SHA256Digest());
    hkdf.init(new HKDFParameters(seed, new byte[0], "tpmkms/software/kek/v1".getBytes(StandardCharsets.US_ASCII)));
    hkdf.generateBytes(kek, 0, 32);
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(kek, "AES"), new GCMParameterSpec(128, blob, 16, 12));
    c.updateAAD(blob, 0, 28);
    return c.doFinal(blob, 28, blob.length - 28);
  }

  private static byte[] expectedRootId(byte[] seed) throws Exception {
    MessageDigest d = MessageDigest.getInstance("SHA-256");
    d.update("tpmkms/software/root-id/v1".getBytes(StandardCharsets.US_ASCII));
    d.update(seed);
    return Arrays.copyOf(d.digest(), 8);
  }

  private static int indexOf(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) continue outer;
      }
      return i;
    }
    return -1;
  }

  // --- cache --------------------------------------------------------------------------------

  @Test
  void cache_destroyEvictsAndCloseClears() throws Exception {
    var b = new SoftwareKeyProtectionBackend(new FileRootKeySource(seedFile));
    GeneratedKey k = b.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256));
    assertEquals(0, b.cachedKeyCount());
    b.mac(k.handle(), bytes("x"));
    b.mac(new KeyHandle(k.handle().blob()), bytes("x")); // an equal handle hits the same entry
    assertEquals(1, b.cachedKeyCount());
    b.destroy(k.handle());
    assertEquals(0, b.cachedKeyCount());
    b.mac(k.handle(), bytes("x"));
    b.close();
    assertEquals(0, b.cachedKeyCount());
    assertKind(Kind.UNAVAILABLE, () -> b.mac(k.handle(), bytes("x")));
  }

  @Test
  void cache_staysBoundedAndKeepsHotKeys() {
    try (var b = new SoftwareKeyProtectionBackend(new FileRootKeySource(seedFile), 16)) {
      GeneratedKey hot = b.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256));
      byte[] expected = b.mac(hot.handle(), bytes("x"));
      List<GeneratedKey> cold = new ArrayList<>();
      for (int i = 0; i < 200; i++) {
        GeneratedKey k = b.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256));
        cold.add(k);
        b.mac(k.handle(), bytes("x"));
        assertArrayEquals(expected, b.mac(hot.handle(), bytes("x")));
        assertTrue(b.cachedKeyCount() <= 16, "cache size " + b.cachedKeyCount());
      }
      for (GeneratedKey k : cold) assertFalse(Arrays.equals(expected, b.mac(k.handle(), bytes("x"))));
    }
  }
}
