package io.tpmkms.tls;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PemFilesTest {
  @TempDir
  Path dir;

  /** Runs openssl (the tool operators make keys with); fails the test when it fails. */
  private void openssl(String... args) throws Exception {
    var cmd = new java.util.ArrayList<String>();
    cmd.add("openssl");
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertEquals(0, p.waitFor(), "openssl " + String.join(" ", args) + ": " + out);
  }

  private java.security.PublicKey publicKeyOf(String keyFile, String alg) throws Exception {
    openssl("pkey", "-in", keyFile, "-pubout", "-outform", "DER", "-out", keyFile + ".pub");
    return java.security.KeyFactory.getInstance(alg)
        .generatePublic(new java.security.spec.X509EncodedKeySpec(Files.readAllBytes(dir.resolve(keyFile + ".pub"))));
  }

  @Test
  void readsOpensslKeys_pkcs8_pkcs1_andSec1() throws Exception {
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa8.key");
    openssl("pkey", "-in", "rsa8.key", "-traditional", "-out", "rsa1.key");
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec8.key");
    openssl("ec", "-in", "ec8.key", "-out", "sec1.key");
    openssl("genpkey", "-algorithm", "ED25519", "-out", "ed.key");
    assertTrue(Files.readString(dir.resolve("rsa1.key")).contains("BEGIN RSA PRIVATE KEY"));
    assertTrue(Files.readString(dir.resolve("sec1.key")).contains("BEGIN EC PRIVATE KEY"));
    assertTrue(Files.readString(dir.resolve("ec8.key")).contains("BEGIN PRIVATE KEY"));
    var rsaPub = publicKeyOf("rsa8.key", "RSA");
    var ecPub = publicKeyOf("ec8.key", "EC");
    assertTrue(PemFiles.matches(PemFiles.privateKey(dir.resolve("rsa8.key")), rsaPub));
    assertTrue(PemFiles.matches(PemFiles.privateKey(dir.resolve("rsa1.key")), rsaPub));
    assertTrue(PemFiles.matches(PemFiles.privateKey(dir.resolve("ec8.key")), ecPub));
    assertTrue(PemFiles.matches(PemFiles.privateKey(dir.resolve("sec1.key")), ecPub));
    assertTrue(PemFiles.matches(PemFiles.privateKey(dir.resolve("ed.key")), publicKeyOf("ed.key", "Ed25519")));
  }

  @Test
  void encryptedKey_isRefused_sayingSo() throws Exception {
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-256-cbc", "-pass", "pass:pw",
        "-out", "enc.key");
    Path p = dir.resolve("enc.key");
    assertTrue(Files.readString(p).contains("ENCRYPTED PRIVATE KEY"));
    var e = assertThrows(InvalidTlsFileException.class, () -> PemFiles.privateKey(p));
    assertTrue(e.getMessage().contains("encrypted private key"), e.getMessage());
    assertEquals(p, e.file());
  }

  @Test
  void missingFile_garbage_andCertificateAsKey_areNamedProblems() throws Exception {
    Path missing = dir.resolve("nope.crt");
    assertTrue(assertThrows(InvalidTlsFileException.class, () -> PemFiles.certificates(missing)).getMessage()
        .endsWith("does not exist"));
    Path garbage = dir.resolve("garbage.crt");
    Files.writeString(garbage, "not a certificate\n");
    assertThrows(InvalidTlsFileException.class, () -> PemFiles.certificates(garbage));
    assertThrows(InvalidTlsFileException.class, () -> PemFiles.privateKey(garbage));
    var ca = DevPki.newAuthority("t", Duration.ofDays(1));
    Path cert = dir.resolve("ca.crt");
    ca.writeCertificate(cert);
    var e = assertThrows(InvalidTlsFileException.class, () -> PemFiles.privateKey(cert));
    assertTrue(e.getMessage().contains("not a private key"), e.getMessage());
  }

  @Test
  void matches_isFalse_forAnotherKey() throws Exception {
    var ca = DevPki.newAuthority("t", Duration.ofDays(1));
    var a = ca.issue(List.of("a"), Duration.ofDays(1));
    var b = ca.issue(List.of("b"), Duration.ofDays(1));
    assertTrue(PemFiles.matches(a.keys().getPrivate(), a.certificate().getPublicKey()));
    assertFalse(PemFiles.matches(a.keys().getPrivate(), b.certificate().getPublicKey()));
  }
}
