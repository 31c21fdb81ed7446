package io.tpmkms.protection.tpm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.BackendException.Kind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The NV extend index on swtpm: define once, extend = SHA-256(old || data) from zeros, survives restarts, tpm2-tools agrees. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TpmNvExtendIndexTest {
  private Swtpm swtpm;
  private TpmConnection connection;

  @BeforeAll
  void start() throws Exception {
    swtpm = Swtpm.start();
    connection = TpmConnection.open(swtpm.config());
  }

  @AfterAll
  void stop() throws Exception {
    if (connection != null) connection.close();
    if (swtpm != null) swtpm.close();
  }

  @Test
  void extend_fromZeros_matchesSha256Chain_andSurvivesTpmRestart() throws Exception {
    TpmNvExtendIndex nv = new TpmNvExtendIndex(connection, 0x01500101);
    assertFalse(nv.exists());
    assertTrue(nv.defineIfAbsent());
    assertFalse(nv.defineIfAbsent(), "second define is a no-op");
    assertArrayEquals(new byte[32], nv.read(), "never extended: zeros");

    byte[] expected = new byte[32];
    for (int i = 0; i < 5; i++) {
      byte[] head = sha256(new byte[] {(byte) i});
      nv.extend(head);
      expected = sha256(concat(expected, head));
      assertArrayEquals(expected, nv.read(), "after extend " + i);
    }

    swtpm.restart(); // kill -9 and start: the value is in NV, not in RAM
    assertArrayEquals(expected, nv.read());
    assertFalse(nv.defineIfAbsent());

    // tpm2-tools reads the same value
    connection.releaseConnection();
    Path f = Files.createTempFile(swtpm.dir, "nv", ".bin");
    Swtpm.run(List.of("tpm2_nvread", "-T", swtpm.tcti(), "-s", "32", "-o", f.toString(), "0x01500101"), 30);
    assertArrayEquals(expected, Files.readAllBytes(f));
    String pub = Swtpm.run(List.of("tpm2_nvreadpublic", "-T", swtpm.tcti(), "0x01500101"), 30);
    // TPM_NT_EXTEND (4) in bits 4-7 of the attributes (tpm2-tools 5.4 prints the friendly nt field wrong)
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("attributes:[\\s\\S]*?value: 0x([0-9A-Fa-f]+)").matcher(pub);
    assertTrue(m.find(), pub);
    assertEquals(4, (Integer.parseUnsignedInt(m.group(1), 16) >>> 4) & 0xF, pub);
    assertTrue(pub.contains("sha256"), pub);
  }

  @Test
  void defineIfAbsent_onAnOrdinaryIndex_refuses() throws Exception {
    connection.releaseConnection();
    Swtpm.run(List.of("tpm2_nvdefine", "-T", swtpm.tcti(), "-C", "o", "-s", "32", "-a", "ownerread|ownerwrite",
        "0x01500102"), 30);
    TpmNvExtendIndex nv = new TpmNvExtendIndex(connection, 0x01500102);
    BackendException e = assertThrows(BackendException.class, nv::defineIfAbsent);
    assertEquals(Kind.KEY_INVALID, e.kind());
  }

  @Test
  void undefine_thenDefine_startsFromZeros() {
    TpmNvExtendIndex nv = new TpmNvExtendIndex(connection, 0x01500103);
    nv.defineIfAbsent();
    nv.extend(HexFormat.of().parseHex("00ff"));
    assertFalse(java.util.Arrays.equals(new byte[32], nv.read()));
    nv.undefine();
    assertFalse(nv.exists());
    assertTrue(nv.defineIfAbsent());
    assertArrayEquals(new byte[32], nv.read());
    assertEquals(Kind.INVALID_INPUT, assertThrows(BackendException.class, () -> nv.extend(new byte[0])).kind());
  }

  private static byte[] sha256(byte[] b) throws Exception {
    return MessageDigest.getInstance("SHA-256").digest(b);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
