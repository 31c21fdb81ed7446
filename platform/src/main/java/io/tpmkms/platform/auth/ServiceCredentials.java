package io.tpmkms.platform.auth;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.Status;
import jakarta.enterprise.inject.Instance;
import io.quarkus.oidc.client.OidcClient;
import io.quarkus.oidc.client.Tokens;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.concurrent.Executor;
import org.jboss.logging.Logger;

/**
 * This service's own identity for the calls it makes to other tpmkms
 * services (the key service asking the policy service, every service
 * forwarding to the audit service): a client-credentials access token of its
 * Keycloak client ({@code quarkus.oidc-client.*}), obtained by quarkus-oidc-client,
 * kept and renewed before it expires. With {@code tpmkms.auth.mode=none}
 * calls go out without a token.
 */
@ApplicationScoped
public class ServiceCredentials {
  private static final Logger LOG = Logger.getLogger(ServiceCredentials.class);
  /** Renew this long before expiry, so a token never expires in flight. */
  private static final long RENEW_BEFORE_SECONDS = 30;

  private final AuthConfig config;
  /** An injection point (not a lookup), so that the default OIDC client bean is kept at build time. */
  private final Instance<OidcClient> client;
  private volatile Tokens tokens;

  public ServiceCredentials(AuthConfig config, Instance<OidcClient> client) {
    this.config = config;
    this.client = client;
  }

  /** Call credentials that attach this service's bearer token (none when authentication is off). */
  public CallCredentials callCredentials() {
    return new CallCredentials() {
      @Override
      public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
        if (config.mode() == AuthConfig.Mode.NONE) {
          applier.apply(new Metadata());
          return;
        }
        Tokens t = tokens;
        if (t != null && !expiresSoon(t)) {
          applier.apply(bearer(t.getAccessToken()));
          return;
        }
        client.get().getTokens().subscribe().with(
            fresh -> {
              tokens = fresh;
              applier.apply(bearer(fresh.getAccessToken()));
            },
            failure -> {
              LOG.warnf("cannot obtain this service's access token: %s", failure.getMessage());
              applier.fail(Status.UNAVAILABLE.withDescription("cannot obtain a service access token from the "
                  + "identity provider").withCause(failure));
            });
      }
    };
  }

  /**
   * Fetches this service's token now, in the background, so that the first call to another
   * service does not spend its deadline on the identity provider (a cold Keycloak or a busy machine
   * made a first Authorize miss its 2 s). A failure is only logged: the first call fetches again.
   */
  public void prefetch() {
    if (config.mode() == AuthConfig.Mode.NONE || tokens != null) return;
    try {
      client.get().getTokens().subscribe().with(
          fresh -> tokens = fresh,
          failure -> LOG.debugf("prefetching this service's access token failed (%s); the first call fetches it",
              failure.getMessage()));
    } catch (RuntimeException e) {
      LOG.debugf("prefetching this service's access token failed (%s)", e.getMessage());
    }
  }

  private static boolean expiresSoon(Tokens t) {
    Long at = t.getAccessTokenExpiresAt();
    return at != null && at - RENEW_BEFORE_SECONDS <= System.currentTimeMillis() / 1000;
  }

  private static Metadata bearer(String token) {
    Metadata m = new Metadata();
    m.put(BearerTokenInterceptor.AUTHORIZATION, "Bearer " + token);
    return m;
  }
}
