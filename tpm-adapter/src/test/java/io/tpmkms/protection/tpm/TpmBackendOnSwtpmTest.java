package io.tpmkms.protection.tpm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyAttestation;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.SignatureVerifier;
import io.tpmkms.protection.tpm.internal.TpmBlob;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** What only the TPM backend promises: SRK identity, tpm2-tools interop, restarts, slot pressure, certify, sealing. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TpmBackendOnSwtpmTest {
  private static final org.jboss.logging.Logger LOG = org.jboss.logging.Logger.getLogger(TpmBackendOnSwtpmTest.class);
  private static final byte[] AUTH_SECRET = TpmKeyProtectionBackendTest.AUTH_SECRET;
  private Swtpm swtpm;
  private TpmKeyProtectionBackend backend;

  @BeforeAll
  void start() throws Exception {
    swtpm = Swtpm.startWithEkCertificate();
    backend = TpmKeyProtectionBackend.open(swtpm.config(), AUTH_SECRET);
  }

  @AfterAll
  void stop() throws Exception {
    if (backend != null) backend.close();
    if (swtpm != null) swtpm.close();
  }

  // --- identity and interop with tpm2-tools ---------------------------------------------

  /** The SRK attributes of the TCG provisioning guidance (noDA included); tpm2-tools' default lacks noDA. */
  static final String SRK_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt";

  @Test
  void srkName_equalsTpm2ToolsCreateprimaryEcc256WithNoDa() throws Exception {
    byte[] ours = backend.connection().srkName();
    backend.releaseConnection(); // swtpm serves one connection at a time
    assertArrayEquals(toolsSrkName(List.of("-a", SRK_ATTRIBUTES)), ours);
    assertEquals(34, ours.length);
    // without -a, tpm2_createprimary leaves noDA out: another template, another name
    assertFalse(Arrays.equals(toolsSrkName(List.of()), ours));
  }

  private byte[] toolsSrkName(List<String> extra) throws Exception {
    Path ctx = swtpm.dir.resolve("srk.ctx");
    Path name = swtpm.dir.resolve("srk.name");
    List<String> cmd = new ArrayList<>(List.of("tpm2_createprimary", "-T", swtpm.tcti(), "-C", "o",
        "-G", "ecc256:null:aes128cfb", "-c", ctx.toString()));
    cmd.addAll(extra);
    tools(cmd, 30);
    tools(List.of("tpm2_readpublic", "-T", swtpm.tcti(), "-c", ctx.toString(), "-n", name.toString()), 30);
    return Files.readAllBytes(name);
  }

  @Test
  void generatedKey_loadsAndSignsWithTpm2Tools_andOpensslVerifies() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
    TpmBlob blob = TpmBlob.decode(k.handle().blob(), TpmBlob.BACKEND_TPM);
    Path d = Files.createDirectories(swtpm.dir.resolve("interop"));
    Files.write(d.resolve("key.pub"), blob.tpm2bPublic());
    Files.write(d.resolve("key.priv"), blob.tpm2bPrivate());
    Files.writeString(d.resolve("data.txt"), "signed by tpm2-tools with a tpmkms key");
    Files.writeString(d.resolve("pub.pem"), "-----BEGIN PUBLIC KEY-----\n"
        + Base64.getMimeEncoder().encodeToString(backend.publicKey(k.handle())) + "\n-----END PUBLIC KEY-----\n");
    String auth = HexFormat.of().formatHex(authValue(blob.objectId()));
    backend.releaseConnection();
    String t = swtpm.tcti();
    tools(List.of("tpm2_createprimary", "-T", t, "-C", "o", "-G", "ecc256:null:aes128cfb",
        "-a", SRK_ATTRIBUTES, "-c", d.resolve("srk.ctx").toString()), 30);
    tools(List.of("tpm2_load", "-T", t, "-C", d.resolve("srk.ctx").toString(), "-u", d.resolve("key.pub").toString(),
        "-r", d.resolve("key.priv").toString(), "-c", d.resolve("key.ctx").toString()), 30);
    tools(List.of("tpm2_sign", "-T", t, "-c", d.resolve("key.ctx").toString(), "-p", "hex:" + auth,
        "-g", "sha256", "-f", "plain", "-o", d.resolve("sig.der").toString(), d.resolve("data.txt").toString()), 30);
    String out = Swtpm.run(List.of("openssl", "dgst", "-sha256", "-verify", d.resolve("pub.pem").toString(),
        "-signature", d.resolve("sig.der").toString(), d.resolve("data.txt").toString()), 30);
    assertTrue(out.contains("Verified OK"), out);
    // and the backend still works on the same handle after the tools were there
    byte[] data = Files.readAllBytes(d.resolve("data.txt"));
    byte[] sig = backend.sign(k.handle(), KeyAlgorithm.EC_SIGN_P256_SHA256.digest(data));
    assertTrue(SignatureVerifier.verifyDigest(KeyAlgorithm.EC_SIGN_P256_SHA256, k.publicKeyDer(),
        KeyAlgorithm.EC_SIGN_P256_SHA256.digest(data), sig));
  }

  // --- restarts and foreign TPMs --------------------------------------------------------

  @Test
  void swtpmKilledWhileSigning_callsFailUnavailable_thenRecoverOnRestart() throws Exception {
    List<GeneratedKey> keys = new ArrayList<>();
    for (int i = 0; i < 6; i++) keys.add(backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256)));
    AtomicBoolean stop = new AtomicBoolean();
    Map<Kind, AtomicInteger> failures = new ConcurrentHashMap<>();
    AtomicInteger ok = new AtomicInteger();
    ExecutorService pool = Executors.newFixedThreadPool(4);
    List<Future<?>> fs = new ArrayList<>();
    for (int t = 0; t < 4; t++) {
      int thread = t;
      fs.add(pool.submit(() -> {
        int i = thread;
        while (!stop.get()) {
          GeneratedKey k = keys.get(i++ % keys.size());
          try {
            backend.sign(k.handle(), new byte[32]);
            ok.incrementAndGet();
          } catch (BackendException e) {
            failures.computeIfAbsent(e.kind(), x -> new AtomicInteger()).incrementAndGet();
          }
        }
      }));
    }
    try {
      Thread.sleep(150);
      swtpm.kill();
      Thread.sleep(200);
      BackendException down = assertThrows(BackendException.class, () -> backend.sign(keys.get(0).handle(), new byte[32]));
      assertEquals(Kind.UNAVAILABLE, down.kind(), down.getMessage());
      swtpm.startProcess();
      Thread.sleep(150);
    } finally {
      stop.set(true);
      for (Future<?> f : fs) f.get(30, TimeUnit.SECONDS);
      pool.shutdownNow();
    }
    assertEquals(Map.of(Kind.UNAVAILABLE, failures.get(Kind.UNAVAILABLE)), Map.copyOf(failures),
        "only UNAVAILABLE during the outage");
    for (GeneratedKey k : keys) {
      byte[] sig = backend.sign(k.handle(), new byte[32]);
      assertTrue(SignatureVerifier.verifyDigest(KeyAlgorithm.EC_SIGN_P256_SHA256, k.publicKeyDer(), new byte[32], sig));
    }
    assertTrue(ok.get() > 0);
  }

  @Test
  void handleFromAnotherTpm_isKeyInvalidWithAClearMessage() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256));
    try (Swtpm other = Swtpm.start();
         TpmKeyProtectionBackend there = TpmKeyProtectionBackend.open(other.config(), AUTH_SECRET)) {
      BackendException e = assertThrows(BackendException.class, () -> there.mac(k.handle(), new byte[1]));
      assertEquals(Kind.KEY_INVALID, e.kind());
      assertTrue(e.getMessage().contains("another TPM or owner seed"), e.getMessage());
    }
  }

  @Test
  void otherAuthSecret_isKeyInvalid() {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256));
    backend.releaseConnection();
    try (TpmKeyProtectionBackend other = TpmKeyProtectionBackend.open(swtpm.config(),
        "another secret, 32 bytes long!!!".getBytes(StandardCharsets.US_ASCII))) {
      BackendException e = assertThrows(BackendException.class, () -> other.mac(k.handle(), new byte[1]));
      assertEquals(Kind.KEY_INVALID, e.kind(), e.getMessage());
    }
  }

  // --- the TPM as a key cache -----------------------------------------------------------

  @Test
  void fiftyKeysSixteenThreads_roundRobin_noError() throws Exception {
    List<GeneratedKey> keys = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      keys.add(backend.generate(new KeySpec(i % 2 == 0 ? KeyAlgorithm.EC_SIGN_P256_SHA256 : KeyAlgorithm.HMAC_SHA256)));
    }
    byte[] data = "round robin".getBytes(StandardCharsets.UTF_8);
    byte[][] macs = new byte[50][];
    for (int i = 1; i < 50; i += 2) macs[i] = backend.mac(keys.get(i).handle(), data);
    int threads = 16;
    int ops = 60;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    List<Future<Integer>> fs = new ArrayList<>();
    long start = System.nanoTime();
    for (int t = 0; t < threads; t++) {
      int thread = t;
      fs.add(pool.submit(() -> {
        int done = 0;
        for (int i = 0; i < ops; i++) {
          int n = (thread * 7 + i) % 50;
          GeneratedKey k = keys.get(n);
          if (n % 2 == 0) {
            byte[] d = KeyAlgorithm.EC_SIGN_P256_SHA256.digest(data);
            assertTrue(SignatureVerifier.verifyDigest(KeyAlgorithm.EC_SIGN_P256_SHA256, k.publicKeyDer(), d,
                backend.sign(k.handle(), d)));
          } else {
            assertArrayEquals(macs[n], backend.mac(k.handle(), data));
          }
          done++;
        }
        return done;
      }));
    }
    int total = 0;
    for (Future<Integer> f : fs) total += f.get(2, TimeUnit.MINUTES);
    pool.shutdownNow();
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertEquals(threads * ops, total);
    LOG.infof("slot pressure: %d ops on 50 keys (LRU of 2, Load+use+flush) in %d ms", total, ms);
  }

  @Test
  void hmacOverMoreThanOneTpmBuffer_usesASequenceAndMatchesTheShortPath() {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256));
    byte[] big = new byte[5000];
    Arrays.fill(big, (byte) 7);
    byte[] a = backend.mac(k.handle(), big);
    assertArrayEquals(a, backend.mac(k.handle(), big));
    assertEquals(32, a.length);
    // 1024 bytes is the largest single TPM2_HMAC; 1025 goes through a sequence — both are HMAC of the same key
    byte[] b1024 = backend.mac(k.handle(), Arrays.copyOf(big, 1024));
    byte[] b1025 = backend.mac(k.handle(), Arrays.copyOf(big, 1025));
    assertFalse(Arrays.equals(b1024, b1025));
  }

  // --- certify --------------------------------------------------------------------------

  @Test
  void certify_verifiesOffline_andTamperingIsDetected() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
    GeneratedKey other = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
    byte[] nonce = "verifier nonce 0123456789".getBytes(StandardCharsets.US_ASCII);
    KeyAttestation att = backend.certify(k.handle(), nonce);
    byte[] pub = backend.tpmPublic(k.handle());
    KeyAttestationVerifier.verify(att, pub, nonce);

    byte[] attest = att.attest();
    attest[attest.length - 40] ^= 1;
    KeyAttestation tampered = new KeyAttestation(attest, att.signature(), att.akPublicDer(), att.akTpmPublic(),
        att.akName(), att.ekCertificateDer(), att.certifiedName(), att.certifiedTpmPublic());
    assertThrows(KeyAttestationVerifier.VerificationException.class,
        () -> KeyAttestationVerifier.verify(tampered, pub, nonce));
    assertThrows(KeyAttestationVerifier.VerificationException.class,
        () -> KeyAttestationVerifier.verify(att, backend.tpmPublic(other.handle()), nonce));
    assertThrows(KeyAttestationVerifier.VerificationException.class,
        () -> KeyAttestationVerifier.verify(att, pub, "another nonce".getBytes(StandardCharsets.US_ASCII)));
    // the AK is re-derived from the endorsement seed: same AK every time
    KeyAttestation again = backend.certify(other.handle(), nonce);
    assertArrayEquals(att.akName(), again.akName());
    KeyAttestationVerifier.verify(again, backend.tpmPublic(other.handle()), nonce);

    // the statement carries the certified public area; it must hold the key's published public key
    assertArrayEquals(pub, att.certifiedTpmPublic());
    KeyAttestationVerifier.verifyStatement(att, nonce, k.publicKeyDer());
    assertThrows(KeyAttestationVerifier.VerificationException.class,
        () -> KeyAttestationVerifier.verifyStatement(att, nonce, other.publicKeyDer()));
  }

  @Test
  void certify_hasTheEkCertificateFromNv() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256));
    KeyAttestation att = backend.certify(k.handle(), new byte[0]);
    KeyAttestationVerifier.verify(att, backend.tpmPublic(k.handle()), new byte[0]);
    assertNotNull(att.ekCertificateDer(), "swtpm_setup wrote an RSA EK certificate at 0x01C00002");
    X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
        .generateCertificate(new java.io.ByteArrayInputStream(att.ekCertificateDer()));
    assertEquals("RSA", cert.getPublicKey().getAlgorithm());
  }

  @Test
  void certify_onSoftwareBackend_isUnsupported() {
    var sw = new io.tpmkms.protection.software.SoftwareKeyProtectionBackend(() -> new byte[32]);
    GeneratedKey k = sw.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256));
    assertEquals(Kind.UNSUPPORTED, assertThrows(BackendException.class, () -> sw.certify(k.handle(), null)).kind());
    assertFalse(sw.describe().supports(io.tpmkms.protection.Capability.CERTIFY));
  }

  // --- sealed root ----------------------------------------------------------------------

  @Test
  void sealedRoot_unsealsTheSameSeed_andAnotherTpmCannot() throws Exception {
    Path sealed = swtpm.dir.resolve("root/software-root.sealed");
    byte[] first = new TpmSealedRootKeySource(backend.connection(), sealed, null).rootSeed();
    assertEquals(32, first.length);
    assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(sealed)));
    byte[] again = new TpmSealedRootKeySource(backend.connection(), sealed, null).rootSeed();
    assertArrayEquals(first, again);
    try (Swtpm other = Swtpm.start(); TpmConnection c = TpmConnection.open(other.config())) {
      BackendException e = assertThrows(BackendException.class,
          () -> new TpmSealedRootKeySource(c, sealed, null).rootSeed());
      assertEquals(Kind.KEY_INVALID, e.kind());
    }
  }

  @Test
  void sealedRoot_migratesAPlainSeedFile() throws Exception {
    Path dir = Files.createDirectories(swtpm.dir.resolve("migrate"));
    Path plain = dir.resolve("root.seed");
    byte[] seed = new io.tpmkms.protection.software.FileRootKeySource(plain).rootSeed();
    Path sealed = dir.resolve("software-root.sealed");
    assertArrayEquals(seed, new TpmSealedRootKeySource(backend.connection(), sealed, plain).rootSeed());
    assertTrue(Files.exists(plain), "the plain file is left for the operator");
    assertArrayEquals(seed, new TpmSealedRootKeySource(backend.connection(), sealed, null).rootSeed());
  }

  /** Runs a tpm2-tools command, then flushes every transient object: without a resource manager the tools leave them. */
  private void tools(List<String> cmd, int timeoutSeconds) throws Exception {
    Swtpm.run(cmd, timeoutSeconds);
    Swtpm.run(List.of("tpm2_flushcontext", "-T", swtpm.tcti(), "-t"), 30);
  }

  private static byte[] authValue(byte[] objectId) throws Exception {
    Mac m = Mac.getInstance("HmacSHA256");
    m.init(new SecretKeySpec(AUTH_SECRET, "HmacSHA256"));
    m.update("tpmkms/tpm/auth/v1".getBytes(StandardCharsets.US_ASCII));
    return m.doFinal(objectId);
  }

}
