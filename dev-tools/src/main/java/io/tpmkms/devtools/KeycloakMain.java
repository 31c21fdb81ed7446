package io.tpmkms.devtools;

import org.jboss.logging.Logger;

import java.nio.file.Path;

/**
 * Runs one Keycloak in the foreground for the local run script: a persistent instance dir, the tpmkms realm
 * imported on its first start, one log line "keycloak ready on URL" once ready, stopped on SIGTERM/SIGINT (the launcher's
 * shutdown hook). A shell that starts it as a background job without job control makes it ignore SIGINT
 * (POSIX), so scripts stop it with SIGTERM. The classpath needs the glob expanded on its own ({@code echo}):
 * inside {@code jar:$(cat ...)} it would stay literal.
 *
 * <pre>
 * java -cp "$(echo service-support/target/tpmkms-service-support-*.jar):$(cat service-support/target/classpath.txt)" \
 *   io.tpmkms.devtools.KeycloakMain --data-dir .tpmkms/keycloak --port 8180 --management-port 9180 \
 *   --realm deploy/keycloak/tpmkms-realm.json
 * </pre>
 */
public final class KeycloakMain {
  private static final Logger LOG = Logger.getLogger(KeycloakMain.class);
  private KeycloakMain() {}

  public static void main(String[] args) throws Exception {
    Path dataDir = null;
    Path realm = null;
    int port = 8180;
    int managementPort = -1;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--data-dir" -> dataDir = Path.of(value(args, ++i, a));
        case "--port" -> port = Integer.parseInt(value(args, ++i, a));
        case "--management-port" -> managementPort = Integer.parseInt(value(args, ++i, a));
        case "--realm" -> realm = Path.of(value(args, ++i, a));
        case "-h", "--help" -> {
          usage();
          return;
        }
        default -> {
          System.err.println("unknown argument: " + a);
          usage();
          System.exit(2);
        }
      }
    }
    if (dataDir == null) {
      System.err.println("--data-dir is required");
      usage();
      System.exit(2);
    }
    if (managementPort < 0) managementPort = port + 1000;

    Keycloak kc;
    try {
      // not from the template: a long-lived instance gets its own master-realm keys and admin password
      kc = Keycloak.start(dataDir, port, managementPort, false);
    } catch (IllegalStateException e) {
      LOG.errorf("keycloak failed to start: %s", e.getMessage());
      System.exit(1);
      return;
    }
    if (realm != null) {
      String name = realmName(realm);
      boolean imported = kc.importRealm(realm);
      if (imported) {
        LOG.infof("keycloak: realm %s imported from %s", name, realm);
      } else {
        LOG.infof("keycloak: realm %s exists, %s not re-imported", name, realm);
      }
    }
    LOG.infof("keycloak ready on %s", kc.baseUrl());
    int status = kc.waitFor();
    // reached only when Keycloak died on its own; SIGTERM/SIGINT end the JVM through the shutdown hook
    LOG.errorf("keycloak exited with status %d; log: %s", status, kc.log());
    kc.close();
    System.exit(status == 0 ? 1 : status);
  }

  private static String realmName(Path realm) throws java.io.IOException {
    return new com.fasterxml.jackson.databind.ObjectMapper().readTree(realm.toFile()).path("realm").asText();
  }

  private static String value(String[] args, int i, String option) {
    if (i >= args.length) {
      System.err.println(option + " needs a value");
      System.exit(2);
    }
    return args[i];
  }

  private static void usage() {
    System.err.println("usage: KeycloakMain --data-dir DIR [--port 8180] [--management-port PORT+1000]"
        + " [--realm deploy/keycloak/tpmkms-realm.json]");
  }
}
