package io.tpmkms.policy.testing;

import io.quarkus.test.common.QuarkusTestResourceLifecycleManager;
import io.tpmkms.devtools.Keycloak;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A real Keycloak (the Central distribution, no Docker) with the versioned
 * tpmkms realm, for tests that run the policy service with
 * {@code tpmkms.auth.mode=oidc}.
 */
public class KeycloakResource implements QuarkusTestResourceLifecycleManager {
  static final Path REALM = Path.of("..", "deploy", "keycloak", "tpmkms-realm.json");
  private static volatile Keycloak current;

  /** The Keycloak of the running test app. */
  public static Keycloak current() { return current; }

  @Override
  public Map<String, String> start() {
    try {
      current = Keycloak.start(Files.createTempDirectory("tpmkms-policy-keycloak"));
      current.importRealm(REALM);
      return Map.of(
          "tpmkms.auth.mode", "oidc",
          "quarkus.oidc.tenant-enabled", "true",
          "quarkus.oidc.auth-server-url", current.issuer("tpmkms"));
    } catch (Exception e) {
      throw new IllegalStateException("cannot start Keycloak", e);
    }
  }

  @Override
  public void stop() {
    if (current != null) current.close();
  }
}
