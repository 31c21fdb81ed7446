package io.tpmkms.protection.tpm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.Capability;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.ImportWrapping;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyAttestation;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeyMaterial;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.tpm.internal.Templates;
import io.tpmkms.protection.tpm.internal.TpmBlob;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.RSAKeyGenParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * importKey on swtpm: each key type used in the TPM and checked against an
 * independent computation with the original material (JCA), attestation of
 * imported keys, reload from the blob, refusals, and the import-job path.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TpmImportTest {
  private static final byte[] AUTH_SECRET = TpmKeyProtectionBackendTest.AUTH_SECRET;
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Map<String, KeyPair> PAIRS = new ConcurrentHashMap<>();
  private Swtpm swtpm;
  private TpmKeyProtectionBackend backend;

  @BeforeAll
  void start() throws Exception {
    swtpm = Swtpm.start();
    backend = TpmKeyProtectionBackend.open(swtpm.config(), AUTH_SECRET);
  }

  @AfterAll
  void stop() throws Exception {
    if (backend != null) backend.close();
    if (swtpm != null) swtpm.close();
  }

  // --- symmetric: TPM2_Create with the caller's data ------------------------------------

  @Test
  void importHmac_macEqualsJcaHmacOfTheSameKey_shortAndSequenced() throws Exception {
    byte[] key = random(32);
    GeneratedKey k = importRaw(KeyAlgorithm.HMAC_SHA256, key);
    assertTrue(backend.imported(k.handle()));
    for (int n : new int[] {0, 17, 1024, 3000}) { // above 1024 bytes the backend uses an HMAC sequence
      byte[] data = random(n);
      Mac m = Mac.getInstance("HmacSHA256");
      m.init(new SecretKeySpec(key, "HmacSHA256"));
      assertArrayEquals(m.doFinal(data), backend.mac(k.handle(), data), "HMAC over " + n + " bytes");
    }
  }

  @Test
  void importAes_roundTrips_andSoftwareAesGcmWithTheDerivedDekOpensThePayload() throws Exception {
    byte[] key = random(32);
    GeneratedKey k = importRaw(KeyAlgorithm.AES_256_GCM, key);
    byte[] aad = "aad".getBytes(StandardCharsets.US_ASCII);
    byte[] pt = "imported into the TPM".getBytes(StandardCharsets.US_ASCII);
    byte[] payload = backend.encrypt(k.handle(), pt, aad);
    assertArrayEquals(pt, backend.decrypt(k.handle(), payload, aad));
    // ADR 0009: DEK = HMAC(key, "tpmkms/tpm/aead/v1" || salt): the TPM used exactly the imported key
    Mac m = Mac.getInstance("HmacSHA256");
    m.init(new SecretKeySpec(key, "HmacSHA256"));
    m.update("tpmkms/tpm/aead/v1".getBytes(StandardCharsets.US_ASCII));
    byte[] dek = m.doFinal(Arrays.copyOf(payload, 16));
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(dek, "AES"), new GCMParameterSpec(128, payload, 16, 12));
    c.updateAAD(aad);
    assertArrayEquals(pt, c.doFinal(payload, 28, payload.length - 28));
  }

  @Test
  void importAes_attestationSaysImported_fixedTpmAndFixedParentSet() throws Exception {
    GeneratedKey k = importRaw(KeyAlgorithm.AES_256_GCM, random(32));
    byte[] nonce = random(16);
    KeyAttestation att = backend.certify(k.handle(), nonce);
    KeyAttestationVerifier.Result r = KeyAttestationVerifier.verifyResult(att, backend.tpmPublic(k.handle()), nonce);
    assertEquals(KeyAttestationVerifier.Origin.IMPORTED, r.origin());
    assertTrue(r.fixedTpm());
    assertTrue(r.fixedParent());
    assertFalse(r.duplicable());
    assertTrue(r.summary().startsWith("imported into this TPM"), r.summary());
    assertTrue(r.summary().contains("fixedTPM, fixedParent"), r.summary());
    // the old method still requires a generated key
    var e = assertThrows(KeyAttestationVerifier.VerificationException.class,
        () -> KeyAttestationVerifier.verify(att, backend.tpmPublic(k.handle()), nonce));
    assertTrue(e.getMessage().contains("sensitiveDataOrigin"), e.getMessage());
  }

  // --- EC and RSA: TPM2_Import without wrappers -----------------------------------------

  @Test
  void importEc_p256AndP384_signInTpm_verifyWithTheOriginalPublicKey() throws Exception {
    for (KeyAlgorithm alg : new KeyAlgorithm[] {KeyAlgorithm.EC_SIGN_P256_SHA256, KeyAlgorithm.EC_SIGN_P384_SHA384}) {
      KeyPair pair = pair(alg);
      GeneratedKey k = importPair(alg, pair);
      assertArrayEquals(pair.getPublic().getEncoded(), k.publicKeyDer(), alg + ": public key of the import");
      assertArrayEquals(pair.getPublic().getEncoded(), backend.publicKey(k.handle()), alg + ": publicKey()");
      assertTrue(verifies(alg, pair.getPublic(), k.handle()), alg + ": TPM signature verifies with JCA");
    }
  }

  @Test
  void importRsa_pkcs1AndPss_2048And3072_signInTpm_verifyWithJca() throws Exception {
    for (KeyAlgorithm alg : new KeyAlgorithm[] {KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256,
        KeyAlgorithm.RSA_SIGN_PSS_2048_SHA256, KeyAlgorithm.RSA_SIGN_PKCS1_3072_SHA256,
        KeyAlgorithm.RSA_SIGN_PSS_3072_SHA256}) {
      KeyPair pair = pair(alg);
      GeneratedKey k = importPair(alg, pair);
      assertArrayEquals(pair.getPublic().getEncoded(), backend.publicKey(k.handle()), alg + ": publicKey()");
      assertTrue(verifies(alg, pair.getPublic(), k.handle()), alg + ": TPM signature verifies with JCA");
    }
  }

  @Test
  void importRsaOaep_decryptsJcaCiphertext() throws Exception {
    for (KeyAlgorithm alg : new KeyAlgorithm[] {KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256,
        KeyAlgorithm.RSA_DECRYPT_OAEP_3072_SHA256}) {
      KeyPair pair = pair(alg);
      GeneratedKey k = importPair(alg, pair);
      byte[] secret = random(32);
      Cipher c = Cipher.getInstance("RSA/ECB/OAEPPadding");
      c.init(Cipher.ENCRYPT_MODE, pair.getPublic(),
          new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT));
      assertArrayEquals(secret, backend.asymmetricDecrypt(k.handle(), c.doFinal(secret)), alg.toString());
    }
  }

  @Test
  void importEc_attestationSaysImported_fixedTpmClear_duplicationImpossibleByPolicy() throws Exception {
    KeyPair pair = pair(KeyAlgorithm.EC_SIGN_P256_SHA256);
    GeneratedKey k = importPair(KeyAlgorithm.EC_SIGN_P256_SHA256, pair);
    byte[] nonce = random(32);
    KeyAttestation att = backend.certify(k.handle(), nonce);
    KeyAttestationVerifier.Result r = KeyAttestationVerifier.verifyStatementResult(att, nonce,
        pair.getPublic().getEncoded());
    assertEquals(KeyAttestationVerifier.Origin.IMPORTED, r.origin());
    assertFalse(r.fixedTpm(), "TPM2_Import needs fixedTPM CLEAR: the summary must say so");
    assertFalse(r.fixedParent());
    assertFalse(r.duplicable());
    assertTrue(r.sign());
    assertArrayEquals(KeyAttestationVerifier.noDuplicationPolicy(), r.authPolicy());
    assertTrue(r.summary().contains("fixedTPM CLEAR but duplication impossible by policy "
        + HexFormat.of().formatHex(Templates.NO_DUPLICATION_POLICY)), r.summary());
    assertThrows(KeyAttestationVerifier.VerificationException.class,
        () -> KeyAttestationVerifier.verifyStatement(att, nonce, pair.getPublic().getEncoded()));
    // a generated key reads as generated through the new method
    GeneratedKey g = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
    KeyAttestation ga = backend.certify(g.handle(), nonce);
    KeyAttestationVerifier.Result gr = KeyAttestationVerifier.verifyStatementResult(ga, nonce, g.publicKeyDer());
    assertEquals(KeyAttestationVerifier.Origin.GENERATED, gr.origin());
    assertTrue(gr.generatedAndFixed());
    assertEquals("generated in this TPM; fixedTPM, fixedParent: it cannot leave the TPM", gr.summary());
  }

  @Test
  void noDuplicationPolicy_isSha256OfTheDocumentedLabel() throws Exception {
    byte[] label = "tpmkms/tpm/no-duplication/v1".getBytes(StandardCharsets.US_ASCII);
    assertEquals(28, label.length, "shorter than any policy-extend input (36 bytes or more)");
    assertArrayEquals(java.security.MessageDigest.getInstance("SHA-256").digest(label),
        KeyAttestationVerifier.noDuplicationPolicy());
  }

  /**
   * The duplication block is the TPM's, not ours: TPM2_Duplicate of an imported key in a policy
   * session that has PolicyCommandCode(Duplicate) (the usual duplication policy) is refused with
   * TPM_RC_POLICY_FAIL because the session digest is not the key's authPolicy. Done with tpm2-tools.
   */
  @Test
  void importedKey_tpm2Duplicate_isRefusedByPolicy() throws Exception {
    KeyPair pair = pair(KeyAlgorithm.EC_SIGN_P256_SHA256);
    GeneratedKey k = importPair(KeyAlgorithm.EC_SIGN_P256_SHA256, pair);
    TpmBlob blob = TpmBlob.decode(k.handle().blob(), TpmBlob.BACKEND_TPM);
    Path d = Files.createDirectories(swtpm.dir.resolve("dup"));
    Files.write(d.resolve("key.pub"), blob.tpm2bPublic());
    Files.write(d.resolve("key.priv"), blob.tpm2bPrivate());
    backend.releaseConnection();
    String t = swtpm.tcti();
    tools(List.of("tpm2_createprimary", "-T", t, "-C", "o", "-G", "ecc256:null:aes128cfb",
        "-a", TpmBackendOnSwtpmTest.SRK_ATTRIBUTES, "-c", d.resolve("srk.ctx").toString()));
    tools(List.of("tpm2_load", "-T", t, "-C", d.resolve("srk.ctx").toString(), "-u", d.resolve("key.pub").toString(),
        "-r", d.resolve("key.priv").toString(), "-c", d.resolve("key.ctx").toString()));
    tools(List.of("tpm2_startauthsession", "-T", t, "--policy-session", "-S", d.resolve("s.ctx").toString()));
    tools(List.of("tpm2_policycommandcode", "-T", t, "-S", d.resolve("s.ctx").toString(), "TPM2_CC_Duplicate"));
    String out = Swtpm.runAllowingFailure(List.of("tpm2_duplicate", "-T", t, "-C", "null", "-c",
        d.resolve("key.ctx").toString(), "-G", "null", "-p", "session:" + d.resolve("s.ctx"),
        "-r", d.resolve("dup.priv").toString(), "-s", d.resolve("dup.seed").toString()), 30);
    Swtpm.runAllowingFailure(List.of("tpm2_flushcontext", "-T", t, "-t"), 30);
    Swtpm.runAllowingFailure(List.of("tpm2_flushcontext", "-T", t, "-s"), 30);
    org.jboss.logging.Logger.getLogger(TpmImportTest.class).info("tpm2_duplicate of an imported key: " + out);
    assertFalse(Files.exists(d.resolve("dup.priv")), "duplication must fail: " + out);
    assertTrue(out.toUpperCase().contains("0X99D"), "TPM_RC_POLICY_FAIL expected: " + out);
    // and the backend still uses the key afterwards
    assertTrue(verifies(KeyAlgorithm.EC_SIGN_P256_SHA256, pair.getPublic(), k.handle()));
  }

  // --- blobs ----------------------------------------------------------------------------

  @Test
  void importedKeys_surviveCloseAndReopenOfTheBackend() throws Exception {
    byte[] hmacKey = random(32);
    GeneratedKey h = importRaw(KeyAlgorithm.HMAC_SHA256, hmacKey);
    KeyPair pair = pair(KeyAlgorithm.EC_SIGN_P384_SHA384);
    GeneratedKey e = importPair(KeyAlgorithm.EC_SIGN_P384_SHA384, pair);
    backend.close();
    swtpm.restart();
    backend = TpmKeyProtectionBackend.open(swtpm.config(), AUTH_SECRET);
    byte[] data = random(100);
    Mac m = Mac.getInstance("HmacSHA256");
    m.init(new SecretKeySpec(hmacKey, "HmacSHA256"));
    assertArrayEquals(m.doFinal(data), backend.mac(h.handle(), data));
    assertTrue(verifies(KeyAlgorithm.EC_SIGN_P384_SHA384, pair.getPublic(), e.handle()));
    assertTrue(backend.imported(e.handle()));
  }

  @Test
  void blob_isFormatV2WithTheImportedFlag_generatedStaysV1_flagAndAreaMustAgree() throws Exception {
    GeneratedKey k = importPair(KeyAlgorithm.EC_SIGN_P256_SHA256, pair(KeyAlgorithm.EC_SIGN_P256_SHA256));
    byte[] bytes = k.handle().blob();
    assertEquals(TpmBlob.FORMAT_V2, bytes[4]);
    assertEquals(TpmBlob.FLAG_IMPORTED, bytes[8]);
    TpmBlob blob = TpmBlob.decode(bytes, TpmBlob.BACKEND_TPM);
    assertTrue(blob.imported());
    GeneratedKey g = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
    assertEquals(TpmBlob.FORMAT_V1, g.handle().blob()[4]);
    assertFalse(backend.imported(g.handle()));
    // the same TPM parts without the flag: the public area is not the generated template
    TpmBlob unflagged = new TpmBlob(blob.backend(), blob.algorithmCode(), blob.srkName(), blob.objectId(),
        blob.tpm2bPublic(), blob.tpm2bPrivate());
    BackendException e = assertThrows(BackendException.class,
        () -> backend.sign(new KeyHandle(unflagged.encode()), new byte[32]));
    assertEquals(Kind.KEY_INVALID, e.kind());
    // unknown flags are refused
    byte[] odd = bytes.clone();
    odd[8] = 0x03;
    assertEquals(Kind.KEY_INVALID, assertThrows(BackendException.class,
        () -> backend.sign(new KeyHandle(odd), new byte[32])).kind());
  }

  // --- refusals -------------------------------------------------------------------------

  @Test
  void describe_hasImport_rsa4096IsUnsupported() throws Exception {
    assertTrue(backend.describe().supports(Capability.IMPORT));
    KeyAlgorithm alg = KeyAlgorithm.RSA_SIGN_PKCS1_4096_SHA256;
    if (backend.describe().supports(alg)) return; // a TPM with RSA-4096
    try (KeyMaterial m = KeyMaterial.parse(alg, pair(alg).getPrivate().getEncoded())) {
      assertEquals(Kind.UNSUPPORTED, assertThrows(BackendException.class,
          () -> backend.importKey(new KeySpec(alg), m)).kind());
    }
    assertEquals(Kind.UNSUPPORTED, assertThrows(BackendException.class,
        () -> backend.generate(new KeySpec(alg))).kind());
  }

  @Test
  void importKey_materialOfAnotherAlgorithm_isInvalidInput() throws Exception {
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.EC_SIGN_P256_SHA256,
        pair(KeyAlgorithm.EC_SIGN_P256_SHA256).getPrivate().getEncoded())) {
      assertEquals(Kind.INVALID_INPUT, assertThrows(BackendException.class,
          () -> backend.importKey(new KeySpec(KeyAlgorithm.EC_SIGN_P384_SHA384), m)).kind());
    }
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.HMAC_SHA256, random(32))) {
      assertEquals(Kind.INVALID_INPUT, assertThrows(BackendException.class,
          () -> backend.importKey(new KeySpec(KeyAlgorithm.AES_256_GCM), m)).kind());
    }
    assertEquals(Kind.INVALID_INPUT, assertThrows(BackendException.class,
        () -> backend.importKey(new KeySpec(KeyAlgorithm.AES_256_GCM), null)).kind());
    BackendException e = assertThrows(BackendException.class,
        () -> KeyMaterial.parse(KeyAlgorithm.RSA_SIGN_PKCS1_2048_SHA256,
            pair(KeyAlgorithm.EC_SIGN_P256_SHA256).getPrivate().getEncoded()));
    assertEquals(Kind.INVALID_INPUT, e.kind());
  }

  // --- the import-job path --------------------------------------------------------------

  @Test
  void generatedOaep3072WrappingKey_unwrapsImportWrappingBothMethods() throws Exception {
    GeneratedKey wrapping = backend.generate(new KeySpec(KeyAlgorithm.RSA_DECRYPT_OAEP_3072_SHA256));
    PublicKey pub = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(wrapping.publicKeyDer()));
    // RSA-OAEP + AES-KWP of a PKCS#8 RSA key (too long for OAEP alone)
    byte[] pkcs8 = pair(KeyAlgorithm.RSA_SIGN_PSS_2048_SHA256).getPrivate().getEncoded();
    var method = ImportWrapping.Method.RSA_OAEP_3072_SHA256_AES_256;
    ImportWrapping.Parts parts = ImportWrapping.split(method, ImportWrapping.wrap(method, pub, pkcs8));
    byte[] k = backend.asymmetricDecrypt(wrapping.handle(), parts.oaep());
    byte[] material = ImportWrapping.unwrapKwp(k, parts.kwp());
    assertArrayEquals(pkcs8, material);
    // and the result imports
    try (KeyMaterial m = KeyMaterial.parse(KeyAlgorithm.RSA_SIGN_PSS_2048_SHA256, material)) {
      GeneratedKey imported = backend.importKey(new KeySpec(KeyAlgorithm.RSA_SIGN_PSS_2048_SHA256), m);
      assertTrue(verifies(KeyAlgorithm.RSA_SIGN_PSS_2048_SHA256, pair(KeyAlgorithm.RSA_SIGN_PSS_2048_SHA256).getPublic(),
          imported.handle()));
    }
    // plain RSA-OAEP of a 32-byte key
    byte[] aes = random(32);
    var plain = ImportWrapping.Method.RSA_OAEP_3072_SHA256;
    byte[] direct = backend.asymmetricDecrypt(wrapping.handle(),
        ImportWrapping.split(plain, ImportWrapping.wrap(plain, pub, aes)).oaep());
    assertArrayEquals(aes, direct);
  }

  // --- helpers --------------------------------------------------------------------------

  private GeneratedKey importRaw(KeyAlgorithm alg, byte[] key) {
    try (KeyMaterial m = KeyMaterial.parse(alg, key)) {
      GeneratedKey k = backend.importKey(new KeySpec(alg), m);
      assertEquals(null, k.publicKeyDer());
      return k;
    }
  }

  private GeneratedKey importPair(KeyAlgorithm alg, KeyPair pair) {
    try (KeyMaterial m = KeyMaterial.parse(alg, pair.getPrivate().getEncoded())) {
      return backend.importKey(new KeySpec(alg), m);
    }
  }

  /** One key pair per curve / modulus size, made with the JCA. */
  static KeyPair pair(KeyAlgorithm alg) {
    String id = alg.isEc() ? "EC" + alg.keyBits() : "RSA" + alg.keyBits();
    return PAIRS.computeIfAbsent(id, x -> {
      try {
        KeyPairGenerator g;
        if (alg.isEc()) {
          g = KeyPairGenerator.getInstance("EC");
          g.initialize(new ECGenParameterSpec(alg.keyBits() == 384 ? "secp384r1" : "secp256r1"));
        } else {
          g = KeyPairGenerator.getInstance("RSA");
          g.initialize(new RSAKeyGenParameterSpec(alg.keyBits(), RSAKeyGenParameterSpec.F4));
        }
        return g.generateKeyPair();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
  }

  /** Signs a message's digest in the TPM and verifies the signature over the message with the JCA. */
  private boolean verifies(KeyAlgorithm alg, PublicKey pub, KeyHandle handle) throws Exception {
    byte[] data = ("signed by an imported " + alg).getBytes(StandardCharsets.US_ASCII);
    byte[] sig = backend.sign(handle, alg.digest(data));
    Signature v;
    if (alg.isEc()) {
      v = Signature.getInstance(alg.keyBits() == 384 ? "SHA384withECDSA" : "SHA256withECDSA");
    } else if (alg.isPss()) {
      v = Signature.getInstance("RSASSA-PSS");
      v.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
    } else {
      v = Signature.getInstance("SHA256withRSA");
    }
    v.initVerify(pub);
    v.update(data);
    return v.verify(sig);
  }

  /** Runs a tpm2-tools command, then flushes the transient objects it left (swtpm holds three). */
  private void tools(List<String> cmd) throws Exception {
    Swtpm.run(new ArrayList<>(cmd), 30);
    Swtpm.run(List.of("tpm2_flushcontext", "-T", swtpm.tcti(), "-t"), 30);
  }

  private static byte[] random(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  @SuppressWarnings("unused")
  private static String pem(byte[] spki) {
    return "-----BEGIN PUBLIC KEY-----\n" + Base64.getMimeEncoder().encodeToString(spki) + "\n-----END PUBLIC KEY-----\n";
  }
}
