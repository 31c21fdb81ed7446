package io.tpmkms.key.testing;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A real PostgreSQL 17 (Maven-shipped binaries, no Docker) for the tests of one
 * Quarkus app, and a fresh audit journal directory to go with it (the journal
 * and the outbox together hold the app's audit events).
 */
public class PostgresResource implements QuarkusTestResourceLifecycleManager {
  private EmbeddedPostgres pg;

  @Override
  public Map<String, String> start() {
    try {
      pg = EmbeddedPostgres.builder().start();
    } catch (IOException e) {
      throw new IllegalStateException("cannot start embedded PostgreSQL", e);
    }
    Path journal;
    try {
      journal = Files.createTempDirectory("tpmkms-audit-journal");
    } catch (IOException e) {
      throw new IllegalStateException("cannot create the audit journal directory", e);
    }
    return Map.of(
        "quarkus.datasource.jdbc.url", pg.getJdbcUrl("postgres", "postgres"),
        "quarkus.datasource.username", "postgres",
        "quarkus.datasource.password", "postgres",
        "tpmkms.audit.journal.dir", journal.toString());
  }

  @Override
  public void stop() {
    if (pg != null) {
      try {
        pg.close();
      } catch (IOException ignored) {
        // the process is gone with the JVM anyway
      }
    }
  }
}
