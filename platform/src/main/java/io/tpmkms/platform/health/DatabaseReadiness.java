package io.tpmkms.platform.health;

import io.agroal.api.AgroalDataSource;
import io.quarkus.runtime.Startup;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Instance;
import java.sql.Connection;
import java.util.Optional;

/** Readiness: the service's database answers (a pooled connection that is valid within 2 s). */
@Startup
@ApplicationScoped
public class DatabaseReadiness {
  public DatabaseReadiness(Readiness readiness, Instance<AgroalDataSource> db) {
    if (!db.isResolvable()) return;
    AgroalDataSource ds = db.get();
    readiness.register("database", () -> {
      try (Connection c = ds.getConnection()) {
        return c.isValid(2) ? Optional.empty() : Optional.of("the database does not answer");
      } catch (Exception e) {
        return Optional.of("the database is unreachable (" + e.getClass().getSimpleName() + ")");
      }
    });
  }
}
