package io.tpmkms.client;

import java.net.URI;
import java.util.function.Supplier;

/**
 * Where a client's bearer tokens come from. {@link #token()} is called before every call and must
 * be cheap (cache); {@link #invalidate()} after the service answered UNAUTHENTICATED, so that the
 * next {@link #token()} fetches a new one.
 */
public interface TokenSource {
  /** A token valid for at least the next few seconds. */
  String token();

  /** The last token was refused: forget it. */
  default void invalidate() {}

  /**
   * OAuth 2.0 client credentials (RFC 6749 §4.4) from an OpenID Connect issuer (Keycloak: {@code
   * https://HOST/realms/tpmkms}); the token endpoint is found by discovery. Tokens are cached until
   * 30 s before they expire and fetched again then, one fetch at a time.
   */
  static TokenSource clientCredentials(URI issuer, String clientId, String clientSecret) {
    return new ClientCredentialsTokens(issuer, clientId, clientSecret, java.time.Clock.systemUTC(),
        java.time.Duration.ofSeconds(30));
  }

  /** Tokens from the caller's own code (a workload identity, a sidecar, a test). */
  static TokenSource from(Supplier<String> supplier) {
    return supplier::get;
  }

  /** No authentication (a service with {@code TPMKMS_AUTH_MODE=none}, e.g. ./run's default on loopback). */
  static TokenSource none() {
    return () -> null;
  }
}
