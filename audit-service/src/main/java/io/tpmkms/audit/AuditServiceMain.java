package io.tpmkms.audit;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;
import io.tpmkms.platform.database.EmbeddedDatabase;

/**
 * Entry point. With no {@code QUARKUS_DATASOURCE_JDBC_URL} configured, starts
 * the zero-setup default first: a real PostgreSQL from Maven-shipped binaries,
 * its data kept in {@code $TPMKMS_DATA_DIR/audit-pg} (default {@code .tpmkms/audit-pg}),
 * apart from the key service's database: each service owns its schema.
 */
@QuarkusMain
public final class AuditServiceMain {
  private AuditServiceMain() {}

  public static void main(String... args) {
    EmbeddedDatabase.startIfNoDatabaseConfigured("audit-pg");
    Quarkus.run(args);
  }
}
