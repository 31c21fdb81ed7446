package io.tpmkms.protection.tpm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.tpm.internal.KeyPolicy;
import io.tpmkms.protection.tpm.internal.PolicyDigests;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The policy digests tpmkms computes in software against what tpm2-tools' trial sessions on
 * swtpm compute: each policy command alone, a DUPLICABLE key's whole authPolicy, branch by branch
 * and as PolicyOR.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PolicyDigestsTest {
  private Swtpm swtpm;
  private Path dir;

  @BeforeAll
  void start() throws Exception {
    swtpm = Swtpm.start();
    dir = Files.createTempDirectory("policy-digests");
  }

  @AfterAll
  void stop() throws Exception {
    if (swtpm != null) swtpm.close();
  }

  /** Runs tpm2 policy commands in one trial session and returns the final digest. */
  private byte[] trial(List<List<String>> commands) throws Exception {
    String t = swtpm.tcti();
    Path s = dir.resolve("s.ctx");
    Path out = dir.resolve("out.policy");
    Files.deleteIfExists(out);
    Swtpm.run(List.of("tpm2_startauthsession", "-T", t, "-S", s.toString()), 30);
    try {
      for (List<String> c : commands) {
        List<String> cmd = new ArrayList<>(List.of(c.get(0), "-T", t, "-S", s.toString(), "-L", out.toString()));
        cmd.addAll(c.subList(1, c.size()));
        Swtpm.run(cmd, 30);
      }
    } finally {
      Swtpm.run(List.of("tpm2_flushcontext", "-T", t, s.toString()), 30);
    }
    return Files.readAllBytes(out);
  }

  private Path file(String name, byte[] content) throws Exception {
    return Files.write(dir.resolve(name), content);
  }

  private static byte[] name(int seed) {
    byte[] n = new byte[34];
    new SecureRandom(new byte[] {(byte) seed}).nextBytes(n);
    n[0] = 0x00;
    n[1] = 0x0B;
    return n;
  }

  @Test
  void commandCodeAndAuthValue_matchTpm2Tools() throws Exception {
    for (int cc : new int[] {PolicyDigests.CC_SIGN, PolicyDigests.CC_HMAC, PolicyDigests.CC_RSA_DECRYPT,
        PolicyDigests.CC_CERTIFY, PolicyDigests.CC_OBJECT_CHANGE_AUTH, PolicyDigests.CC_DUPLICATE}) {
      byte[] tools = trial(List.of(List.of("tpm2_policycommandcode", "0x" + Integer.toHexString(cc)),
          List.of("tpm2_policyauthvalue")));
      assertArrayEquals(tools, KeyPolicy.authValueBranch(cc), "command code 0x" + Integer.toHexString(cc));
      byte[] ccOnly = trial(List.of(List.of("tpm2_policycommandcode", "0x" + Integer.toHexString(cc))));
      assertArrayEquals(ccOnly, PolicyDigests.commandCode(PolicyDigests.zero(), cc));
    }
  }

  @Test
  void authorizeAndDuplicationSelect_matchTpm2Tools() throws Exception {
    byte[] authority = name(1);
    Path an = file("authority.name", authority);
    Path ref = file("ref.bin", KeyPolicy.DUPLICATION_POLICY_REF);
    byte[] tools = trial(List.of(List.of("tpm2_policyauthorize", "-n", an.toString(), "-q", ref.toString())));
    assertArrayEquals(tools, PolicyDigests.authorize(authority, KeyPolicy.DUPLICATION_POLICY_REF));

    byte[] object = name(2);
    byte[] parent = name(3);
    Path on = file("object.name", object);
    Path pn = file("parent.name", parent);
    byte[] with = trial(List.of(List.of("tpm2_policyduplicationselect", "-n", on.toString(), "-N", pn.toString(),
        "--include-object")));
    assertArrayEquals(with, PolicyDigests.duplicationSelect(PolicyDigests.zero(), object, parent, true));
    byte[] without = trial(List.of(List.of("tpm2_policyduplicationselect", "-n", on.toString(), "-N",
        pn.toString())));
    assertArrayEquals(without, PolicyDigests.duplicationSelect(PolicyDigests.zero(), object, parent, false));
    assertNotEquals(HexFormat.of().formatHex(with), HexFormat.of().formatHex(without));
  }

  @Test
  void wholeKeyPolicy_matchesPolicyOrOfTpm2Tools() throws Exception {
    byte[] authority = name(4);
    for (KeyAlgorithm alg : new KeyAlgorithm[] {KeyAlgorithm.EC_SIGN_P256_SHA256, KeyAlgorithm.HMAC_SHA256,
        KeyAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256, KeyAlgorithm.AES_256_GCM}) {
      KeyPolicy p = KeyPolicy.duplicable(alg, authority);
      StringBuilder list = new StringBuilder("sha256:");
      for (int i = 0; i < p.branches().size(); i++) {
        if (i > 0) list.append(',');
        list.append(file(alg + "-" + i + ".policy", p.branches().get(i)));
      }
      byte[] tools = trial(List.of(List.of("tpm2_policyor", "-l", list.toString())));
      assertArrayEquals(tools, p.authPolicy(), alg.toString());
      assertTrue(p.branches().size() <= PolicyDigests.MAX_OR_BRANCHES);
      for (int cc : KeyPolicy.useCommands(alg)) assertTrue(p.allows(cc));
      assertTrue(p.allows(PolicyDigests.CC_CERTIFY));
      assertFalse(p.allows(PolicyDigests.CC_DUPLICATE), "no auth-value branch may name TPM2_Duplicate");
    }
    assertNotEquals(HexFormat.of().formatHex(KeyPolicy.duplicable(KeyAlgorithm.EC_SIGN_P256_SHA256, name(5)).authPolicy()),
        HexFormat.of().formatHex(KeyPolicy.duplicable(KeyAlgorithm.EC_SIGN_P256_SHA256, authority).authPolicy()),
        "the authority is part of the policy");
    assertEquals(5, KeyPolicy.duplicable(KeyAlgorithm.HMAC_SHA256, authority).branches().size(),
        "HMAC, HMAC_Start, Certify, ObjectChangeAuth, DUP");
  }
}
