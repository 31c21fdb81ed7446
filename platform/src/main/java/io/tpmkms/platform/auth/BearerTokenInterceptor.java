package io.tpmkms.platform.auth;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.quarkus.grpc.GlobalInterceptor;
import io.quarkus.oidc.AccessTokenCredential;
import io.quarkus.oidc.TenantIdentityProvider;
import io.quarkus.runtime.StartupEvent;
import io.quarkus.security.identity.SecurityIdentity;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.StatusMapper;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.spi.Prioritized;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.eclipse.microprofile.jwt.JsonWebToken;
import org.jboss.logging.Logger;

/**
 * Authenticates every gRPC call before any service code runs: the call must
 * carry {@code authorization: Bearer <access token>} issued by the
 * configured Keycloak realm for this service's audience. The token is checked
 * by quarkus-oidc (signature against the realm's keys, issuer, audience,
 * expiry); the caller becomes a {@link Principal} in the gRPC context
 * ({@link Caller#current()}). Missing or rejected tokens end the call with
 * UNAUTHENTICATED and an ErrorInfo reason; nothing of the service runs.
 *
 * <p>Verified tokens are remembered until they expire (at most
 * {@code tpmkms.auth.token-cache-ttl}), keyed by the token itself, so that a
 * client re-using its token costs one map lookup instead of a signature
 * check. Health checks and server reflection need no token.
 */
@GlobalInterceptor
@ApplicationScoped
public class BearerTokenInterceptor implements ServerInterceptor, Prioritized {
  private static final Logger LOG = Logger.getLogger(BearerTokenInterceptor.class);
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  /** Services callable without a token. */
  private static final Set<String> OPEN_SERVICES = Set.of("grpc.health.v1.Health",
      "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection");
  /**
   * The largest access token accepted: 64 KiB, room for a Keycloak token with some hundreds of groups.
   * Longer ones are refused with TOKEN_TOO_LARGE before any parsing. The gRPC server's metadata limit
   * ({@code quarkus.grpc.server.max-inbound-metadata-size}, 128 KiB) is above it, so such a token
   * reaches this check instead of failing in the transport.
   */
  public static final int MAX_TOKEN_LENGTH = 64 * 1024;

