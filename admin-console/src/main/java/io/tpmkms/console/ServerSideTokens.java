package io.tpmkms.console;

import io.quarkus.oidc.AuthorizationCodeTokens;
import io.quarkus.oidc.OidcRequestContext;
import io.quarkus.oidc.OidcTenantConfig;
import io.quarkus.oidc.TokenStateManager;
import io.smallrye.mutiny.Uni;
import io.vertx.ext.web.RoutingContext;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Alternative;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Backend-for-frontend (ADR 0031): the ID, access and refresh tokens of a signed-in person stay in
 * this process; the browser's session cookie ({@code q_session}, HttpOnly) holds only a random
 * 256-bit id that names them. No token reaches the browser, its JavaScript or its storage.
 *
 * <p>Sessions are per process: a restart signs everyone out (they sign in again, usually without
 * typing anything while their Keycloak session lasts). An id unused for {@link #IDLE} is forgotten.
 */
@ApplicationScoped
@Alternative
@Priority(1)
public class ServerSideTokens implements TokenStateManager {
  static final Duration IDLE = Duration.ofHours(12);
  private static final int MAX_SESSIONS = 100_000;
  private static final SecureRandom RANDOM = new SecureRandom();

  private record Entry(AuthorizationCodeTokens tokens, long lastUsedNanos) {}

  private final Map<String, Entry> sessions = new ConcurrentHashMap<>();

  @Override
  public Uni<String> createTokenState(RoutingContext context, OidcTenantConfig config, AuthorizationCodeTokens tokens,
      OidcRequestContext<String> request) {
    sweep();
    byte[] b = new byte[32];
    RANDOM.nextBytes(b);
    String id = Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    sessions.put(id, new Entry(tokens, System.nanoTime()));
    return Uni.createFrom().item(id);
  }

  @Override
  public Uni<AuthorizationCodeTokens> getTokens(RoutingContext context, OidcTenantConfig config, String state,
      OidcRequestContext<AuthorizationCodeTokens> request) {
    Entry e = state == null ? null : sessions.get(state);
    if (e == null) {
      // unknown, signed out or forgotten: the session is over; the challenge sends the browser to sign in
      return Uni.createFrom().failure(new io.quarkus.security.AuthenticationFailedException("session ended"));
    }
    sessions.put(state, new Entry(e.tokens(), System.nanoTime()));
    return Uni.createFrom().item(e.tokens());
  }

  @Override
  public Uni<Void> deleteTokens(RoutingContext context, OidcTenantConfig config, String state,
      OidcRequestContext<Void> request) {
    if (state != null) sessions.remove(state);
    return Uni.createFrom().voidItem();
  }

  /** Sessions held now (tests, metrics). */
  int size() {
    return sessions.size();
  }

  private void sweep() {
    long now = System.nanoTime();
    sessions.values().removeIf(e -> now - e.lastUsedNanos() > IDLE.toNanos());
    if (sessions.size() >= MAX_SESSIONS) sessions.clear(); // a flood of logins: everyone signs in again
  }
}
