package io.tpmkms.key.authz;

import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.MoreExecutors;
import io.grpc.ManagedChannel;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.key.error.KeyReason;
import io.tpmkms.key.lifecycle.KeyNames;
import io.tpmkms.proto.audit.v1.Decision;
import io.tpmkms.proto.policy.v1.AuthorizeRequest;
import io.tpmkms.proto.policy.v1.AuthorizeResponse;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import io.tpmkms.proto.policy.v1.Reason;
import io.tpmkms.proto.policy.v1.Resource;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.platform.auth.AuthConfig;
import io.tpmkms.platform.auth.Principal;
import io.tpmkms.platform.auth.ServiceCredentials;
import io.tpmkms.platform.tls.ServiceChannels;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.rpc.Authorization;
import io.tpmkms.platform.rpc.Target;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;

/**
 * Asks the policy service whether the caller may do this call, before the
 * call does anything, and fails closed: no decision (policy service down,
 * slow, or refusing the key service) means UNAVAILABLE (POLICY_UNAVAILABLE)
 * and nothing happens; a DENY means PERMISSION_DENIED with the decision's
 * reasons. The action and the resource come from the RPC's declaration
 * ({@code KeyRpcs}): the key the request names, its namespace (ListKeys) or
 * the whole deployment (GenerateRandom, ListKeys over all namespaces).
 *
 * <p>Decisions are remembered for {@code tpmkms.authz.cache-ttl} per
 * principal, action and resource, so a hot client costs one map lookup; a
 * policy change therefore applies within that TTL plus the policy service's
 * reload interval (docs/authorization.md).
 */
@ApplicationScoped
public class Authorizer implements Authorization {
  private static final Logger LOG = Logger.getLogger(Authorizer.class);

  private record CacheKey(Principal principal, String action, String namespace, String keyName) {}

  private final AuthConfig auth;
  private final AuthzConfig config;
  private final ServiceCredentials credentials;
  private final ServiceChannels channels;
  private final Map<CacheKey, Verdict> cache = new ConcurrentHashMap<>();
  private final boolean enabled;
  /** Opened at start, or by the first call that comes before the start-up observers ran (see {@link #channel()}). */
  private volatile ManagedChannel channel;

  // metrics (issue 18): decisions by outcome and source, the policy service's answer time, its failures
  private final io.micrometer.core.instrument.Counter allowCached;
  private final io.micrometer.core.instrument.Counter denyCached;
  private final io.micrometer.core.instrument.Counter allowAsked;
  private final io.micrometer.core.instrument.Counter denyAsked;
  private final io.micrometer.core.instrument.Counter unavailable;
  private final io.micrometer.core.instrument.Timer askTime;
  private final io.tpmkms.platform.metrics.Meters meters;
  /** The policy service's channel was last seen failing (readiness). */
  private volatile boolean policyDown;

