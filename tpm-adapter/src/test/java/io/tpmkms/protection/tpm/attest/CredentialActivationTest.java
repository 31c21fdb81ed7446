package io.tpmkms.protection.tpm.attest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.attest.CredentialActivation.ActivationException;
import io.tpmkms.protection.tpm.attest.CredentialActivation.Credential;
import io.tpmkms.protection.tpm.attest.CredentialActivation.Refusal;
import io.tpmkms.protection.tpm.attest.TpmAttestation.EkType;
import io.tpmkms.protection.tpm.internal.Marshal;
import io.tpmkms.protection.tpm.internal.Templates;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Credential activation on swtpm (two instances: "this TPM" and "another TPM"): our software
 * MakeCredential round-trips through the TPM's ActivateCredential for RSA and ECC EKs; tpm2-tools
 * interoperates both ways (our credential file activates with tpm2_activatecredential under
 * tpm2-tools' own EK and AK; tpm2_makecredential's file activates with ours); and the TPM refuses a
 * credential made for another key's name, another TPM's EK, or altered.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CredentialActivationTest {
  private static final SecureRandom RANDOM = new SecureRandom();
  private Swtpm swtpm;
  private Swtpm other;
  private TpmConnection tpm;
  private TpmConnection otherTpm;
  private TpmAttestation att;

  @BeforeAll
  void start() throws Exception {
    swtpm = Swtpm.start();
    other = Swtpm.start();
    tpm = TpmConnection.open(swtpm.config());
    otherTpm = TpmConnection.open(other.config());
    att = new TpmAttestation(tpm);
  }

  @AfterAll
  void stop() throws Exception {
    for (AutoCloseable c : new AutoCloseable[] {tpm, otherTpm, swtpm, other}) if (c != null) c.close();
  }

  private static byte[] secret() {
    byte[] s = new byte[32];
    RANDOM.nextBytes(s);
    return s;
  }

  @Test
  void makeThenActivate_returnsTheSecret_rsaAndEccEk() throws Exception {
    byte[] akName = att.attestationKey().name();
    for (EkType type : EkType.values()) {
      byte[] secret = secret();
      Credential c = CredentialActivation.make(att.endorsementKey(type).tpmtPublic(), akName, secret);
      assertArrayEquals(secret, att.activateCredential(type, c), type.toString());
    }
    byte[] shortSecret = {1, 2, 3};
    Credential c = CredentialActivation.make(att.endorsementKey(EkType.RSA_2048).tpmtPublic(), akName, shortSecret);
    assertArrayEquals(shortSecret, att.activateCredential(EkType.RSA_2048, c));
  }

  @Test
  void theSameAk_everyTime() {
    assertArrayEquals(att.attestationKey().name(), att.attestationKey().name());
    assertArrayEquals(att.endorsementKey(EkType.RSA_2048).name(), att.endorsementKey(EkType.RSA_2048).name());
  }

  @Test
  void aCredentialForAnotherKeysName_isRefused() throws Exception {
    byte[] ek = att.endorsementKey(EkType.RSA_2048).tpmtPublic();
    byte[] otherName = Templates.name(EkTemplates.eccP256().toBytes()); // any other 34-byte name
    ActivationException e = assertThrows(ActivationException.class,
        () -> att.activateCredential(EkType.RSA_2048, CredentialActivation.make(ek, otherName, secret())));
    assertEquals(Refusal.NOT_FOR_THIS_KEY, e.refusal(), e.getMessage());
    // the other TPM's AK (same template, other endorsement seed) is another name too
    byte[] otherAk = new TpmAttestation(otherTpm).attestationKey().name();
    assertTrue(!Arrays.equals(otherAk, att.attestationKey().name()));
    ActivationException e2 = assertThrows(ActivationException.class,
        () -> att.activateCredential(EkType.RSA_2048, CredentialActivation.make(ek, otherAk, secret())));
    assertEquals(Refusal.NOT_FOR_THIS_KEY, e2.refusal(), e2.getMessage());
  }

  @Test
  void aCredentialForAnotherTpmsEk_isRefused() throws Exception {
    byte[] akName = att.attestationKey().name();
    TpmAttestation otherAtt = new TpmAttestation(otherTpm);
    for (EkType type : EkType.values()) {
      byte[] otherEk = otherAtt.endorsementKey(type).tpmtPublic();
      ActivationException e = assertThrows(ActivationException.class,
          () -> att.activateCredential(type, CredentialActivation.make(otherEk, akName, secret())));
      // RSA: the seed's OAEP decoding fails; ECC: ECDH gives another seed, so the integrity HMAC fails
      assertEquals(type == EkType.RSA_2048 ? Refusal.NOT_FOR_THIS_EK : Refusal.NOT_FOR_THIS_KEY, e.refusal(),
          type + ": " + e.getMessage());
    }
    // the refusal did not break this TPM
    byte[] again = secret();
    assertArrayEquals(again, att.activateCredential(EkType.RSA_2048,
        CredentialActivation.make(att.endorsementKey(EkType.RSA_2048).tpmtPublic(), akName, again)));
    // and the other TPM does activate it for its own AK
    byte[] secret = secret();
    Credential mine = CredentialActivation.make(otherAtt.endorsementKey(EkType.RSA_2048).tpmtPublic(),
        otherAtt.attestationKey().name(), secret);
    assertArrayEquals(secret, otherAtt.activateCredential(EkType.RSA_2048, mine));
  }

  @Test
  void anAlteredCredential_isRefused() throws Exception {
    byte[] ek = att.endorsementKey(EkType.RSA_2048).tpmtPublic();
    Credential c = CredentialActivation.make(ek, att.attestationKey().name(), secret());
    byte[] blob = c.credentialBlob();
    blob[blob.length - 1] ^= 1; // encIdentity
    ActivationException e = assertThrows(ActivationException.class,
        () -> att.activateCredential(EkType.RSA_2048, new Credential(blob, c.encryptedSecret())));
    assertEquals(Refusal.NOT_FOR_THIS_KEY, e.refusal(), e.getMessage());
  }

  @Test
  void inputs_areChecked() {
    byte[] ek = att.endorsementKey(EkType.RSA_2048).tpmtPublic();
    byte[] name = att.attestationKey().name();
    assertThrows(IllegalArgumentException.class, () -> CredentialActivation.make(ek, name, new byte[33]));
    assertThrows(IllegalArgumentException.class, () -> CredentialActivation.make(ek, name, new byte[0]));
    assertThrows(IllegalArgumentException.class, () -> CredentialActivation.make(ek, new byte[20], new byte[8]));
    assertThrows(IllegalArgumentException.class,
        () -> CredentialActivation.make(att.attestationKey().tpmtPublic(), name, new byte[8]), "an AK is no EK");
    assertThrows(IllegalArgumentException.class, () -> Credential.fromTpm2ToolsFile(new byte[] {1, 2, 3, 4, 0, 0}));
    byte[] file = CredentialActivation.make(ek, name, new byte[8]).toTpm2ToolsFile();
    assertThrows(IllegalArgumentException.class,
        () -> Credential.fromTpm2ToolsFile(Arrays.copyOf(file, file.length - 1)));
  }

  // --- tpm2-tools ---------------------------------------------------------------------------

  @Test
  void ourCredential_activatesWithTpm2Tools() throws Exception {
    Path d = Files.createDirectories(swtpm.dir.resolve("ours-to-tools"));
    tools("tpm2_createek", "-c", d.resolve("ek.ctx"), "-G", "rsa", "-u", d.resolve("ek.pub"));
    tools("tpm2_createak", "-C", d.resolve("ek.ctx"), "-c", d.resolve("ak.ctx"), "-G", "ecc", "-g", "sha256",
        "-s", "ecdsa", "-u", d.resolve("ak.pub"), "-n", d.resolve("ak.name"));
    byte[] ekPublic = TpmtPublic.fromTpm2b(Files.readAllBytes(d.resolve("ek.pub")));
    assertArrayEquals(att.endorsementKey(EkType.RSA_2048).tpmtPublic(), ekPublic, "tpm2_createek: the same EK");
    byte[] secret = secret();
    Credential c = CredentialActivation.make(ekPublic, Files.readAllBytes(d.resolve("ak.name")), secret);
    Files.write(d.resolve("cred"), c.toTpm2ToolsFile());
    Path session = d.resolve("session.ctx");
    tools("tpm2_startauthsession", "--policy-session", "-S", session);
    tools("tpm2_policysecret", "-S", session, "-c", "e");
    tools("tpm2_activatecredential", "-c", d.resolve("ak.ctx"), "-C", d.resolve("ek.ctx"), "-i", d.resolve("cred"),
        "-o", d.resolve("out"), "-P", "session:" + session);
    assertArrayEquals(secret, Files.readAllBytes(d.resolve("out")));
    toolsAllowingFailure("tpm2_flushcontext", "-t");
  }

  @Test
  void tpm2ToolsCredential_activatesWithOurs() throws Exception {
    Path d = Files.createDirectories(swtpm.dir.resolve("tools-to-ours"));
    var ek = att.endorsementKey(EkType.RSA_2048);
    byte[] akName = att.attestationKey().name();
    Files.write(d.resolve("ek.pub"), new Marshal().tpm2b(ek.tpmtPublic()).toBytes());
    byte[] secret = secret();
    Files.write(d.resolve("secret"), secret);
    String out = Swtpm.runAllowingFailure(List.of("tpm2_makecredential", "-T", "none", "-e", d.resolve("ek.pub").toString(),
        "-s", d.resolve("secret").toString(), "-n", HexFormat.of().formatHex(akName), "-o",
        d.resolve("cred").toString()), 30);
    assertTrue(out.startsWith("exit 0"), out);
    Credential c = Credential.fromTpm2ToolsFile(Files.readAllBytes(d.resolve("cred")));
    assertArrayEquals(secret, att.activateCredential(EkType.RSA_2048, c));
  }

  private String tools(Object... args) throws Exception {
    String out = toolsAllowingFailure(args);
    assertTrue(out.startsWith("exit 0"), out);
    return out;
  }

  private String toolsAllowingFailure(Object... args) throws Exception {
    tpm.releaseConnection(); // swtpm serves one connection at a time
    List<String> cmd = new ArrayList<>(List.of(args[0].toString(), "-T", swtpm.tcti()));
    for (int i = 1; i < args.length; i++) cmd.add(args[i].toString());
    return Swtpm.runAllowingFailure(cmd, 60);
  }
}
