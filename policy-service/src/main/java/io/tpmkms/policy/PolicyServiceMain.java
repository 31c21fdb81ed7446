package io.tpmkms.policy;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;
import io.tpmkms.platform.database.EmbeddedDatabase;

/**
 * Entry point. With no {@code QUARKUS_DATASOURCE_JDBC_URL} configured, starts
 * the zero-setup default first: a real PostgreSQL from Maven-shipped
 * binaries, its data kept in {@code $TPMKMS_DATA_DIR/policy-pg} (the policy
 * service owns its schema, apart from the key and audit services' databases).
 */
@QuarkusMain
public final class PolicyServiceMain {
  private PolicyServiceMain() {}

  public static void main(String... args) {
    EmbeddedDatabase.startIfNoDatabaseConfigured("policy-pg");
    Quarkus.run(args);
  }
}
