package io.tpmkms.system;

import io.tpmkms.devtools.Keycloak;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One Keycloak (with the repo's tpmkms realm) for every system test in this
 * JVM: starting one costs tens of seconds. Each test class makes its own
 * users, so they do not see each other; the process ends with the JVM.
 */
final class SharedKeycloak {
  static final String REALM = "tpmkms";
  private static Keycloak keycloak;

  private SharedKeycloak() {}

  static synchronized Keycloak get() throws Exception {
    if (keycloak != null && keycloak.isAlive()) return keycloak;
    Path root = Path.of("..").toAbsolutePath().normalize();
    Keycloak k = Keycloak.start(Files.createTempDirectory("tpmkms-system-keycloak"));
    Runtime.getRuntime().addShutdownHook(new Thread(k::close));
    k.importRealm(root.resolve("deploy/keycloak/tpmkms-realm.json"));
    keycloak = k;
    return k;
  }
}
