package io.tpmkms.key;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;
import io.tpmkms.platform.database.EmbeddedDatabase;

/**
 * Entry point. With no {@code QUARKUS_DATASOURCE_JDBC_URL} configured, starts
 * the zero-setup default first: a real PostgreSQL from Maven-shipped binaries,
 * its data kept in {@code $TPMKMS_DATA_DIR/pg} (default {@code .tpmkms/pg}).
 */
@QuarkusMain
public final class KeyServiceMain {
  private KeyServiceMain() {}

  public static void main(String... args) {
    EmbeddedDatabase.startIfNoDatabaseConfigured();
    Quarkus.run(args);
  }
}
