package io.tpmkms.console;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import org.eclipse.microprofile.config.spi.ConfigSource;

/**
 * A random secret for the encrypted state cookie of the login (it carries the PKCE code verifier
 * between the redirect to Keycloak and the callback) when none is configured
 * ({@code QUARKUS_OIDC_AUTHENTICATION_STATE_SECRET}). The console is a public client: there is no client secret
 * to derive one from. Per process, like the sessions themselves ({@link ServerSideTokens}): a
 * login in flight across a restart starts again.
 */
public final class StateSecretSource implements ConfigSource {
  private static final String NAME = "quarkus.oidc.authentication.state-secret";
  private static final String SECRET;

  static {
    byte[] b = new byte[32];
    new SecureRandom().nextBytes(b);
    SECRET = HexFormat.of().formatHex(b);
  }

  @Override
  public Set<String> getPropertyNames() {
    return Set.of(NAME);
  }

  @Override
  public Map<String, String> getProperties() {
    return Map.of(NAME, SECRET);
  }

  @Override
  public String getValue(String propertyName) {
    return NAME.equals(propertyName) ? SECRET : null;
  }

  @Override
  public String getName() {
    return "tpmkms-console-state-secret";
  }

  /** Below application.properties (250) and the environment (300): a configured secret wins. */
  @Override
  public int getOrdinal() {
    return 50;
  }
}