  private record Verified(Principal principal, long notAfterMillis) {}
  static final Metadata.Key<String> REQUEST_ID = Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);

  private final AuthConfig config;
  private final String grpcHost;
  private final Map<String, Verified> verified = new ConcurrentHashMap<>();
  /**
   * Injected (not looked up): quarkus-oidc registers its default provider
   * only for injection points it sees at build time.
   */
  private final TenantIdentityProvider provider;
  /** Where refusals are reported for the audit trail (none: only answered). */
  private final UnauthenticatedCalls refusals;

  public BearerTokenInterceptor(AuthConfig config,
      @ConfigProperty(name = "quarkus.grpc.server.host", defaultValue = "0.0.0.0") String grpcHost,
      TenantIdentityProvider provider, jakarta.enterprise.inject.Instance<UnauthenticatedCalls> refusals) {
    this.config = config;
    this.grpcHost = grpcHost;
    this.provider = provider;
    this.refusals = refusals.isResolvable() ? refusals.get() : null;
  }

  /** Authentication runs before every other interceptor (they read the caller). */
  @Override
  public int getPriority() {
    return 1_000_000;
  }

  void onStart(@Observes @Priority(1) StartupEvent event) {
    if (config.mode() == AuthConfig.Mode.NONE) {
      if (!loopback(grpcHost)) {
        throw new IllegalStateException("tpmkms.auth.mode=none is only allowed when the gRPC server listens on "
            + "loopback (quarkus.grpc.server.host=127.0.0.1), not on " + grpcHost);
      }
      LOG.warn("authentication is OFF (tpmkms.auth.mode=none): every caller is anonymous; loopback only");
    }
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    if (config.mode() == AuthConfig.Mode.NONE
        || OPEN_SERVICES.contains(call.getMethodDescriptor().getServiceName())) {
      return Contexts.interceptCall(Caller.with(Context.current(), Principal.ANONYMOUS), call, headers, next);
    }
    String header = headers.get(AUTHORIZATION);
    if (header != null && header.length() > MAX_TOKEN_LENGTH + 7) {
      return reject(call, headers, "TOKEN_TOO_LARGE", "the access token is longer than " + MAX_TOKEN_LENGTH
          + " characters; ask for a token with fewer claims (e.g. fewer groups)");
    }
    if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return reject(call, headers, "TOKEN_MISSING", "this call needs an access token: authorization: Bearer <token>"
          + " (tpmkms login)");
    }
    String token = header.substring(7).trim();
    if (token.isEmpty()) {
      return reject(call, headers, "TOKEN_INVALID", "the access token is empty");
    }
    long now = System.currentTimeMillis();
    Verified known = verified.get(token);
    if (known != null) {
      if (known.notAfterMillis > now) return proceed(known.principal, token, call, headers, next);
      verified.remove(token);
    }
    // Not seen (or expired): quarkus-oidc checks it. With the realm's keys already loaded this
    // completes right away; otherwise (keys being fetched) the call waits without holding a thread.
    PendingListener<Q> pending = new PendingListener<>();
    Context context = Context.current();
    provider.authenticate(new AccessTokenCredential(token)).subscribe().with(
        identity -> {
          Principal principal;
          try {
            principal = remember(token, identity);
          } catch (RuntimeException e) {
            LOG.debugf("token rejected: %s", e.getMessage());
            pending.start(reject(call, headers, "TOKEN_INVALID", "the access token lacks required claims"));
            return;
          }
          Context previous = context.attach();
          try {
            pending.start(proceed(principal, token, call, headers, next));
          } finally {
            context.detach(previous);
          }
        },
        failure -> {
          // Never log the token; the reason (expired, audience, signature, issuer) only at debug.
          LOG.debugf("token rejected: %s", failure.getMessage());
          pending.start(reject(call, headers, "TOKEN_INVALID",
              "the access token was rejected (expired, wrong audience or realm, or bad signature)"));
        });
    return pending;
  }

  private <Q, R> ServerCall.Listener<Q> proceed(Principal principal, String token, ServerCall<Q, R> call,
      Metadata headers, ServerCallHandler<Q, R> next) {
    Context ctx = Caller.with(Context.current(), principal).withValue(Caller.TOKEN, token);
    return Contexts.interceptCall(ctx, call, headers, next);
  }

  private Principal remember(String token, SecurityIdentity identity) {
    if (!(identity.getPrincipal() instanceof JsonWebToken jwt)) {
      throw new IllegalStateException("not a JWT");
    }
    Principal principal = principalOf(jwt);
    long exp = jwt.getExpirationTime() * 1000L;
    long notAfter = Math.min(exp, System.currentTimeMillis() + config.tokenCacheTtl().toMillis());
    if (verified.size() >= config.tokenCacheSize()) verified.clear();
    verified.put(token, new Verified(principal, notAfter));
    return principal;
  }

  /** The principal a verified Keycloak access token describes. */
  static Principal principalOf(JsonWebToken jwt) {
    String subject = jwt.getSubject();
    if (subject == null || subject.isEmpty()) throw new IllegalArgumentException("token has no subject");
    String username = stringClaim(jwt, "preferred_username");
    String client = stringClaim(jwt, "azp");
    List<String> realmRoles = new ArrayList<>();
    Object realmAccess = jwt.getClaim("realm_access");
    if (realmAccess instanceof jakarta.json.JsonObject ra && ra.get("roles") instanceof jakarta.json.JsonArray a) {
      a.getValuesAs(jakarta.json.JsonString.class).forEach(s -> realmRoles.add(s.getString()));
    }
    List<String> clientRoles = new ArrayList<>();
    Object resourceAccess = jwt.getClaim("resource_access");
    if (resourceAccess instanceof jakarta.json.JsonObject res) {
      for (var e : res.entrySet()) {
        if (e.getValue() instanceof jakarta.json.JsonObject c && c.get("roles") instanceof jakarta.json.JsonArray a) {
          a.getValuesAs(jakarta.json.JsonString.class).forEach(s -> clientRoles.add(e.getKey() + "/" + s.getString()));
        }
      }
    }
    List<String> groups = new ArrayList<>();
    Object g = jwt.getClaim("groups");
    if (g instanceof jakarta.json.JsonArray a) {
      a.getValuesAs(jakarta.json.JsonString.class).forEach(s -> groups.add(s.getString()));
    } else if (g instanceof Collection<?> c) {
      c.forEach(x -> groups.add(String.valueOf(x)));
    }
    return new Principal(subject, username, client, realmRoles, clientRoles, groups,
        jwt.getIssuer() == null ? "" : jwt.getIssuer());
  }

  private static String stringClaim(JsonWebToken jwt, String name) {
    Object v = jwt.getClaim(name);
    if (v == null) return "";
    if (v instanceof jakarta.json.JsonString s) return s.getString();
    return v.toString();
  }

  /**
   * Ends the call UNAUTHENTICATED with {@code reason}, after reporting the refusal for the audit trail
   * (which method, from where, why; never the token).
   */
  private <Q, R> ServerCall.Listener<Q> reject(ServerCall<Q, R> call, Metadata headers, String reason,
      String message) {
    if (refusals != null) {
      try {
        var peer = call.getAttributes().get(io.grpc.Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        refusals.refused(call.getMethodDescriptor().getFullMethodName(), peer == null ? "" : peer.toString(),
            headers.get(REQUEST_ID), reason, message);
      } catch (RuntimeException e) {
        LOG.warnf("could not record a refused call for the audit trail: %s", e.getMessage());
      }
    }
    var status = StatusMapper.toStatus(null, ErrorCode.UNAUTHENTICATED, reason, message, Map.of());
    call.close(status.getStatus(), status.getTrailers() == null ? new Metadata() : status.getTrailers());
    return new ServerCall.Listener<>() {};
  }

  static boolean loopback(String host) {
    try {
      return InetAddress.getByName(host).isLoopbackAddress();
    } catch (java.net.UnknownHostException e) {
      return false;
    }
  }

  /** Drops verified tokens (tests; a key rotation at the identity provider). */
  public void forgetTokens() {
    verified.clear();
  }
}
