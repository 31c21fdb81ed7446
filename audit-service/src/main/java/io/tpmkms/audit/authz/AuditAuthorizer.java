package io.tpmkms.audit.authz;

import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.MoreExecutors;
import io.grpc.ManagedChannel;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.tpmkms.audit.AuditConfig;
import io.tpmkms.audit.error.AuditReason;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.platform.auth.AuthConfig;
import io.tpmkms.platform.auth.Principal;
import io.tpmkms.platform.auth.ServiceCredentials;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.platform.rpc.Authorization;
import io.tpmkms.platform.rpc.Target;
import io.tpmkms.proto.audit.v1.Decision;
import io.tpmkms.proto.policy.v1.AuthorizeRequest;
import io.tpmkms.proto.policy.v1.AuthorizeResponse;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.proto.policy.v1.Reason;
import io.tpmkms.proto.policy.v1.Resource;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;

/**
 * Who may call the audit service (ADR 0023, docs/authorization.md): the
 * authorization step of its request pipeline. Authentication (a valid
 * Keycloak token) comes first, in the platform's bearer-token interceptor.
 *
 * <ul>
 *   <li><b>AppendEvents</b> is decided here, from the token alone, with no
 *       round trip (the hot path): only the service accounts of the clients in
 *       {@code tpmkms.audit.append.allowed-clients} may append, and each only
 *       events of its own service ({@link #originOf}).
 *   <li><b>Every read</b> of the trail (QueryAuditRecords, VerifyAuditChain,
 *       ExportAuditRecords, ListCheckpoints, GetCheckpoint on the deployment) is
 *       asked of the policy service, as the key service asks it, with this
 *       service's own client-credentials token; decisions are remembered for
 *       {@code tpmkms.authz.cache-ttl}. Fail closed: no answer within
 *       {@code tpmkms.authz.timeout}, the policy service down or refusing us →
 *       UNAVAILABLE (POLICY_UNAVAILABLE) and nothing is read; DENY →
 *       PERMISSION_DENIED with the decision's reasons.
 * </ul>
 *
 * <p>With {@code tpmkms.auth.mode=none} (loopback only) every call is allowed,
 * NOT_EVALUATED, and every event may name any service. Thread-safe.
 */
@ApplicationScoped
public class AuditAuthorizer implements Authorization {
  private static final Logger LOG = Logger.getLogger(AuditAuthorizer.class);
  /** The action of AppendEvents: decided here, never asked of the policy service. */
  public static final String APPEND_ACTION = "AppendEvents";

  private record CacheKey(Principal principal, String action) {}

  private final AuditConfig.Authz config;
  private final ServiceCredentials credentials;
  private final io.tpmkms.platform.tls.ServiceChannels channels;
  private final boolean enabled;
  /** Allowed client id → the service its events must name. */
  private final Map<String, String> producers;
  private final Map<CacheKey, Verdict> cache = new ConcurrentHashMap<>();
  private volatile ManagedChannel channel;

  public AuditAuthorizer(AuthConfig auth, AuditConfig config, ServiceCredentials credentials,
      io.tpmkms.platform.tls.ServiceChannels channels) {
    this.config = config.authz();
    this.credentials = credentials;
    this.channels = channels;
    this.enabled = auth.mode() == AuthConfig.Mode.OIDC;
    this.producers = producers(config.audit().append().allowedClients());
  }

  /** "tpmkms-key-service" → key-service; "bot=payments-gw" → payments-gw. */
  static Map<String, String> producers(Iterable<String> entries) {
    Map<String, String> m = new LinkedHashMap<>();
    for (String raw : entries) {
      String entry = raw.trim();
      if (entry.isEmpty()) continue;
      int eq = entry.indexOf('=');
      String client = eq < 0 ? entry : entry.substring(0, eq).trim();
      String service = eq < 0 ? (client.startsWith("tpmkms-") ? client.substring(7) : client)
          : entry.substring(eq + 1).trim();
      if (client.isEmpty() || service.isEmpty()) {
        throw new IllegalArgumentException("tpmkms.audit.append.allowed-clients: bad entry \"" + raw
            + "\" (client or client=service)");
      }
      m.put(client, service);
    }
    return Map.copyOf(m);
  }

  void start(@Observes StartupEvent e) {
    if (!enabled) {
      LOG.warn("audit authorization is OFF (tpmkms.auth.mode=none): anyone on loopback may read and append");
      return;
    }
    String target = config.policyService().orElseThrow(() -> new IllegalStateException(
        "tpmkms.authz.policy-service (host:port of the policy service) is required with tpmkms.auth.mode=oidc"));
    channel = channels.open(target, "policy service");
    channel.getState(true);
    credentials.prefetch();
    LOG.infof("reads of the trail are authorized by the policy service at %s; appends only from %s", target,
        producers.keySet());
  }

  void stop(@Observes ShutdownEvent e) {
    if (channel != null) channel.shutdownNow();
  }

  /**
   * The service the caller may deliver events of; null when authentication
   * is off (any service) — only called for an allowed AppendEvents.
   */
  public String originOf(Principal caller) {
    if (!enabled || caller == null) return null;
    return producers.get(caller.clientId());
  }

