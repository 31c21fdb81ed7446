package io.tpmkms.audit.testing;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.util.Map;

/**
 * A real PostgreSQL 17 (Maven-shipped binaries, no Docker) for the tests of
 * the audit service, durable like production (fsync and synchronous_commit
 * on), so the measured append rate is a durable one. {@link #stopDatabase}
 * lets a test take the database away.
 */
public class PostgresResource implements QuarkusTestResourceLifecycleManager {
  private static EmbeddedPostgres pg;

  @Override
  public Map<String, String> start() {
    try {
      pg = EmbeddedPostgres.builder()
          .setServerConfig("fsync", "on")
          .setServerConfig("synchronous_commit", "on")
          .start();
    } catch (IOException e) {
      throw new IllegalStateException("cannot start embedded PostgreSQL", e);
    }
    return Map.of(
        "quarkus.datasource.jdbc.url", pg.getJdbcUrl("postgres", "postgres"),
        "quarkus.datasource.username", "postgres",
        "quarkus.datasource.password", "postgres");
  }

  /** Stops the database under the running service (the last test of a class only). */
  public static void stopDatabase() throws IOException {
    if (pg != null) {
      pg.close();
      pg = null;
    }
  }

  @Override
  public void stop() {
    try {
      stopDatabase();
    } catch (IOException ignored) {
      // the process is gone with the JVM anyway
    }
  }
}
