package io.tpmkms.protection.tpm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.ExportPolicy;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyAttestation;
import io.tpmkms.protection.KeyHandle;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.tpm.internal.KeyPolicy;
import io.tpmkms.protection.tpm.internal.TpmBlob;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import javax.crypto.Cipher;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * DUPLICABLE keys and TPM duplication on two swtpm instances (two machines): the roles enforced
 * by the TPM, export to a tpm2-tools storage key on TPM B (tpm2_import, tpm2_load, tpm2_sign
 * there, openssl verifies), the reverse (tpm2_duplicate on B to A's SRK, imported by the
 * backend), and backend to backend with a transfer auth value; refusals.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TpmDuplicationTest {
  private static final byte[] SECRET_A = "A123456789abcdef0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] SECRET_B = "B123456789abcdef0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
  private static final SecureRandom RANDOM = new SecureRandom();
  private Swtpm tpmA;
  private Swtpm tpmB;
  private TpmKeyProtectionBackend a;
  private TpmKeyProtectionBackend b;
  private Path dir;

  @BeforeAll
  void start() throws Exception {
    tpmA = Swtpm.start();
    tpmB = Swtpm.start();
    a = TpmKeyProtectionBackend.open(tpmA.config(), SECRET_A);
    b = TpmKeyProtectionBackend.open(tpmB.config(), SECRET_B);
    dir = Files.createTempDirectory("dup");
  }

  @AfterAll
  void stop() throws Exception {
    if (a != null) a.close();
    if (b != null) b.close();
    if (tpmA != null) tpmA.close();
    if (tpmB != null) tpmB.close();
  }

  /**
   * Runs a tpm2-tools command, then flushes the transient objects it left (no resource manager:
   * swtpm holds three); the context files stay loadable.
   */
  private static String tools(Swtpm tpm, String... cmd) throws Exception {
    List<String> c = new ArrayList<>(List.of(cmd));
    c.add(1, "-T");
    c.add(2, tpm.tcti());
    try {
      return Swtpm.run(c, 60);
    } finally {
      if (!cmd[0].equals("tpm2_flushcontext")) Swtpm.runAllowingFailure(List.of("tpm2_flushcontext", "-T", tpm.tcti(), "-t"), 30);
    }
  }

  private static String toolsAllowingFailure(Swtpm tpm, String... cmd) throws Exception {
    List<String> c = new ArrayList<>(List.of(cmd));
    c.add(1, "-T");
    c.add(2, tpm.tcti());
    return Swtpm.runAllowingFailure(c, 60);
  }

  private String p(String name) { return dir.resolve(name).toString(); }

  private static boolean verifies(byte[] spki, byte[] message, byte[] der) throws Exception {
    PublicKey pk = KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(spki));
    Signature v = Signature.getInstance("SHA256withECDSA");
    v.initVerify(pk);
    v.update(message);
    return v.verify(der);
  }

  private static byte[] sha256(byte[] m) throws Exception { return MessageDigest.getInstance("SHA-256").digest(m); }

  private static String pem(byte[] spki) {
    return "-----BEGIN PUBLIC KEY-----\n" + Base64.getMimeEncoder(64, "\n".getBytes()).encodeToString(spki)
        + "\n-----END PUBLIC KEY-----\n";
  }

  // --- DUPLICABLE keys work through policy sessions --------------------------------------

  @Test
  void duplicableKeys_everyPurposeWorksThroughItsPolicy() throws Exception {
    byte[] msg = "policy sessions".getBytes(StandardCharsets.UTF_8);
    GeneratedKey ec = a.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.DUPLICABLE));
    assertEquals(ExportPolicy.DUPLICABLE, a.exportPolicy(ec.handle()));
    for (int i = 0; i < 5; i++) { // the session is reused: each call re-runs the branch
      assertTrue(verifies(ec.publicKeyDer(), msg, a.sign(ec.handle(), sha256(msg))));
    }
    assertArrayEquals(KeyPolicy.duplicable(KeyAlgorithm.EC_SIGN_P256_SHA256, a.duplicationAuthorityName()).authPolicy(),
        a.policyDigest(ec.handle()));

    GeneratedKey mac = a.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256, ExportPolicy.DUPLICABLE));
    byte[] longData = new byte[3000];
    RANDOM.nextBytes(longData);
    byte[] m1 = a.mac(mac.handle(), longData); // HMAC_Start through the policy
    assertArrayEquals(m1, a.mac(mac.handle(), longData));
    assertEquals(32, a.mac(mac.handle(), msg).length);

    GeneratedKey aead = a.generate(new KeySpec(KeyAlgorithm.AES_256_GCM, ExportPolicy.DUPLICABLE));
    byte[] ct = a.encrypt(aead.handle(), msg, "aad".getBytes());
    assertArrayEquals(msg, a.decrypt(aead.handle(), ct, "aad".getBytes()));

    GeneratedKey rsa = a.generate(new KeySpec(KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256, ExportPolicy.DUPLICABLE));
    Cipher c = Cipher.getInstance("RSA/ECB/OAEPPadding");
    c.init(Cipher.ENCRYPT_MODE, KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(rsa.publicKeyDer())),
        new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT));
    assertArrayEquals(msg, a.asymmetricDecrypt(rsa.handle(), c.doFinal(msg)));

    byte[] nonce = new byte[20];
    RANDOM.nextBytes(nonce);
    KeyAttestation att = a.certify(ec.handle(), nonce); // ADMIN role through the Certify branch
    KeyAttestationVerifier.Result r = KeyAttestationVerifier.verifyStatementResult(att, nonce, ec.publicKeyDer());
    assertTrue(r.duplicable());
    assertFalse(r.fixedTpm());
    assertArrayEquals(a.policyDigest(ec.handle()), r.authPolicy());

    GeneratedKey fixed = a.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
    assertEquals(ExportPolicy.NON_EXPORTABLE, a.exportPolicy(fixed.handle()));
    BackendException e = assertThrows(BackendException.class, () -> a.duplicate(fixed.handle(), a.certifySrk(null)
        .certifiedTpmPublic(), new byte[0]));
    assertEquals(Kind.INVALID_INPUT, e.kind());
  }

  /** The TPM itself refuses: a password session on a DUPLICABLE key, TPM2_Duplicate on a NON_EXPORTABLE one. */
  @Test
  void theTpmEnforcesTheRoles() throws Exception {
    GeneratedKey dup = a.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.DUPLICABLE));
    GeneratedKey fixed = a.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
    TpmBlob d = TpmBlob.decode(dup.handle().blob(), TpmBlob.BACKEND_TPM);
    TpmBlob f = TpmBlob.decode(fixed.handle().blob(), TpmBlob.BACKEND_TPM);
    Files.write(dir.resolve("d.pub"), d.tpm2bPublic());
    Files.write(dir.resolve("d.priv"), d.tpm2bPrivate());
    Files.write(dir.resolve("f.pub"), f.tpm2bPublic());
    Files.write(dir.resolve("f.priv"), f.tpm2bPrivate());
    Files.writeString(dir.resolve("m.txt"), "hello");
    a.releaseConnection();
    try {
      tools(tpmA, "tpm2_createprimary", "-C", "o", "-G", "ecc256:null:aes128cfb", "-a",
          TpmBackendOnSwtpmTest.SRK_ATTRIBUTES, "-c", p("srkA.ctx"));
      tools(tpmA, "tpm2_load", "-C", p("srkA.ctx"), "-u", p("d.pub"), "-r", p("d.priv"), "-c", p("d.ctx"));
      String sign = toolsAllowingFailure(tpmA, "tpm2_sign", "-c", p("d.ctx"), "-g", "sha256", "-o", p("s.sig"), p("m.txt"));
      assertTrue(sign.startsWith("exit 1") || !sign.startsWith("exit 0"), sign);
      assertTrue(sign.toUpperCase().contains("0X12F") || sign.contains("authValue or authPolicy is not available"),
          "TPM_RC_AUTH_UNAVAILABLE: userWithAuth is CLEAR: " + sign);
      tools(tpmA, "tpm2_flushcontext", "-t");
      tools(tpmA, "tpm2_load", "-C", p("srkA.ctx"), "-u", p("f.pub"), "-r", p("f.priv"), "-c", p("f.ctx"));
      tools(tpmA, "tpm2_startauthsession", "--policy-session", "-S", p("ps.ctx"));
      tools(tpmA, "tpm2_policycommandcode", "-S", p("ps.ctx"), "TPM2_CC_Duplicate");
      String out = toolsAllowingFailure(tpmA, "tpm2_duplicate", "-C", "null", "-c", p("f.ctx"), "-G", "null",
          "-p", "session:" + p("ps.ctx"), "-r", p("f.dup"), "-s", p("f.seed"));
      assertFalse(Files.exists(dir.resolve("f.dup")), out);
      assertTrue(out.toUpperCase().contains("0X99D"), "TPM_RC_POLICY_FAIL (no authPolicy a session can reach): " + out);
      toolsAllowingFailure(tpmA, "tpm2_flushcontext", "-t");
      toolsAllowingFailure(tpmA, "tpm2_flushcontext", "-s");
      // and its attributes: fixedTPM and fixedParent SET, so even a policy would not let it go
      int fa = f.publicArea().objectAttributes.toInt();
      assertEquals(io.tpmkms.protection.tpm.internal.Templates.FIXED_TPM | io.tpmkms.protection.tpm.internal.Templates.FIXED_PARENT,
          fa & (io.tpmkms.protection.tpm.internal.Templates.FIXED_TPM | io.tpmkms.protection.tpm.internal.Templates.FIXED_PARENT));

      // a DUPLICABLE key: a session that satisfies the USER Sign branch (with the key's auth value) cannot duplicate
      tools(tpmA, "tpm2_load", "-C", p("srkA.ctx"), "-u", p("d.pub"), "-r", p("d.priv"), "-c", p("d2.ctx"));
      KeyPolicy policy = KeyPolicy.duplicable(KeyAlgorithm.EC_SIGN_P256_SHA256, a.duplicationAuthorityName());
      StringBuilder list = new StringBuilder("sha256:");
      for (int i = 0; i < policy.branches().size(); i++) {
        Files.write(dir.resolve("rb" + i), policy.branches().get(i));
        list.append(i == 0 ? "" : ",").append(p("rb" + i));
      }
      tools(tpmA, "tpm2_startauthsession", "--policy-session", "-S", p("us.ctx"));
      tools(tpmA, "tpm2_policycommandcode", "-S", p("us.ctx"), "TPM2_CC_Sign");
      tools(tpmA, "tpm2_policyauthvalue", "-S", p("us.ctx"));
      tools(tpmA, "tpm2_policyor", "-S", p("us.ctx"), "-l", list.toString());
      String userDup = toolsAllowingFailure(tpmA, "tpm2_duplicate", "-C", "null", "-c", p("d2.ctx"), "-G", "null",
          "-p", "session:" + p("us.ctx"), "-r", p("d.dup"), "-s", p("d.seed"));
      assertFalse(Files.exists(dir.resolve("d.dup")), userDup);
      assertFalse(userDup.startsWith("exit 0"), "the USER branch names TPM2_Sign, not TPM2_Duplicate: " + userDup);
      toolsAllowingFailure(tpmA, "tpm2_flushcontext", "-t");
      toolsAllowingFailure(tpmA, "tpm2_flushcontext", "-s");
    } finally {
      Files.deleteIfExists(dir.resolve("f.dup"));
    }
    byte[] x = "x".getBytes();
    assertTrue(verifies(dup.publicKeyDer(), x, a.sign(dup.handle(), sha256(x))), "still usable through its policy");
  }

  // --- export to a tpm2-tools storage key on TPM B --------------------------------------

  /**
   * On TPM B with tpm2-tools: a storage key under B's SRK, an ECC AK under B's EK, and the AK's
   * TPM2_Certify of the storage key. Leaves parent.ctx loadable; returns the AK name (hex).
   */
  private String toolsTarget() throws Exception {
    b.releaseConnection();
    tools(tpmB, "tpm2_createprimary", "-C", "o", "-G", "ecc256:null:aes128cfb", "-a",
        TpmBackendOnSwtpmTest.SRK_ATTRIBUTES, "-c", p("bsrk.ctx"));
    tools(tpmB, "tpm2_create", "-C", p("bsrk.ctx"), "-G", "ecc256:null:aes128cfb", "-a",
        "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda", "-u", p("parent.pub"),
        "-r", p("parent.priv"));
    tools(tpmB, "tpm2_load", "-C", p("bsrk.ctx"), "-u", p("parent.pub"), "-r", p("parent.priv"), "-c", p("parent.ctx"));
    tools(tpmB, "tpm2_flushcontext", "-t");
    tools(tpmB, "tpm2_createek", "-c", p("ek.ctx"), "-G", "ecc", "-u", p("ek.pub"));
    tools(tpmB, "tpm2_createak", "-C", p("ek.ctx"), "-c", p("ak.ctx"), "-G", "ecc", "-g", "sha256", "-s", "ecdsa",
        "-u", p("ak.pub"), "-n", p("ak.name"), "-r", p("ak.priv"));
    tools(tpmB, "tpm2_flushcontext", "-t");
    tools(tpmB, "tpm2_flushcontext", "-s");
    tools(tpmB, "tpm2_certify", "-c", p("parent.ctx"), "-C", p("ak.ctx"), "-g", "sha256", "-o", p("attest.out"),
        "-s", p("sig.out"));
    tools(tpmB, "tpm2_flushcontext", "-t");
    return HexFormat.of().formatHex(Files.readAllBytes(dir.resolve("ak.name")));
  }

  private byte[] read(String name) throws Exception { return Files.readAllBytes(dir.resolve(name)); }

  @Test
  void exportToTpm2ToolsTarget_importedAndUsedThere_opensslVerifies() throws Exception {
    GeneratedKey key = a.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.DUPLICABLE));
    String akName = toolsTarget();
    DuplicationTargets.Target target = DuplicationTargets.verify(read("parent.pub"), read("attest.out"),
        read("sig.out"), read("ak.pub"), Set.of(akName), null);
    BackendException stale = assertThrows(BackendException.class, () -> DuplicationTargets.verify(read("parent.pub"),
        read("attest.out"), read("sig.out"), read("ak.pub"), Set.of(akName), "fresh-nonce".getBytes()));
    assertTrue(stale.getMessage().contains("qualifying data"), stale.getMessage());

    // refusals of the proof: untrusted AK, a statement about another key, tampered statement
    BackendException untrusted = assertThrows(BackendException.class, () -> DuplicationTargets.verify(read("parent.pub"),
        read("attest.out"), read("sig.out"), read("ak.pub"), Set.of("000b00"), null));
    assertTrue(untrusted.getMessage().contains("does not trust"), untrusted.getMessage());
    byte[] tampered = read("attest.out");
    tampered[tampered.length - 3] ^= 1;
    BackendException bad = assertThrows(BackendException.class, () -> DuplicationTargets.verify(read("parent.pub"),
        tampered, read("sig.out"), read("ak.pub"), Set.of(akName), null));
    assertTrue(bad.getMessage().contains("does not verify"), bad.getMessage());
    BackendException other = assertThrows(BackendException.class, () -> DuplicationTargets.verify(
        a.certifySrk(null).certifiedTpmPublic(), read("attest.out"), read("sig.out"), read("ak.pub"), Set.of(akName),
        null));
    assertTrue(other.getMessage().contains("names another key"), other.getMessage());
    BackendException notStorage = assertThrows(BackendException.class, () -> DuplicationTargets.storageKey(read("ak.pub")));
    assertTrue(notStorage.getMessage().contains("not a TPM storage key"), notStorage.getMessage());

    Duplication dup = a.duplicate(key.handle(), target.tpmtPublic(), new byte[0]);
    Files.write(dir.resolve("key.pub"), dup.tpm2bPublic());
    Files.write(dir.resolve("key.dpriv"), dup.duplicate());
    Files.write(dir.resolve("key.seed"), dup.encryptedSeed());
    Files.writeString(dir.resolve("m.txt"), "signed on TPM B");
    Files.writeString(dir.resolve("key.pem"), pem(key.publicKeyDer()));
    KeyPolicy policy = KeyPolicy.duplicable(KeyAlgorithm.EC_SIGN_P256_SHA256, a.duplicationAuthorityName());
    StringBuilder list = new StringBuilder("sha256:");
    for (int i = 0; i < policy.branches().size(); i++) {
      Files.write(dir.resolve("branch" + i), policy.branches().get(i));
      list.append(i == 0 ? "" : ",").append(p("branch" + i));
    }
    tools(tpmB, "tpm2_import", "-C", p("parent.ctx"), "-u", p("key.pub"), "-i", p("key.dpriv"), "-s", p("key.seed"),
        "-r", p("key.priv"));
    tools(tpmB, "tpm2_load", "-C", p("parent.ctx"), "-u", p("key.pub"), "-r", p("key.priv"), "-c", p("key.ctx"));
    tools(tpmB, "tpm2_startauthsession", "--policy-session", "-S", p("s.ctx"));
    tools(tpmB, "tpm2_policycommandcode", "-S", p("s.ctx"), "TPM2_CC_Sign");
    tools(tpmB, "tpm2_policyauthvalue", "-S", p("s.ctx"));
    tools(tpmB, "tpm2_policyor", "-S", p("s.ctx"), "-l", list.toString());
    tools(tpmB, "tpm2_sign", "-c", p("key.ctx"), "-p", "session:" + p("s.ctx"), "-g", "sha256", "-f", "plain",
        "-o", p("b.sig"), p("m.txt"));
    tools(tpmB, "tpm2_flushcontext", p("s.ctx"));
    tools(tpmB, "tpm2_flushcontext", "-t");
    String verified = Swtpm.run(List.of("openssl", "dgst", "-sha256", "-verify", p("key.pem"), "-signature", p("b.sig"),
        p("m.txt")), 30);
    assertTrue(verified.contains("Verified OK"), verified);

    // a tampered duplicate is refused by TPM B's TPM2_Import (outer HMAC)
    byte[] t = dup.duplicate();
    t[t.length / 2] ^= 1;
    Files.write(dir.resolve("bad.dpriv"), t);
    String refused = toolsAllowingFailure(tpmB, "tpm2_import", "-C", p("parent.ctx"), "-u", p("key.pub"), "-i",
        p("bad.dpriv"), "-s", p("key.seed"), "-r", p("bad.priv"));
    assertFalse(refused.startsWith("exit 0"), refused);
    toolsAllowingFailure(tpmB, "tpm2_flushcontext", "-t");
  }

  @Test
  void tpm2DuplicateOnB_toTheSrkOfA_importedBySignsAndVerifiesWithBsKey() throws Exception {
    KeyAttestation srk = a.certifySrk(null);
    byte[] srkTpmt = srk.certifiedTpmPublic();
    byte[] sized = new byte[srkTpmt.length + 2];
    sized[0] = (byte) (srkTpmt.length >>> 8);
    sized[1] = (byte) srkTpmt.length;
    System.arraycopy(srkTpmt, 0, sized, 2, srkTpmt.length);
    Files.write(dir.resolve("asrk.pub"), sized);
    b.releaseConnection();
    tools(tpmB, "tpm2_createprimary", "-C", "o", "-G", "ecc256:null:aes128cfb", "-a",
        TpmBackendOnSwtpmTest.SRK_ATTRIBUTES, "-c", p("b2srk.ctx"));
    tools(tpmB, "tpm2_startauthsession", "-S", p("trial.ctx"));
    tools(tpmB, "tpm2_policycommandcode", "-S", p("trial.ctx"), "-L", p("dup.policy"), "TPM2_CC_Duplicate");
    tools(tpmB, "tpm2_flushcontext", p("trial.ctx"));
    tools(tpmB, "tpm2_create", "-C", p("b2srk.ctx"), "-G", "ecc256:ecdsa-sha256", "-a",
        "sign|userwithauth|sensitivedataorigin|noda", "-L", p("dup.policy"), "-u", p("bkey.pub"), "-r", p("bkey.priv"));
    tools(tpmB, "tpm2_flushcontext", "-t");
    tools(tpmB, "tpm2_loadexternal", "-C", "o", "-u", p("asrk.pub"), "-c", p("asrk.ctx"));
    tools(tpmB, "tpm2_load", "-C", p("b2srk.ctx"), "-u", p("bkey.pub"), "-r", p("bkey.priv"), "-c", p("bkey.ctx"));
    Files.writeString(dir.resolve("m2.txt"), "signed on B");
    tools(tpmB, "tpm2_sign", "-c", p("bkey.ctx"), "-g", "sha256", "-f", "plain", "-o", p("b2.sig"), p("m2.txt"));
    tools(tpmB, "tpm2_startauthsession", "--policy-session", "-S", p("ds.ctx"));
    tools(tpmB, "tpm2_policycommandcode", "-S", p("ds.ctx"), "TPM2_CC_Duplicate");
    tools(tpmB, "tpm2_duplicate", "-C", p("asrk.ctx"), "-c", p("bkey.ctx"), "-G", "null", "-p", "session:" + p("ds.ctx"),
        "-r", p("bkey.dpriv"), "-s", p("bkey.seed"));
    tools(tpmB, "tpm2_flushcontext", p("ds.ctx"));
    tools(tpmB, "tpm2_flushcontext", "-t");

    Duplication in = new Duplication(read("bkey.pub"), read("bkey.dpriv"), read("bkey.seed"), new byte[0]);
    GeneratedKey imported = a.importDuplicate(KeyAlgorithm.EC_SIGN_P256_SHA256, in, new byte[0]);
    byte[] msg = "signed on A".getBytes(StandardCharsets.UTF_8);
    assertTrue(verifies(imported.publicKeyDer(), msg, a.sign(imported.handle(), sha256(msg))));
    assertTrue(verifies(imported.publicKeyDer(), Files.readAllBytes(dir.resolve("m2.txt")), read("b2.sig")),
        "B's own signature verifies with the key A imported: the same key");
    assertEquals(ExportPolicy.DUPLICABLE, a.exportPolicy(imported.handle()), "its foreign policy may allow duplication");

    // the same blob for another parent (B's backend SRK) is refused by B's TPM
    BackendException wrongParent = assertThrows(BackendException.class,
        () -> b.importDuplicate(KeyAlgorithm.EC_SIGN_P256_SHA256, in, new byte[0]));
    assertEquals(Kind.INVALID_INPUT, wrongParent.kind());
    assertTrue(wrongParent.getMessage().contains("refused the duplication blob"), wrongParent.getMessage());
    // as another algorithm: refused before any TPM command
    BackendException wrongAlg = assertThrows(BackendException.class,
        () -> a.importDuplicate(KeyAlgorithm.EC_SIGN_P384_SHA384, in, new byte[0]));
    assertTrue(wrongAlg.getMessage().contains("not a EC_SIGN_P384_SHA384 key"), wrongAlg.getMessage());
  }

  // --- backend to backend -----------------------------------------------------------------

  @Test
  void backendToBackend_withTransferAuth_bothSign_theSecondCannotReExport() throws Exception {
    GeneratedKey key = a.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.DUPLICABLE));
    GeneratedKey mac = a.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256, ExportPolicy.DUPLICABLE));
    KeyAttestation bSrk = b.certifySrk("nonce-1".getBytes());
    DuplicationTargets.Target target = DuplicationTargets.verify(bSrk.certifiedTpmPublic(), bSrk.attest(),
        ecdsaTpmtSignature(bSrk.signature()), bSrk.akTpmPublic(), Set.of(HexFormat.of().formatHex(bSrk.akName())),
        "nonce-1".getBytes());
    byte[] transfer = new byte[32];
    RANDOM.nextBytes(transfer);
    Duplication d = a.duplicate(key.handle(), target.tpmtPublic(), transfer);
    Duplication dm = a.duplicate(mac.handle(), target.tpmtPublic(), transfer);

    BackendException wrongAuth = assertThrows(BackendException.class,
        () -> b.importDuplicate(KeyAlgorithm.EC_SIGN_P256_SHA256, d, new byte[] {1, 2, 3}));
    assertTrue(wrongAuth.getMessage().contains("transfer auth"), wrongAuth.getMessage());

    GeneratedKey onB = b.importDuplicate(KeyAlgorithm.EC_SIGN_P256_SHA256, d, transfer);
    GeneratedKey macOnB = b.importDuplicate(KeyAlgorithm.HMAC_SHA256, dm, transfer);
    assertArrayEquals(key.publicKeyDer(), onB.publicKeyDer());
    byte[] msg = "either TPM".getBytes(StandardCharsets.UTF_8);
    assertTrue(verifies(key.publicKeyDer(), msg, a.sign(key.handle(), sha256(msg))));
    assertTrue(verifies(key.publicKeyDer(), msg, b.sign(onB.handle(), sha256(msg))));
    assertArrayEquals(a.mac(mac.handle(), msg), b.mac(macOnB.handle(), msg), "one HMAC key on two TPMs");
    assertEquals(ExportPolicy.DUPLICABLE, b.exportPolicy(onB.handle()));
    assertArrayEquals(a.policyDigest(key.handle()), b.policyDigest(onB.handle()), "the policy moved with the key");

    BackendException reExport = assertThrows(BackendException.class,
        () -> b.duplicate(onB.handle(), a.certifySrk(null).certifiedTpmPublic(), new byte[0]));
    assertTrue(reExport.getMessage().contains("another deployment"), reExport.getMessage());
    // the blob survives a reopen of B's backend
    b.close();
    b = TpmKeyProtectionBackend.open(tpmB.config(), SECRET_B);
    assertTrue(verifies(key.publicKeyDer(), msg, b.sign(onB.handle(), sha256(msg))));
  }

  /** Our KeyAttestation holds a DER ECDSA signature; DuplicationTargets takes tpm2-tools' TPMT_SIGNATURE. */
  private static byte[] ecdsaTpmtSignature(byte[] der) {
    org.bouncycastle.asn1.ASN1Sequence seq = org.bouncycastle.asn1.ASN1Sequence.getInstance(der);
    byte[] r = org.bouncycastle.util.BigIntegers.asUnsignedByteArray(32,
        org.bouncycastle.asn1.ASN1Integer.getInstance(seq.getObjectAt(0)).getValue());
    byte[] s = org.bouncycastle.util.BigIntegers.asUnsignedByteArray(32,
        org.bouncycastle.asn1.ASN1Integer.getInstance(seq.getObjectAt(1)).getValue());
    java.nio.ByteBuffer bb = java.nio.ByteBuffer.allocate(4 + 2 + 32 + 2 + 32);
    bb.putShort((short) 0x0018).putShort((short) 0x000B).putShort((short) 32).put(r).putShort((short) 32).put(s);
    return bb.array();
  }
}
