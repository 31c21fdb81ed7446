package io.tpmkms.system;

import io.tpmkms.devtools.Keycloak;
import io.tpmkms.devtools.ServiceProcess;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The audit, policy and key services as packaged processes with authentication on (Keycloak's
 * realm), each on its own PostgreSQL, over mutual TLS ({@link SystemTls}), the key and policy
 * services delivering their events to the audit service: the stack the system tests that need all
 * three start. Extra settings per service go in the maps.
 */
final class ThreeServices implements AutoCloseable {
  final EmbeddedPostgres auditDb;
  final EmbeddedPostgres policyDb;
  final EmbeddedPostgres keyDb;
  ServiceProcess audit;
  ServiceProcess policy;
  ServiceProcess key;
  final int auditPort;
  final int policyPort;
  final int keyPort;
  /** The HTTP (metrics) ports. */
  final int auditHttp;
  final int policyHttp;
  final int keyHttp;

  private ThreeServices() throws Exception {
    auditDb = EmbeddedPostgres.builder().start();
    policyDb = EmbeddedPostgres.builder().start();
    keyDb = EmbeddedPostgres.builder().start();
    int[] ports = ServiceProcess.freePorts(6);
    auditPort = ports[0];
    policyPort = ports[1];
    keyPort = ports[2];
    auditHttp = ports[3];
    policyHttp = ports[4];
    keyHttp = ports[5];
  }

  static ThreeServices start(Path dir, Keycloak keycloak, String realm, Map<String, String> auditExtra,
      Map<String, String> policyExtra, Map<String, String> keyExtra) throws Exception {
    Path root = Path.of("..").toAbsolutePath().normalize();
    ThreeServices s = new ThreeServices();
    try {
      Map<String, String> auditEnv = db(s.auditDb);
      auditEnv.put("TPMKMS_AUDIT_GRPC_PORT", Integer.toString(s.auditPort));
      auditEnv.put("TPMKMS_AUDIT_HTTP_PORT", Integer.toString(s.auditHttp));
      auditEnv.put("TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("audit")).toString());
      auditEnv.put("TPMKMS_OIDC_URL", keycloak.issuer(realm));
      auditEnv.put("TPMKMS_POLICY_SERVICE", "127.0.0.1:" + s.policyPort);
      // decisions, not their latency: a loaded 2-core machine sometimes took over the 2 s default
      auditEnv.put("TPMKMS_AUTHZ_TIMEOUT", "10s");
      auditEnv.putAll(SystemTls.env("audit-service"));
      auditEnv.putAll(auditExtra);
      s.audit = ServiceProcess.start(root.resolve("audit-service/target/quarkus-app/quarkus-run.jar"), auditEnv,
          dir.resolve("audit.log"));

      Map<String, String> policyEnv = db(s.policyDb);
      policyEnv.put("TPMKMS_POLICY_GRPC_PORT", Integer.toString(s.policyPort));
      policyEnv.put("TPMKMS_POLICY_HTTP_PORT", Integer.toString(s.policyHttp));
      policyEnv.put("TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("policy")).toString());
      policyEnv.put("TPMKMS_OIDC_URL", keycloak.issuer(realm));
      policyEnv.put("TPMKMS_AUDIT_ADDRESS", "127.0.0.1:" + s.auditPort);
      policyEnv.putAll(SystemTls.env("policy-service"));
      policyEnv.putAll(policyExtra);
      s.policy = ServiceProcess.start(root.resolve("policy-service/target/quarkus-app/quarkus-run.jar"), policyEnv,
          dir.resolve("policy.log"));

      Map<String, String> keyEnv = db(s.keyDb);
      keyEnv.put("TPMKMS_GRPC_PORT", Integer.toString(s.keyPort));
      keyEnv.put("TPMKMS_HTTP_PORT", Integer.toString(s.keyHttp));
      keyEnv.put("TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("key")).toString());
      keyEnv.put("TPMKMS_OIDC_URL", keycloak.issuer(realm));
      keyEnv.put("TPMKMS_POLICY_SERVICE", "127.0.0.1:" + s.policyPort);
      keyEnv.put("TPMKMS_AUDIT_FORWARD_TO", "127.0.0.1:" + s.auditPort);
      keyEnv.putAll(SystemTls.env("key-service"));
      keyEnv.putAll(keyExtra);
      s.key = ServiceProcess.start(root.resolve("key-service/target/quarkus-app/quarkus-run.jar"), keyEnv,
          dir.resolve("key.log"));
      return s;
    } catch (Exception | Error e) {
      s.close();
      throw e;
    }
  }

  static Map<String, String> db(EmbeddedPostgres pg) {
    Map<String, String> env = new LinkedHashMap<>();
    env.put("QUARKUS_DATASOURCE_JDBC_URL", pg.getJdbcUrl("postgres", "postgres"));
    env.put("QUARKUS_DATASOURCE_USERNAME", "postgres");
    env.put("QUARKUS_DATASOURCE_PASSWORD", "postgres");
    return env;
  }

  @Override
  public void close() throws Exception {
    for (ServiceProcess p : new ServiceProcess[] {key, policy, audit}) {
      if (p != null) p.close();
    }
    for (EmbeddedPostgres db : new EmbeddedPostgres[] {keyDb, policyDb, auditDb}) {
      if (db != null) db.close();
    }
  }
}
