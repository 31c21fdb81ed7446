package io.tpmkms.protection.tpm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import io.tpmkms.protection.tpm.internal.TpmBlob;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The software root seed sealed to platform state (issue 20, ADR 0034) on swtpm, with tpm2-tools
 * as the outsider: PCR 16 (the debug PCR, resettable) stands for the boot chain. The TPM itself
 * refuses: tpm2_unseal without the policy fails on our file, tpm2_unseal with tpm2_policypcr gives
 * our seed while PCR 16 is as sealed and fails after tpm2_pcrextend.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TpmSealedRootPolicyTest {
  private static final String ZERO_EXTEND = "16:sha256=" + "ab".repeat(32);
  private Swtpm swtpm;
  private TpmConnection tpm;

  @BeforeAll
  void start() throws Exception {
    swtpm = Swtpm.start();
    tpm = TpmConnection.open(swtpm.config());
  }

  @AfterAll
  void stop() throws Exception {
    if (tpm != null) tpm.close();
    if (swtpm != null) swtpm.close();
  }

  @BeforeEach
  void resetPcr16() throws Exception {
    tools("tpm2_pcrreset", "16");
  }

  private byte[] seed(Path file, RootSeal seal) {
    return new TpmSealedRootKeySource(tpm, file, null, seal).rootSeed();
  }

  private String tools(String... args) throws Exception {
    tpm.releaseConnection(); // swtpm serves one connection at a time
    List<String> cmd = new java.util.ArrayList<>(List.of(args[0], "-T", swtpm.tcti()));
    cmd.addAll(Arrays.asList(args).subList(1, args.length));
    return Swtpm.runAllowingFailure(cmd, 30);
  }

  private Path dir(String name) throws Exception {
    return Files.createDirectories(swtpm.dir.resolve(name));
  }

  @Test
  void boundToPcr16_theTpmRefusesAfterAnExtend_andUnsealsAgainAfterAReset() throws Exception {
    Path file = dir("pcr").resolve("software-root.sealed");
    byte[] seed = seed(file, RootSeal.pcrs(16));
    assertEquals("TKSR", new String(Files.readAllBytes(file), 0, 4, StandardCharsets.US_ASCII));
    assertArrayEquals(seed, seed(file, RootSeal.pcrs(16)));

    // the outsider with the file and the TPM: tpm2_load + tpm2_unseal no longer works (the attack of issue 20)
    Path d = dir("pcr-tools");
    writeObject(file, d);
    assertTrue(tools("tpm2_unseal", "-c", d.resolve("seal.ctx").toString()).startsWith("exit 1"),
        "unsealed without the policy");
    // with the policy, tpm2-tools gets exactly our seed: the binding is the TPM's, not ours
    assertArrayEquals(seed, toolsUnsealWithPcrPolicy(d));

    byte[] before = Files.readAllBytes(file);
    assertTrue(tools("tpm2_pcrextend", ZERO_EXTEND).startsWith("exit 0"));
    BackendException refused = assertThrows(BackendException.class, () -> seed(file, RootSeal.pcrs(16)));
    assertEquals(Kind.KEY_INVALID, refused.kind());
    assertTrue(refused.getMessage().contains("platform state changed") && refused.getMessage().contains("PCR 16 is "),
        refused.getMessage());
    assertArrayEquals(before, Files.readAllBytes(file), "nothing changed or deleted");
    assertTrue(toolsUnsealWithPcrPolicyOutput(d).startsWith("exit 1"), "the TPM itself refuses with PCR 16 changed");

    tools("tpm2_pcrreset", "16");
    assertArrayEquals(seed, seed(file, RootSeal.pcrs(16)), "the sealed state again: unseals");
  }

  @Test
  void operatorSecret_missingOrWrong_refused_rightOne_unseals_andRotates() throws Exception {
    Path file = dir("secret").resolve("software-root.sealed");
    byte[] a = "operator secret A, 32 bytes long".getBytes(StandardCharsets.UTF_8);
    byte[] b = "operator secret B, 32 bytes long".getBytes(StandardCharsets.UTF_8);
    byte[] seed = seed(file, RootSeal.pcrs(16).withSecret(a));
    // tpm2-tools with the PCR and the secret: our seed; with the PCR alone: refused
    Path d = dir("secret-tools");
    writeObject(file, d);
    String authHex = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(a));
    assertArrayEquals(seed, toolsUnseal(d, true, "+hex:" + authHex));
    assertTrue(toolsUnsealOutput(d, false, "").startsWith("exit 1"), "the PCR alone does not satisfy the policy");
    BackendException missing = assertThrows(BackendException.class, () -> seed(file, RootSeal.pcrs(16)));
    assertTrue(missing.getMessage().contains("operator secret") && missing.getMessage().contains("secret-file"),
        missing.getMessage());
    BackendException wrong = assertThrows(BackendException.class, () -> seed(file, RootSeal.pcrs(16).withSecret(b)));
    assertTrue(wrong.getMessage().contains("not the one"), wrong.getMessage());
    assertArrayEquals(seed, seed(file, RootSeal.pcrs(16).withSecret(a)));

    // rotation: unsealed with A, re-sealed with B
    assertArrayEquals(seed, seed(file, RootSeal.pcrs(16).withSecret(a).withNewSecret(b)));
    assertArrayEquals(seed, seed(file, RootSeal.pcrs(16).withSecret(b)));
    assertThrows(BackendException.class, () -> seed(file, RootSeal.pcrs(16).withSecret(a)));
  }

  /**
   * The documented path for a planned change of PCR 16 (docs/operations.md): re-seal to the secret
   * only while the old state holds, make the change, re-seal to the PCR again in the new state.
   */
  @Test
  void plannedChange_resealToTheSecretOnly_change_bindAgain() throws Exception {
    Path file = dir("planned").resolve("software-root.sealed");
    byte[] s = "an operator secret from a vault!".getBytes(StandardCharsets.UTF_8);
    byte[] seed = seed(file, RootSeal.pcrs(16).withSecret(s));
    assertArrayEquals(seed, seed(file, new RootSeal(new int[0], s, null)), "re-sealed to the secret only");
    tools("tpm2_pcrextend", ZERO_EXTEND); // the firmware update
    assertArrayEquals(seed, seed(file, new RootSeal(new int[0], s, null)), "unseals in the new state");
    assertArrayEquals(seed, seed(file, RootSeal.pcrs(16).withSecret(s)), "bound to the new state");
    assertArrayEquals(seed, seed(file, RootSeal.pcrs(16).withSecret(s)));
    tools("tpm2_pcrreset", "16"); // back to the old state: no longer the sealed one
    assertThrows(BackendException.class, () -> seed(file, RootSeal.pcrs(16).withSecret(s)));
  }

  /**
   * The recovery path (ADR 0034, "recovery"): the seed is sealed to PCR 16 with a recovery branch for an
   * offline EC P-256 key. After an unplanned change (tpm2_pcrextend) the normal start is refused; a
   * start with the recovery private key unseals it through PolicySigned and re-seals it to PCR 16's
   * new value, keeping the recovery branch; the next normal start works. A wrong recovery key, or one
   * given for a file sealed without a branch, is refused and changes nothing.
   */
  @Test
  void unplannedChange_recoveredWithTheOfflineRecoveryKey_andResealedToTheStateNow() throws Exception {
    Path file = dir("recovery").resolve("software-root.sealed");
    var gen = java.security.KeyPairGenerator.getInstance("EC");
    gen.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
    java.security.KeyPair recovery = gen.generateKeyPair();
    java.security.KeyPair other = gen.generateKeyPair();
    RootSeal sealed = RootSeal.pcrs(16).withRecovery(recovery.getPublic());
    byte[] seed = seed(file, sealed);
    assertArrayEquals(seed, seed(file, sealed), "the normal branch unseals while PCR 16 holds");
    byte[] sealedFile = Files.readAllBytes(file);
    assertArrayEquals(seed, seed(file, sealed.withRecoveryKey(recovery.getPrivate())));
    assertArrayEquals(sealedFile, Files.readAllBytes(file),
        "a recovery key left configured is not used while the normal branch works: no re-seal to any state");
    // tpm2-tools with the PCR policy alone no longer satisfies the object's policy (it is an OR now)
    Path d = dir("recovery-tools");
    writeObject(file, d);
    assertTrue(toolsUnsealWithPcrPolicyOutput(d).startsWith("exit 1"), "PolicyPCR alone is one branch of an OR");

    tools("tpm2_pcrextend", ZERO_EXTEND); // an unattended firmware update
    assertTrue(assertThrows(BackendException.class, () -> seed(file, sealed)).getMessage()
        .contains("root-recovery-key-file"), "the refusal names the way out");
    byte[] before = Files.readAllBytes(file);
    BackendException wrong = assertThrows(BackendException.class,
        () -> seed(file, sealed.withRecoveryKey(other.getPrivate())));
    assertTrue(wrong.getMessage().contains("not the one"), wrong.getMessage());
    assertArrayEquals(before, Files.readAllBytes(file), "nothing changed");

    assertArrayEquals(seed, seed(file, sealed.withRecoveryKey(recovery.getPrivate())), "recovered");
    assertArrayEquals(seed, seed(file, sealed), "re-sealed to PCR 16 as it is now: a normal start works");
    tools("tpm2_pcrextend", ZERO_EXTEND); // and the recovery branch was kept for the next time
    assertThrows(BackendException.class, () -> seed(file, sealed));
    assertArrayEquals(seed, seed(file, sealed.withRecoveryKey(recovery.getPrivate())));

    Path plain = dir("no-recovery").resolve("software-root.sealed");
    seed(plain, RootSeal.pcrs(16));
    tools("tpm2_pcrextend", ZERO_EXTEND);
    BackendException noBranch = assertThrows(BackendException.class,
        () -> seed(plain, RootSeal.pcrs(16).withRecoveryKey(recovery.getPrivate())));
    assertTrue(noBranch.getMessage().contains("without a recovery branch"), noBranch.getMessage());
    assertThrows(IllegalArgumentException.class, () -> RootSeal.NONE.withRecovery(recovery.getPublic()));
  }

  @Test
  void aFileWithoutPolicy_isResealedWithThePolicy() throws Exception {
    Path file = dir("legacy").resolve("software-root.sealed");
    byte[] seed = seed(file, RootSeal.NONE);
    assertEquals("TKMS", new String(Files.readAllBytes(file), 0, 4, StandardCharsets.US_ASCII), "the layout before");
    Path d = dir("legacy-tools");
    writeObject(file, d);
    assertTrue(tools("tpm2_unseal", "-c", d.resolve("seal.ctx").toString()).startsWith("exit 0"),
        "without a policy the file and the TPM are enough: what ADR 0034 closes");

    assertArrayEquals(seed, seed(file, RootSeal.pcrs(16)));
    assertEquals("TKSR", new String(Files.readAllBytes(file), 0, 4, StandardCharsets.US_ASCII));
    writeObject(file, d);
    assertTrue(tools("tpm2_unseal", "-c", d.resolve("seal.ctx").toString()).startsWith("exit 1"));
  }

  @Test
  void aTamperedPolicyHeader_isRefusedAsMalformed() throws Exception {
    Path file = dir("tamper").resolve("software-root.sealed");
    seed(file, RootSeal.pcrs(16));
    byte[] bytes = Files.readAllBytes(file);
    bytes[8] ^= 1; // the first byte of PCR 16's sealed value
    Files.write(file, bytes);
    BackendException e = assertThrows(BackendException.class, () -> seed(file, RootSeal.pcrs(16)));
    assertTrue(e.getMessage().contains("malformed"), e.getMessage());
  }

  @Test
  void selections_areChecked() {
    assertThrows(IllegalArgumentException.class, () -> RootSeal.pcrs(24));
    assertThrows(IllegalArgumentException.class, () -> RootSeal.pcrs(7, 7));
    assertThrows(IllegalArgumentException.class, () -> RootSeal.pcrs(0, 1, 2, 3, 4, 5, 6, 7, 8));
    assertArrayEquals(new int[] {7, 16}, RootSeal.pcrs(16, 7).pcrs());
    assertEquals("PCRs 7, 16 (SHA-256) and an operator secret", RootSeal.pcrs(16, 7).withSecret(new byte[] {1}).describe());
    assertFalse(RootSeal.pcrs(7).withSecret(new byte[] {1}).toString().contains("\u0001"));
  }

  /** The sealed object's public and private parts as tpm2_load takes them, loaded under tpm2-tools' SRK. */
  private void writeObject(Path file, Path d) throws Exception {
    byte[] bytes = Files.readAllBytes(file);
    byte[] object = bytes;
    if (new String(bytes, 0, 4, StandardCharsets.US_ASCII).equals("TKSR")) {
      int k = bytes[6] & 0xff;
      int at = 7 + k + 32 * k;
      if ((bytes[5] & 0x02) != 0) at += 2 + (((bytes[at] & 0xff) << 8) | (bytes[at + 1] & 0xff)); // the recovery key
      object = Arrays.copyOfRange(bytes, at, bytes.length);
    }
    TpmBlob blob = TpmBlob.decode(object, TpmBlob.BACKEND_TPM_SEALED_ROOT);
    Files.write(d.resolve("seal.pub"), blob.tpm2bPublic());
    Files.write(d.resolve("seal.priv"), blob.tpm2bPrivate());
    assertTrue(tools("tpm2_createprimary", "-C", "o", "-G", "ecc256:null:aes128cfb", "-a",
        TpmBackendOnSwtpmTest.SRK_ATTRIBUTES, "-c", d.resolve("srk.ctx").toString()).startsWith("exit 0"));
    String load = tools("tpm2_load", "-C", d.resolve("srk.ctx").toString(), "-u", d.resolve("seal.pub").toString(),
        "-r", d.resolve("seal.priv").toString(), "-c", d.resolve("seal.ctx").toString());
    assertTrue(load.startsWith("exit 0"), load);
    tools("tpm2_flushcontext", "-t");
  }

  private byte[] toolsUnsealWithPcrPolicy(Path d) throws Exception {
    return toolsUnseal(d, false, "");
  }

  private String toolsUnsealWithPcrPolicyOutput(Path d) throws Exception {
    return toolsUnsealOutput(d, false, "");
  }

  private byte[] toolsUnseal(Path d, boolean authValue, String password) throws Exception {
    String out = toolsUnsealOutput(d, authValue, password);
    assertTrue(out.startsWith("exit 0"), out);
    return Files.readAllBytes(d.resolve("seed.bin"));
  }

  /** tpm2_policypcr (PCR 16) [+ tpm2_policyauthvalue] in a policy session, then tpm2_unseal with it. */
  private String toolsUnsealOutput(Path d, boolean authValue, String password) throws Exception {
    Path session = d.resolve("session.ctx");
    Files.deleteIfExists(d.resolve("seed.bin"));
    String started = tools("tpm2_startauthsession", "--policy-session", "-S", session.toString());
    assertTrue(started.startsWith("exit 0"), started);
    try {
      String policy = tools("tpm2_policypcr", "-S", session.toString(), "-l", "sha256:16");
      assertTrue(policy.startsWith("exit 0"), policy);
      if (authValue) {
        String av = tools("tpm2_policyauthvalue", "-S", session.toString());
        assertTrue(av.startsWith("exit 0"), av);
      }
      return tools("tpm2_unseal", "-c", d.resolve("seal.ctx").toString(), "-p", "session:" + session + password,
          "-o", d.resolve("seed.bin").toString());
    } finally {
      tools("tpm2_flushcontext", session.toString());
      tools("tpm2_flushcontext", "-t");
    }
  }
}
