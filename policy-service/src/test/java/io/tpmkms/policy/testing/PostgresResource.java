package io.tpmkms.policy.testing;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.util.Map;

/** A real PostgreSQL 17 (Maven-shipped binaries, no Docker) for the tests of one Quarkus app. */
public class PostgresResource implements QuarkusTestResourceLifecycleManager {
  private EmbeddedPostgres pg;

  @Override
  public Map<String, String> start() {
    try {
      pg = EmbeddedPostgres.builder().start();
    } catch (IOException e) {
      throw new IllegalStateException("cannot start embedded PostgreSQL", e);
    }
    return Map.of(
        "quarkus.datasource.jdbc.url", pg.getJdbcUrl("postgres", "postgres"),
        "quarkus.datasource.username", "postgres",
        "quarkus.datasource.password", "postgres");
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