  public Authorizer(AuthConfig auth, AuthzConfig config, ServiceCredentials credentials, ServiceChannels channels,
      io.micrometer.core.instrument.MeterRegistry registry, io.tpmkms.platform.health.Readiness readiness) {
    this.auth = auth;
    this.config = config;
    this.credentials = credentials;
    this.channels = channels;
    this.enabled = auth.mode() == AuthConfig.Mode.OIDC;
    this.meters = new io.tpmkms.platform.metrics.Meters(registry);
    if (enabled) {
      // fail closed: without the policy service no call can be allowed, so the service is not ready
      readiness.register("policy-service", () -> {
        // TRANSIENT_FAILURE: down; READY: up; IDLE (a dropped connection; asking the state reconnects) and
        // CONNECTING (a retry) say nothing new, so the last verdict stands and readiness does not flap
        ManagedChannel c = channel();
        switch (c.getState(true)) {
          case TRANSIENT_FAILURE -> {
            policyDown = true;
            c.resetConnectBackoff(); // try again now, not after gRPC's growing backoff: see the service come back
          }
          case READY -> policyDown = false;
          default -> { }
        }
        return policyDown ? java.util.Optional.of("the policy service at " + policyService() + " is unreachable")
            : java.util.Optional.empty();
      });
    }
    this.allowCached = meters.add(decisions(registry, "allow", "cache"));
    this.denyCached = meters.add(decisions(registry, "deny", "cache"));
    this.allowAsked = meters.add(decisions(registry, "allow", "policy_service"));
    this.denyAsked = meters.add(decisions(registry, "deny", "policy_service"));
    this.unavailable = meters.add(io.micrometer.core.instrument.Counter.builder("tpmkms.authz.unavailable")
        .description("calls refused because the policy service gave no decision (fail closed)").register(registry));
    this.askTime = meters.add(io.micrometer.core.instrument.Timer.builder("tpmkms.authz.policy.duration")
        .description("time for the policy service's Authorize answer, failures included")
        .serviceLevelObjectives(java.time.Duration.ofNanos(250_000), java.time.Duration.ofMillis(1),
            java.time.Duration.ofMillis(2), java.time.Duration.ofMillis(5), java.time.Duration.ofMillis(10),
            java.time.Duration.ofMillis(25), java.time.Duration.ofMillis(100), java.time.Duration.ofMillis(500),
            java.time.Duration.ofSeconds(1), java.time.Duration.ofSeconds(5))
        .register(registry));
  }

  @jakarta.annotation.PreDestroy
  void unregister() {
    meters.removeAll();
  }

  private static io.micrometer.core.instrument.Counter decisions(io.micrometer.core.instrument.MeterRegistry r,
      String decision, String source) {
    return io.micrometer.core.instrument.Counter.builder("tpmkms.authz.decisions").tag("decision", decision)
        .tag("source", source).description("authorization decisions applied to calls, by outcome and where they came from")
        .register(r);
  }

  void start(@Observes StartupEvent e) {
    if (!enabled) {
      LOG.warn("authorization is OFF (tpmkms.auth.mode=none): every call is allowed; loopback only");
      return;
    }
    // connect and get the service token now, not on the first caller's deadline
    channel().getState(true);
    credentials.prefetch();
    LOG.infof("authorizing every call with the policy service at %s (decisions cached %s)", policyService(),
        config.cacheTtl());
  }

  private String policyService() {
    return config.policyService().orElseThrow(() -> new IllegalStateException(
        "tpmkms.authz.policy-service (host:port of the policy service) is required with tpmkms.auth.mode=oidc"));
  }

  /**
   * The channel to the policy service. The gRPC server takes calls as soon as it listens, which can be
   * before the start-up observers (this class's {@code start}) have run — a slow start-up such as the
   * crypto self-test widens that window — so the first such call opens the channel itself.
   */
  private ManagedChannel channel() {
    ManagedChannel c = channel;
    if (c != null) return c;
    synchronized (this) {
      if (channel == null) channel = channels.open(policyService(), "policy service");
      return channel;
    }
  }

  void stop(@Observes ShutdownEvent e) {
    ManagedChannel c = channel;
    if (c != null) c.shutdownNow();
  }

  /**
   * The decision for this call if it is known without asking (authorization
   * off, or remembered); null when the policy service must be asked
   * ({@link #ask}). Throws for a request whose resource name is invalid (the
   * call then fails with that INVALID_ARGUMENT and nothing is asked).
   */
  @Override
  public Verdict known(CallInfo call, String action, Target target) {
    if (!enabled || call == null) return Verdict.NOT_EVALUATED;
    CacheKey key = keyOf(call, action, target);
    Verdict v = cache.get(key);
    if (v == null) return null;
    if (v.expiresAtNanos() - System.nanoTime() <= 0) {
      cache.remove(key, v);
      return null;
    }
    (v.allowed() ? allowCached : denyCached).increment();
    record(call, v);
    return v;
  }

