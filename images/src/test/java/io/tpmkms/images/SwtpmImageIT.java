package io.tpmkms.images;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The swtpm image runs: its entrypoint, unchanged, in the unpacked image (state in /var/lib/swtpm,
 * sockets in /run/swtpm), answers TPM 2.0 commands on its UNIX socket: TPM2_Startup (already done
 * by --flags startup-clear: success or TPM_RC_INITIALIZE) and TPM2_GetRandom (success, 16 bytes).
 */
class SwtpmImageIT {
  static final int TPM_RC_SUCCESS = 0;
  static final int TPM_RC_INITIALIZE = 0x100;

  @Test
  void swtpmAnswersTpmCommands() throws Exception {
    assumeTrue(Images.swtpm(), "built with -Dimages.swtpm=false");
    Path work = Images.workDir("swtpm");
    OciImage image = OciImage.open("swtpm", work);
    RootFs root = RootFs.unpack(image, work.resolve("swtpm-root"));
    JsonNode config = image.config.path("config");
    List<String> entrypoint = new ArrayList<>(ImagesContentIT.strings(config.path("Entrypoint")));
    if (!root.chroot) entrypoint.replaceAll(a -> a.replace("=/", "=" + root.root + "/"));
    Path log = work.resolve("swtpm.log");
    Process process = root.command(entrypoint, "/", ImagesRunIT.imageEnv(config), log).start();
    try {
      Path socket = root.root.resolve("run/swtpm/tpm.sock");
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (!Files.exists(socket) && process.isAlive() && System.nanoTime() < deadline) Thread.sleep(20);
      if (!Files.exists(socket)) {
        fail("swtpm made no socket at " + socket + " (alive: " + process.isAlive() + "):\n" + RootFs.tail(log, 20));
      }
      try (SocketChannel tpm = SocketChannel.open(StandardProtocolFamily.UNIX)) {
        tpm.connect(UnixDomainSocketAddress.of(socket));
        // TPM2_Startup(TPM_SU_CLEAR): tag NO_SESSIONS, size 12, command code 0x144
        ByteBuffer startup = command(tpm, hex("80010000000c000001440000"));
        int rc = startup.getInt(6);
        assertTrue(rc == TPM_RC_SUCCESS || rc == TPM_RC_INITIALIZE, "TPM2_Startup: 0x" + Integer.toHexString(rc));

        // TPM2_GetRandom(16): command code 0x17B
        byte[] first = getRandom(tpm);
        byte[] second = getRandom(tpm);
        assertFalse(java.util.Arrays.equals(first, second), "two GetRandom answers differ");
      }
      assertTrue(process.isAlive(), "swtpm still runs");
      // the chart's startup and liveness probe: swtpm_ioctl -g (swtpm's configuration flags) over the control socket
      Path probeLog = work.resolve("swtpm-probe.log");
      Process probe = root.command(List.of("/usr/bin/swtpm_ioctl", "--unix",
          "/run/swtpm/ctrl.sock", "-g"), "/", ImagesRunIT.imageEnv(config), probeLog).start();
      assertTrue(probe.waitFor(10, TimeUnit.SECONDS), "swtpm_ioctl ends");
      assertEquals(0, probe.exitValue(), "the probe passes while swtpm runs:\n" + RootFs.tail(probeLog, 10));
      assertTrue(process.isAlive(), "swtpm still runs after the probe");
    } finally {
      root.stop(process, 5);
    }
    Images.deleteUnpacked(work);
  }

  private static byte[] getRandom(SocketChannel tpm) throws IOException {
    ByteBuffer response = command(tpm, hex("80010000000c0000017b0010"));
    assertEquals(TPM_RC_SUCCESS, response.getInt(6), "TPM2_GetRandom response code");
    assertEquals(16, response.getShort(10), "TPM2B_DIGEST size");
    byte[] random = new byte[16];
    response.get(12, random);
    return random;
  }

  /** Sends one command and reads its whole response (size at offset 2 of the 10-byte header). */
  private static ByteBuffer command(SocketChannel tpm, byte[] command) throws IOException {
    ByteBuffer out = ByteBuffer.wrap(command);
    while (out.hasRemaining()) tpm.write(out);
    ByteBuffer header = ByteBuffer.allocate(10);
    readFully(tpm, header);
    int size = header.getInt(2);
    assertTrue(size >= 10 && size <= 4096, "response size " + size);
    ByteBuffer response = ByteBuffer.allocate(size);
    response.put(header.array());
    readFully(tpm, response);
    assertArrayEquals(new byte[] {(byte) 0x80, 0x01}, new byte[] {response.get(0), response.get(1)}, "tag");
    return response;
  }

  private static void readFully(SocketChannel channel, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      if (channel.read(buffer) < 0) throw new EOFException("swtpm closed the connection");
    }
  }

  private static byte[] hex(String hex) {
    return java.util.HexFormat.of().parseHex(hex);
  }
}
