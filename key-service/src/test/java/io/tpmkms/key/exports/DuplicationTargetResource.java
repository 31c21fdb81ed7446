package io.tpmkms.key.exports;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.tpmkms.protection.tpm.Swtpm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * A second machine's TPM for duplication tests: a fresh swtpm ("TPM B") on which tpm2-tools made
 * a storage key under B's SRK (parent.pub/.priv/.ctx), an ECC attestation key under B's EK
 * (ak.pub/.name) and the AK's TPM2_Certify of the storage key (attest.out, sig.out). The app
 * under test trusts that AK ({@code tpmkms.duplication.trusted-attestation-keys}).
 */
public class DuplicationTargetResource implements QuarkusTestResourceLifecycleManager {
  private static volatile Swtpm tpmB;
  private static volatile Path dir;

  public static Swtpm tpm() { return tpmB; }

  public static Path dir() { return dir; }

  /** Runs a tpm2-tools command on TPM B, then flushes what it left loaded (no resource manager). */
  public static String tools(String... cmd) throws Exception {
    List<String> c = new ArrayList<>(List.of(cmd));
    c.add(1, "-T");
    c.add(2, tpmB.tcti());
    try {
      return Swtpm.run(c, 60);
    } finally {
      if (!cmd[0].equals("tpm2_flushcontext")) {
        Swtpm.runAllowingFailure(List.of("tpm2_flushcontext", "-T", tpmB.tcti(), "-t"), 30);
      }
    }
  }

  public static String toolsAllowingFailure(String... cmd) throws Exception {
    List<String> c = new ArrayList<>(List.of(cmd));
    c.add(1, "-T");
    c.add(2, tpmB.tcti());
    try {
      return Swtpm.runAllowingFailure(c, 60);
    } finally {
      Swtpm.runAllowingFailure(List.of("tpm2_flushcontext", "-T", tpmB.tcti(), "-t"), 30);
    }
  }

  public static String p(String name) { return dir.resolve(name).toString(); }

  static final String SRK_ATTRIBUTES = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt";

  @Override
  public Map<String, String> start() {
    try {
      tpmB = Swtpm.start();
      dir = Files.createTempDirectory("tpmkms-dup-target-");
      tools("tpm2_createprimary", "-C", "o", "-G", "ecc256:null:aes128cfb", "-a", SRK_ATTRIBUTES, "-c", p("bsrk.ctx"));
      tools("tpm2_create", "-C", p("bsrk.ctx"), "-G", "ecc256:null:aes128cfb", "-a",
          "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda", "-u", p("parent.pub"),
          "-r", p("parent.priv"));
      tools("tpm2_load", "-C", p("bsrk.ctx"), "-u", p("parent.pub"), "-r", p("parent.priv"), "-c", p("parent.ctx"));
      tools("tpm2_createek", "-c", p("ek.ctx"), "-G", "ecc", "-u", p("ek.pub"));
      tools("tpm2_createak", "-C", p("ek.ctx"), "-c", p("ak.ctx"), "-G", "ecc", "-g", "sha256", "-s", "ecdsa",
          "-u", p("ak.pub"), "-n", p("ak.name"), "-r", p("ak.priv"));
      tools("tpm2_flushcontext", "-s");
      tools("tpm2_certify", "-c", p("parent.ctx"), "-C", p("ak.ctx"), "-g", "sha256", "-o", p("attest.out"),
          "-s", p("sig.out"));
      String akName = HexFormat.of().formatHex(Files.readAllBytes(dir.resolve("ak.name")));
      return Map.of("tpmkms.duplication.trusted-attestation-keys", akName);
    } catch (Exception e) {
      throw new IllegalStateException("cannot prepare the duplication target TPM", e);
    }
  }

  @Override
  public void stop() {
    try {
      if (tpmB != null) tpmB.close();
    } catch (Exception ignored) {
      // the temp dir goes with the machine
    }
  }
}