  /** Asks the policy service; completes with its verdict or fails with UNAVAILABLE (fail closed). */
  @Override
  public CompletableFuture<Verdict> ask(CallInfo call, String action, Target target) {
    CacheKey key = keyOf(call, action, target);
    AuthorizeRequest.Builder req = AuthorizeRequest.newBuilder()
        .setPrincipal(key.principal().toProto())
        .setAction(key.action())
        .setResource(Resource.newBuilder().setNamespace(key.namespace()).setKeyName(key.keyName()))
        .putContext("client_address", clientAddress(call.client));
    CompletableFuture<Verdict> done = new CompletableFuture<>();
    long asked = System.nanoTime();
    var stub = PolicyServiceGrpc.newFutureStub(channel())
        .withCallCredentials(credentials.callCredentials())
        .withDeadlineAfter(config.timeout().toMillis(), TimeUnit.MILLISECONDS);
    Futures.addCallback(stub.authorize(req.build()), new FutureCallback<>() {
      @Override
      public void onSuccess(AuthorizeResponse r) {
        askTime.record(System.nanoTime() - asked, TimeUnit.NANOSECONDS);
        boolean allowed = r.getDecision() == io.tpmkms.proto.policy.v1.Decision.ALLOW;
        if (r.getDecision() == io.tpmkms.proto.policy.v1.Decision.DECISION_UNSPECIFIED) {
          onFailure(new IllegalStateException("the policy service answered without a decision"));
          return;
        }
        Verdict v = new Verdict(allowed, explain(r), System.nanoTime() + config.cacheTtl().toNanos());
        if (cache.size() >= config.cacheSize()) cache.clear();
        cache.put(key, v);
        (allowed ? allowAsked : denyAsked).increment();
        record(call, v);
        done.complete(v);
      }

      @Override
      public void onFailure(Throwable t) {
        if (!(t instanceof IllegalStateException)) askTime.record(System.nanoTime() - asked, TimeUnit.NANOSECONDS);
        unavailable.increment();
        LOG.warnf("no authorization decision for %s (%s): refusing the call", key.action(), t.getMessage());
        done.completeExceptionally(new ServiceException(ErrorCode.UNAVAILABLE, KeyReason.POLICY_UNAVAILABLE,
            "no authorization decision could be had (policy service unavailable), so the call was refused; "
                + "retry later", Map.of(), t));
      }
    }, MoreExecutors.directExecutor());
    return done;
  }

  /** The error a denied call ends with. */
  @Override
  public ServiceException denied(Verdict v, String action, Target target) {
    return new ServiceException(ErrorCode.PERMISSION_DENIED, KeyReason.PERMISSION_DENIED,
        "permission denied: " + v.reason(), Map.of(), null);
  }

  /** Forgets every remembered decision (tests). */
  public void forgetDecisions() {
    cache.clear();
  }

  private static void record(CallInfo call, Verdict v) {
    call.decided(v.allowed() ? Decision.ALLOW : Decision.DENY, v.reason());
  }

  private static String explain(AuthorizeResponse r) {
    String reasons = r.getReasonsList().stream().map(Authorizer::describe).collect(Collectors.joining("; "));
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

  private static CacheKey keyOf(CallInfo call, String action, Target target) {
    Principal p = call.caller == null ? Principal.ANONYMOUS : call.caller;
    return switch (target.kind()) {
      case KEY -> {
        KeyNames.KeyName k = KeyNames.parse(target.key());
        yield new CacheKey(p, action, k.namespace(), k.name());
      }
      case KEY_PARTS -> {
        KeyNames.KeyName k = KeyNames.of(target.namespace(), target.name());
        yield new CacheKey(p, action, k.namespace(), k.name());
      }
      case NAMESPACE -> {
        if (!target.namespace().isEmpty()) KeyNames.checkNamespace(target.namespace());
        yield new CacheKey(p, action, target.namespace(), "");
      }
      case DEPLOYMENT -> new CacheKey(p, action, "", "");
      default -> throw new IllegalStateException(action + ": the key service has no " + target.kind() + " targets");
    };
  }
}
