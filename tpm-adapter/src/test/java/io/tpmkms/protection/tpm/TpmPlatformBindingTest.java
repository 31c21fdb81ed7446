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
import io.tpmkms.protection.PlatformBinding;
import io.tpmkms.protection.SignatureVerifier;
import io.tpmkms.protection.tpm.internal.KeyPolicy;
import io.tpmkms.protection.tpm.internal.TpmBlob;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Keys bound to platform state (ADR 0036) on a real swtpm: the key's policy asserts PCR 16, so
 * after {@code tpm2_pcrextend} the TPM itself refuses every use (the backend is called directly,
 * nothing above it decides), and after {@code tpm2_pcrreset} the key works again. tpm2-tools is
 * the outsider: with the key's auth value but no PolicyPCR it cannot sign.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TpmPlatformBindingTest {
  private static final byte[] AUTH_SECRET = TpmKeyProtectionBackendTest.AUTH_SECRET;
  private static final String EXTEND = "16:sha256=" + "ab".repeat(32);
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

  @BeforeEach
  void resetPcr16() throws Exception {
    tools("tpm2_pcrreset", "16");
  }

  private String tools(String... args) throws Exception {
    backend.releaseConnection(); // swtpm serves one connection at a time
    List<String> cmd = new ArrayList<>(List.of(args[0], "-T", swtpm.tcti()));
    cmd.addAll(Arrays.asList(args).subList(1, args.length));
    return Swtpm.runAllowingFailure(cmd, 30);
  }

  private byte[] sign(KeyHandle h, String text) {
    return backend.sign(h, KeyAlgorithm.EC_SIGN_P256_SHA256.digest(text.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void signingKeyBoundToPcr16_theTpmRefusesAfterAnExtend_andSignsAgainAfterAReset() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.NON_EXPORTABLE,
        PlatformBinding.current(16)));
    PlatformBinding bound = backend.platformBinding(k.handle()).orElseThrow();
    assertArrayEquals(new int[] {16}, bound.pcrs());
    assertArrayEquals(backend.pcrValues(new int[] {16})[0], bound.values()[0], "bound to the value PCR 16 held");
    byte[] digest = KeyAlgorithm.EC_SIGN_P256_SHA256.digest("while the platform is as bound".getBytes());
    assertTrue(SignatureVerifier.verifyDigest(KeyAlgorithm.EC_SIGN_P256_SHA256, k.publicKeyDer(), digest,
        backend.sign(k.handle(), digest)));

    assertTrue(tools("tpm2_pcrextend", EXTEND).startsWith("exit 0"));
    BackendException refused = assertThrows(BackendException.class, () -> sign(k.handle(), "after the change"));
    assertEquals(Kind.PLATFORM_STATE_MISMATCH, refused.kind());
    assertTrue(refused.getMessage().contains("PCR 16"), refused.getMessage());
    assertTrue(refused.getCause().getMessage().contains("PolicyPCR"), "the TPM refused: " + refused.getCause());
    // the attestation (an ADMIN branch without PCRs) still shows what the key is bound to
    KeyAttestation att = backend.certify(k.handle(), new byte[] {1, 2, 3});
    assertArrayEquals(KeyPolicy.platformBound(KeyAlgorithm.EC_SIGN_P256_SHA256, bound).authPolicy(),
        KeyAttestationVerifier.verifyResult(att, backend.tpmPublic(k.handle()), new byte[] {1, 2, 3}).authPolicy());
    assertTrue(KeyAttestationVerifier.boundTo(backend.tpmPublic(k.handle()), KeyAlgorithm.EC_SIGN_P256_SHA256, bound));

    tools("tpm2_pcrreset", "16");
    assertTrue(SignatureVerifier.verifyDigest(KeyAlgorithm.EC_SIGN_P256_SHA256, k.publicKeyDer(), digest,
        backend.sign(k.handle(), digest)), "works again once PCR 16 is back to the bound value");
  }

  @Test
  void aeadAndMacKeys_refusedByTheTpmWhileThePcrDiffers() throws Exception {
    GeneratedKey aead = backend.generate(new KeySpec(KeyAlgorithm.AES_256_GCM, ExportPolicy.NON_EXPORTABLE,
        PlatformBinding.current(16)));
    GeneratedKey mac = backend.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256, ExportPolicy.NON_EXPORTABLE,
        PlatformBinding.current(16)));
    byte[] ct = backend.encrypt(aead.handle(), "secret".getBytes(), new byte[0]);
    byte[] tag = backend.mac(mac.handle(), "data".getBytes());
    byte[] longData = new byte[5000]; // HMAC_Start + sequence
    byte[] longTag = backend.mac(mac.handle(), longData);

    tools("tpm2_pcrextend", EXTEND);
    for (Runnable use : List.<Runnable>of(
        () -> backend.decrypt(aead.handle(), ct, new byte[0]),
        () -> backend.encrypt(aead.handle(), "x".getBytes(), new byte[0]),
        () -> backend.mac(mac.handle(), "data".getBytes()),
        () -> backend.mac(mac.handle(), longData))) {
      BackendException e = assertThrows(BackendException.class, use::run);
      assertEquals(Kind.PLATFORM_STATE_MISMATCH, e.kind(), e.getMessage());
    }

    tools("tpm2_pcrreset", "16");
    assertArrayEquals("secret".getBytes(), backend.decrypt(aead.handle(), ct, new byte[0]));
    assertArrayEquals(tag, backend.mac(mac.handle(), "data".getBytes()));
    assertArrayEquals(longTag, backend.mac(mac.handle(), longData));
  }

  @Test
  void boundToPredictedValues_unusableNow_usableAfterThePlannedExtend() throws Exception {
    byte[] now = backend.pcrValues(new int[] {16})[0];
    byte[] predicted = MessageDigest.getInstance("SHA-256").digest(concat(now, HexFormat.of().parseHex("ab".repeat(32))));
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.NON_EXPORTABLE,
        new PlatformBinding(new int[] {16}, new byte[][] {predicted})));
    assertEquals(Kind.PLATFORM_STATE_MISMATCH,
        assertThrows(BackendException.class, () -> sign(k.handle(), "before")).kind());
    tools("tpm2_pcrextend", EXTEND); // the planned change, e.g. a firmware update
    assertArrayEquals(predicted, backend.pcrValues(new int[] {16})[0]);
    byte[] digest = KeyAlgorithm.EC_SIGN_P256_SHA256.digest("after".getBytes(StandardCharsets.UTF_8));
    assertTrue(SignatureVerifier.verifyDigest(KeyAlgorithm.EC_SIGN_P256_SHA256, k.publicKeyDer(), digest,
        backend.sign(k.handle(), digest)));
  }

  @Test
  void twoPcrs_eitherChangedRefuses_andTheMessageNamesIt() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.NON_EXPORTABLE,
        PlatformBinding.current(23, 16)));
    assertArrayEquals(new int[] {16, 23}, backend.platformBinding(k.handle()).orElseThrow().pcrs());
    sign(k.handle(), "ok");
    tools("tpm2_pcrextend", "23:sha256=" + "cd".repeat(32));
    BackendException e = assertThrows(BackendException.class, () -> sign(k.handle(), "no"));
    assertTrue(e.getMessage().contains("PCRs 16,23") && e.getMessage().endsWith("PCR 23"), e.getMessage());
    tools("tpm2_pcrreset", "23");
    sign(k.handle(), "ok again");
  }

  @Test
  void editedBindingInTheBlob_doesNotLoad() {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.NON_EXPORTABLE,
        PlatformBinding.current(16)));
    byte[] blob = k.handle().blob();
    byte[] edited = blob.clone();
    edited[edited.length - 1] ^= 1; // the last byte of PCR 16's bound value
    BackendException e = assertThrows(BackendException.class, () -> backend.sign(new KeyHandle(edited),
        KeyAlgorithm.EC_SIGN_P256_SHA256.digest(new byte[1])));
    assertEquals(Kind.KEY_INVALID, e.kind(), e.getMessage());
    TpmBlob decoded = TpmBlob.decode(blob, TpmBlob.BACKEND_TPM);
    assertTrue(decoded.platformBound());
    assertFalse(decoded.duplicable());
    assertEquals(ExportPolicy.NON_EXPORTABLE, backend.exportPolicy(k.handle()));
    assertEquals(Kind.INVALID_INPUT, assertThrows(BackendException.class,
        () -> backend.duplicate(k.handle(), new byte[10], new byte[0])).kind());
  }

  @Test
  void pcrChanged_isRetried_theRealResponseCode() {
    // TPM_RC_PCR_CHANGED = RC_VER1 + 0x028 (Part 2 §6.6.3); as a format-zero code it has no handle/parameter bits
    assertTrue(io.tpmkms.protection.tpm.internal.ResponseCodes.isRetryable(0x128));
    assertFalse(io.tpmkms.protection.tpm.internal.ResponseCodes.isRetryable(0x167), "0x167 is TPM_CC_LoadExternal");
    assertEquals(tss.tpm.TPM_RC.PCR_CHANGED.toInt(), io.tpmkms.protection.tpm.internal.ResponseCodes.PCR_CHANGED);
  }

  @Test
  void noBindingOnSoftwareKeysOrImports_andDuplicableRefused() throws Exception {
    var software = new io.tpmkms.protection.software.SoftwareKeyProtectionBackend(
        new io.tpmkms.protection.software.RootKeySource() {
          @Override public byte[] rootSeed() { return new byte[32]; }
        });
    assertEquals(Kind.UNSUPPORTED, assertThrows(BackendException.class, () -> software.generate(new KeySpec(
        KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.NON_EXPORTABLE, PlatformBinding.current(16)))).kind());
    var gen = java.security.KeyPairGenerator.getInstance("EC");
    gen.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
    var material = io.tpmkms.protection.KeyMaterial.parse(KeyAlgorithm.EC_SIGN_P256_SHA256,
        gen.generateKeyPair().getPrivate().getEncoded());
    assertEquals(Kind.UNSUPPORTED, assertThrows(BackendException.class, () -> backend.importKey(new KeySpec(
        KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.NON_EXPORTABLE, PlatformBinding.current(16)), material)).kind());
    assertThrows(IllegalArgumentException.class, () -> new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256,
        ExportPolicy.DUPLICABLE, PlatformBinding.current(16)));
    assertThrows(IllegalArgumentException.class, () -> PlatformBinding.current(24));
    assertThrows(IllegalArgumentException.class, () -> PlatformBinding.current(1, 2, 3, 4, 5, 6, 7, 8, 9));
    assertThrows(IllegalArgumentException.class, () -> PlatformBinding.current(16, 16));
    assertThrows(IllegalArgumentException.class, () -> new PlatformBinding(new int[] {16}, new byte[][] {new byte[20]}));
  }

  @Test
  void tpm2Tools_withTheAuthValueButWithoutPolicyPcr_cannotSign() throws Exception {
    GeneratedKey k = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256, ExportPolicy.NON_EXPORTABLE,
        PlatformBinding.current(16)));
    TpmBlob blob = TpmBlob.decode(k.handle().blob(), TpmBlob.BACKEND_TPM);
    Path d = Files.createDirectories(swtpm.dir.resolve("outsider"));
    Files.write(d.resolve("key.pub"), blob.tpm2bPublic());
    Files.write(d.resolve("key.priv"), blob.tpm2bPrivate());
    Files.writeString(d.resolve("data.txt"), "an outsider's message");
    String auth = HexFormat.of().formatHex(authValue(blob.objectId()));
    String p = d.toString() + "/";
    assertTrue(tools("tpm2_createprimary", "-C", "o", "-G", "ecc256:null:aes128cfb", "-a",
        TpmBackendOnSwtpmTest.SRK_ATTRIBUTES, "-c", p + "srk.ctx").startsWith("exit 0"));
    tools("tpm2_flushcontext", "-t"); // swtpm holds 3 transient objects; tpm2-tools leaves them loaded
    String load = tools("tpm2_load", "-C", p + "srk.ctx", "-u", p + "key.pub", "-r", p + "key.priv", "-c", p + "key.ctx");
    assertTrue(load.startsWith("exit 0"), load);
    tools("tpm2_flushcontext", "-t");
    // with the auth value as a password: userWithAuth is CLEAR, the TPM wants a policy session
    String password = tools("tpm2_sign", "-c", p + "key.ctx", "-p", "hex:" + auth, "-g", "sha256", "-o", p + "s1",
        p + "data.txt");
    assertFalse(password.startsWith("exit 0"), password);
    assertTrue(password.toLowerCase().contains("0x12f"), "refused for want of a policy session: " + password);
    // a policy session that asserts the auth value but not the PCRs cannot reach the key's policy
    List<byte[]> branches = backend.policyBranches(k.handle());
    assertEquals(3, branches.size(), "Sign (with PCRs), Certify, ObjectChangeAuth");
    List<String> files = new ArrayList<>();
    for (int i = 0; i < branches.size(); i++) {
      Files.write(d.resolve("b" + i), branches.get(i));
      files.add(p + "b" + i);
    }
    tools("tpm2_startauthsession", "--policy-session", "-S", p + "s.ctx");
    tools("tpm2_policycommandcode", "-S", p + "s.ctx", "TPM2_CC_Sign");
    tools("tpm2_policyauthvalue", "-S", p + "s.ctx");
    String or = tools("tpm2_policyor", "-S", p + "s.ctx", "-l", "sha256:" + String.join(",", files));
    assertFalse(or.startsWith("exit 0"), "the digest without PolicyPCR is none of the key's branches: " + or);
    String signed = tools("tpm2_sign", "-c", p + "key.ctx", "-p", "session:" + p + "s.ctx+hex:" + auth, "-g", "sha256",
        "-o", p + "s2", p + "data.txt");
    assertFalse(signed.startsWith("exit 0"), or + "\n" + signed);
    assertFalse(signed.contains("out of memory"), signed);
    tools("tpm2_flushcontext", p + "s.ctx");
    // and the same session with tpm2_policypcr does sign: the binding is the whole difference
    tools("tpm2_startauthsession", "--policy-session", "-S", p + "t.ctx");
    tools("tpm2_policycommandcode", "-S", p + "t.ctx", "TPM2_CC_Sign");
    tools("tpm2_policypcr", "-S", p + "t.ctx", "-l", "sha256:16");
    tools("tpm2_policyauthvalue", "-S", p + "t.ctx");
    tools("tpm2_policyor", "-S", p + "t.ctx", "-l", "sha256:" + String.join(",", files));
    String ok = tools("tpm2_sign", "-c", p + "key.ctx", "-p", "session:" + p + "t.ctx+hex:" + auth, "-g", "sha256",
        "-o", p + "s3", p + "data.txt");
    assertTrue(ok.startsWith("exit 0"), ok);
    tools("tpm2_flushcontext", "-t");
  }

  private static byte[] authValue(byte[] objectId) throws Exception {
    Mac m = Mac.getInstance("HmacSHA256");
    m.init(new SecretKeySpec(AUTH_SECRET, "HmacSHA256"));
    m.update("tpmkms/tpm/auth/v1".getBytes(StandardCharsets.US_ASCII));
    return m.doFinal(objectId);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