  @Override
  public Verdict known(CallInfo call, String action, Target target) {
    if (!enabled || call == null) return Verdict.NOT_EVALUATED;
    Principal p = call.caller == null ? Principal.ANONYMOUS : call.caller;
    if (APPEND_ACTION.equals(action)) {
      String service = producers.get(p.clientId());
      Verdict v = service != null
          ? new Verdict(true, "client " + p.clientId() + " is an audit producer (of " + service + " events)",
              Long.MAX_VALUE)
          : new Verdict(false, "client " + (p.clientId().isEmpty() ? "(none)" : p.clientId())
              + " is not an audit producer: only the services' own accounts append (tpmkms.audit.append"
              + ".allowed-clients)", Long.MAX_VALUE);
      record(call, v);
      return v;
    }
    CacheKey key = new CacheKey(p, action);
    Verdict v = cache.get(key);
    if (v == null) return null;
    if (v.expiresAtNanos() - System.nanoTime() <= 0) {
      cache.remove(key, v);
      return null;
    }
    record(call, v);
    return v;
  }

  @Override
  public CompletableFuture<Verdict> ask(CallInfo call, String action, Target target) {
    Principal p = call.caller == null ? Principal.ANONYMOUS : call.caller;
    CacheKey key = new CacheKey(p, action);
    AuthorizeRequest req = AuthorizeRequest.newBuilder()
        .setPrincipal(p.toProto())
        .setAction(action)
        .setResource(Resource.getDefaultInstance()) // the deployment: the whole trail
        .putContext("client_address", clientAddress(call.client))
        .build();
    CompletableFuture<Verdict> done = new CompletableFuture<>();
    ManagedChannel ch = channel;
    if (ch == null) {
      done.completeExceptionally(unavailable(new IllegalStateException("no policy service channel")));
      return done;
    }
    var stub = PolicyServiceGrpc.newFutureStub(ch)
        .withCallCredentials(credentials.callCredentials())
        .withDeadlineAfter(config.timeout().toMillis(), TimeUnit.MILLISECONDS);
    Futures.addCallback(stub.authorize(req), new FutureCallback<>() {
      @Override
      public void onSuccess(AuthorizeResponse r) {
        if (r.getDecision() == io.tpmkms.proto.policy.v1.Decision.DECISION_UNSPECIFIED) {
          onFailure(new IllegalStateException("the policy service answered without a decision"));
          return;
        }
        boolean allowed = r.getDecision() == io.tpmkms.proto.policy.v1.Decision.ALLOW;
        Verdict v = new Verdict(allowed, explain(r), System.nanoTime() + config.cacheTtl().toNanos());
        if (cache.size() >= config.cacheSize()) cache.clear();
        cache.put(key, v);
        record(call, v);
        done.complete(v);
      }

      @Override
      public void onFailure(Throwable t) {
        LOG.warnf("no authorization decision for %s (%s): refusing the call", action, t.getMessage());
        call.decided(Decision.DENY, "no decision: the policy service is unavailable (fail closed)");
        done.completeExceptionally(unavailable(t));
      }
    }, MoreExecutors.directExecutor());
    return done;
  }

  private static ServiceException unavailable(Throwable cause) {
    return new ServiceException(ErrorCode.UNAVAILABLE, AuditReason.POLICY_UNAVAILABLE,
        "no authorization decision could be had (policy service unavailable), so nothing was read; retry later",
        Map.of(), cause);
  }

  @Override
  public ServiceException denied(Verdict v, String action, Target target) {
    if (APPEND_ACTION.equals(action)) {
      return new ServiceException(ErrorCode.PERMISSION_DENIED, AuditReason.APPEND_NOT_ALLOWED,
          "permission denied: " + v.reason(), Map.of(), null);
    }
    return new ServiceException(ErrorCode.PERMISSION_DENIED, AuditReason.PERMISSION_DENIED,
        "permission denied: reading the audit trail (" + action + ") needs the auditor role; " + v.reason(),
        Map.of("action", action), null);
  }

  /** Forgets every remembered decision (tests). */
  public void forgetDecisions() {
    cache.clear();
  }

  private static void record(CallInfo call, Verdict v) {
    call.decided(v.allowed() ? Decision.ALLOW : Decision.DENY, v.reason());
  }

  private static String explain(AuthorizeResponse r) {
    String reasons = r.getReasonsList().stream().map(AuditAuthorizer::describe).collect(Collectors.joining("; "));
    return (r.getDecision() == io.tpmkms.proto.policy.v1.Decision.ALLOW ? "allowed by " : "denied by ") + reasons;
  }

  private static String describe(Reason reason) {
    String what = switch (reason.getKind()) {
      case ROLE_BINDING -> "role binding " + reason.getId();
      case POLICY -> "policy " + reason.getId() + " v" + reason.getVersion();
      case DEFAULT_DENY -> "default deny (no role binding or policy permits it)";
      default -> reason.getId();
    };
    return reason.getDescription().isEmpty() || reason.getKind() == Reason.Kind.DEFAULT_DENY
        ? what : what + " (" + reason.getDescription() + ")";
  }

  /** "127.0.0.1" out of "client-id /127.0.0.1:4242" or "/127.0.0.1:4242". */
  private static String clientAddress(String client) {
    String s = client.substring(client.lastIndexOf(' ') + 1);
    if (s.startsWith("/")) s = s.substring(1);
    int colon = s.lastIndexOf(':');
    return colon > 0 ? s.substring(0, colon) : s;
  }
}
