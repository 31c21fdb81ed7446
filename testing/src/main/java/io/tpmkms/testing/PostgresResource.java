package io.tpmkms.testing;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.Map;

/**
 * A real PostgreSQL 17 (Maven-shipped binaries, no Docker) for the tests of one Quarkus app, and a
 * fresh audit journal directory to go with it (the journal and the outbox together hold the app's
 * audit events).
 *
 * <p>Init arguments: {@code durable=true}: fsync and synchronous_commit on, as in production, so a
 * measured append rate is a durable one; {@code audit-journal=false}: no journal directory (the
 * audit service, which has no journal). {@link #stopDatabase} lets a test take the database away
 * from the running app.
 */
public class PostgresResource implements QuarkusTestResourceLifecycleManager {
  private static volatile EmbeddedPostgres current;
  private boolean durable;
  private boolean auditJournal;

  @Override
  public void init(Map<String, String> initArgs) {
    durable = Boolean.parseBoolean(initArgs.getOrDefault("durable", "false"));
    auditJournal = Boolean.parseBoolean(initArgs.getOrDefault("audit-journal", "true"));
  }

  @Override
  public Map<String, String> start() {
    EmbeddedPostgres pg;
    try {
      EmbeddedPostgres.Builder builder = EmbeddedPostgres.builder();
      if (durable) {
        builder.setServerConfig("fsync", "on").setServerConfig("synchronous_commit", "on");
      }
      pg = builder.start();
    } catch (IOException e) {
      throw new IllegalStateException("cannot start embedded PostgreSQL", e);
    }
    current = pg;
    Map<String, String> config = new HashMap<>(Map.of(
        "quarkus.datasource.jdbc.url", pg.getJdbcUrl("postgres", "postgres"),
        "quarkus.datasource.username", "postgres",
        "quarkus.datasource.password", "postgres"));
    if (auditJournal) {
      try {
        config.put("tpmkms.audit.journal.dir", Files.createTempDirectory("tpmkms-audit-journal").toString());
      } catch (IOException e) {
        throw new IllegalStateException("cannot create the audit journal directory", e);
      }
    }
    return config;
  }

  /** Stops the database under the running app (the last test of a class only). */
  public static void stopDatabase() throws IOException {
    EmbeddedPostgres pg = current;
    if (pg != null) {
      current = null;
      pg.close();
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
