package io.tpmkms.platform.tpm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.tpm.RootSeal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The sealed root seed's settings (ADR 0034) as the key and audit services read them. */
class RootSealSettingsTest {
  @TempDir Path tmp;

  RootSeal of(String pcrs, Path secret, Path newSecret) {
    return RootSealSettings.of(Optional.ofNullable(pcrs), Optional.ofNullable(secret).map(Path::toString),
        Optional.ofNullable(newSecret).map(Path::toString), tmp.resolve("data"));
  }

  @Test
  void pcrs_defaultSevenNoneOrAList() {
    assertArrayEquals(new int[] {7}, of(null, null, null).pcrs());
    assertArrayEquals(new int[0], of("none", null, null).pcrs());
    assertArrayEquals(new int[] {0, 7, 16}, of(" 16, 0,7 ", null, null).pcrs());
    for (String bad : new String[] {"abc", "24", "7,7", "0,1,2,3,4,5,6,7,8", "-1"}) {
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> of(bad, null, null));
      assertTrue(e.getMessage().contains("root-seal-pcrs") && e.getMessage().contains(bad), e.getMessage());
    }
  }

  @Test
  void secret_fromAFileOutsideTheDataDir_oneTrailingNewlineDropped() throws Exception {
    Path secret = Files.writeString(tmp.resolve("root.secret"), "s3cret\n");
    assertArrayEquals("s3cret".getBytes(StandardCharsets.UTF_8), of(null, secret, null).secret());
    assertNull(of(null, null, null).secret());

    Path inside = Files.createDirectories(tmp.resolve("data")).resolve("root.secret");
    Files.writeString(inside, "s3cret");
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> of(null, inside, null));
    assertTrue(e.getMessage().contains("inside the data dir"), e.getMessage());

    Path empty = Files.writeString(tmp.resolve("empty.secret"), "\n");
    assertTrue(assertThrows(IllegalStateException.class, () -> of(null, empty, null)).getMessage().contains("empty"));
    assertTrue(assertThrows(IllegalStateException.class, () -> of(null, tmp.resolve("missing"), null)).getMessage()
        .contains("cannot read"));
    IllegalStateException alone = assertThrows(IllegalStateException.class, () -> of(null, null, secret));
    assertTrue(alone.getMessage().contains("root-secret-file must name the current one"), alone.getMessage());
    assertArrayEquals("s3cret".getBytes(StandardCharsets.UTF_8), of(null, secret, secret).newSecret());
  }

  @Test
  void secret_throughASymlinkIntoTheDataDir_isRefused() throws Exception {
    Path inside = Files.createDirectories(tmp.resolve("data")).resolve("root.secret");
    Files.writeString(inside, "s3cret");
    Path link = Files.createSymbolicLink(tmp.resolve("looks-outside.secret"), inside);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> of(null, link, null));
    assertTrue(e.getMessage().contains("inside the data dir"), e.getMessage());
    Path dataLink = Files.createSymbolicLink(tmp.resolve("data-link"), tmp.resolve("data"));
    IllegalStateException viaDataDir = assertThrows(IllegalStateException.class, () -> RootSealSettings.of(
        Optional.empty(), Optional.of(inside.toString()), Optional.empty(), dataLink));
    assertTrue(viaDataDir.getMessage().contains("inside the data dir"), viaDataDir.getMessage());
  }

  @Test
  void recoveryKeys_publicPemAnywhere_privatePemOutsideTheDataDir_P256Only() throws Exception {
    var gen = java.security.KeyPairGenerator.getInstance("EC");
    gen.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
    var pair = gen.generateKeyPair();
    Path pub = Files.writeString(tmp.resolve("recovery.pub.pem"), pem("PUBLIC KEY", pair.getPublic().getEncoded()));
    Path priv = Files.writeString(tmp.resolve("recovery.pem"), pem("PRIVATE KEY", pair.getPrivate().getEncoded()));
    assertTrue(java.util.Arrays.equals(io.tpmkms.protection.tpm.RootRecovery.publicArea(pair.getPublic()),
        of("7", null, null).withRecovery(RootSealSettings.recoveryPublicKey(pub.toString())).recoveryPublicArea()));
    java.security.PrivateKey key = RootSealSettings.recoveryPrivateKey(priv.toString(), tmp.resolve("data"));
    assertTrue(java.util.Arrays.equals(pair.getPrivate().getEncoded(), key.getEncoded()));

    Path inside = Files.createDirectories(tmp.resolve("data")).resolve("recovery.pem");
    Files.copy(priv, inside);
    assertTrue(assertThrows(IllegalStateException.class, () -> RootSealSettings.recoveryPrivateKey(inside.toString(),
        tmp.resolve("data"))).getMessage().contains("inside the data dir"));
    var rsa = java.security.KeyPairGenerator.getInstance("RSA").generateKeyPair();
    Path rsaPub = Files.writeString(tmp.resolve("rsa.pub.pem"), pem("PUBLIC KEY", rsa.getPublic().getEncoded()));
    IllegalStateException notP256 = assertThrows(IllegalStateException.class,
        () -> RootSealSettings.recoveryPublicKey(rsaPub.toString()));
    assertTrue(notP256.getMessage().contains("root-recovery-public-key-file"), notP256.getMessage());
  }

  private static String pem(String label, byte[] der) {
    return "-----BEGIN " + label + "-----\n" + java.util.Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
        + "\n-----END " + label + "-----\n";
  }
}
