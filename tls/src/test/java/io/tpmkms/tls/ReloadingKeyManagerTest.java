package io.tpmkms.tls;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReloadingKeyManagerTest {
  @TempDir
  Path dir;

  @Test
  void reload_swapsIdentity_keepsPreviousAliasResolvable_andIgnoresUnchangedFiles() {
    var ca = DevPki.newAuthority("t", Duration.ofDays(1));
    Path cert = dir.resolve("tls.crt");
    Path key = dir.resolve("tls.key");
    var first = ca.issue(List.of("localhost"), Duration.ofDays(1));
    first.write(cert, key);
    var km = new ReloadingKeyManager(cert, key);
    String alias1 = km.chooseEngineServerAlias("EC", null, null);
    assertEquals(first.certificate(), km.getCertificateChain(alias1)[0]);
    assertNull(km.chooseEngineServerAlias("RSA", null, null), "an EC identity is not offered for RSA");
    assertFalse(km.reloadIfChanged());

    var second = ca.issue(List.of("localhost"), Duration.ofDays(1));
    second.write(cert, key);
    assertTrue(km.reloadIfChanged());
    String alias2 = km.chooseEngineServerAlias("EC", null, null);
    assertNotEquals(alias1, alias2);
    assertEquals(second.certificate(), km.getCertificateChain(alias2)[0]);
    // a handshake that chose alias1 just before the reload still gets generation 1's chain and key
    assertEquals(first.certificate(), km.getCertificateChain(alias1)[0]);
    assertArrayEquals(first.keys().getPrivate().getEncoded(), km.getPrivateKey(alias1).getEncoded());
    assertEquals(second.certificate(), km.certificate());
  }

  @Test
  void halfWrittenPair_keepsTheCurrentIdentity_untilTheKeyArrives() throws Exception {
    var ca = DevPki.newAuthority("t", Duration.ofDays(1));
    Path cert = dir.resolve("tls.crt");
    Path key = dir.resolve("tls.key");
    var first = ca.issue(List.of("localhost"), Duration.ofDays(1));
    first.write(cert, key);
    var km = new ReloadingKeyManager(cert, key);

    var second = ca.issue(List.of("localhost"), Duration.ofDays(1));
    Path stagedKey = dir.resolve("staged.key");
    second.write(cert, stagedKey); // the certificate is new, the key still the old one
    var e = assertThrows(InvalidTlsFileException.class, km::reloadIfChanged);
    assertTrue(e.getMessage().contains("is not the private key of the first certificate"), e.getMessage());
    assertEquals(first.certificate(), km.certificate());

    Files.move(stagedKey, key, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    assertTrue(km.reloadIfChanged());
    assertEquals(second.certificate(), km.certificate());
  }

  @Test
  void reloader_logsAndRetries_withoutThrowing() throws Exception {
    var ca = DevPki.newAuthority("t", Duration.ofDays(1));
    Path cert = dir.resolve("tls.crt");
    Path key = dir.resolve("tls.key");
    ca.issue(List.of("localhost"), Duration.ofDays(1)).write(cert, key);
    try (var reloader = new CertificateReloader(Duration.ofMillis(50))) {
      var km = reloader.watch(new ReloadingKeyManager(cert, key));
      Files.writeString(key, "garbage");
      reloader.checkAll(); // logged, not thrown
      var next = ca.issue(List.of("localhost"), Duration.ofDays(1));
      next.write(cert, key);
      long deadline = System.nanoTime() + 5_000_000_000L;
      while (!km.certificate().equals(next.certificate()) && System.nanoTime() < deadline) Thread.sleep(20);
      assertEquals(next.certificate(), km.certificate(), "the timer picks up the new pair");
    }
  }
}
