package io.tpmkms.policy.api;

import io.tpmkms.policy.engine.Authorizer;
import io.tpmkms.policy.engine.AuthzRequest;
import io.tpmkms.policy.engine.Decision;
import io.tpmkms.policy.engine.ResourceRef;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.policy.error.PolicyReason;
import io.tpmkms.platform.auth.AuthConfig;
import io.tpmkms.platform.auth.Caller;
import io.tpmkms.platform.auth.Principal;
import io.tpmkms.platform.error.ErrorCode;
import jakarta.enterprise.context.ApplicationScoped;
import io.tpmkms.platform.audit.CallInfo;
import io.tpmkms.platform.rpc.Authorization;
import io.tpmkms.platform.rpc.Target;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * Authorizes the caller of a management RPC through this service's own
 * engine (the same Cedar evaluation as Authorize, in process): e.g.
 * CreateRoleBinding needs admin on the binding's resource. A denied caller
 * gets PERMISSION_DENIED with the decision's reason in the message.
 *
 * <p>With {@code tpmkms.auth.mode=none} (loopback only) the anonymous caller
 * is trusted with everything: there is no identity to decide about. Any
 * other principal (a test that sets one) is decided normally.
 */
@ApplicationScoped
public class CallerAuthorizer implements Authorization {
  /** The client role that lets a service (the key service) ask for decisions about others. */
  public static final String AUTHORIZER_CLIENT = "tpmkms-policy-service";
  public static final String AUTHORIZER_ROLE = "authorizer";

  private final Authorizer authorizer;
  private final AuthConfig auth;

  public CallerAuthorizer(Authorizer authorizer, AuthConfig auth) {
    this.authorizer = authorizer;
    this.auth = auth;
  }

  /** The caller of the current call. UNAUTHENTICATED if there is none with authentication on. */
  public Principal caller() {
    Principal p = Caller.current();
    if (p != null) return p;
    if (auth.mode() == AuthConfig.Mode.NONE) return Principal.ANONYMOUS;
    throw new ServiceException(ErrorCode.UNAUTHENTICATED, PolicyReason.UNAUTHENTICATED, "this call needs an access token");
  }

  /** Requires the caller be allowed {@code action} on {@code resource}; returns the caller. */
  public Principal require(String action, ResourceRef resource) {
    Principal p = caller();
    if (trusted(p)) return p;
    Decision d = authorizer.decide(AuthzRequest.of(p, action, resource));
    if (!d.allowed()) {
      throw new ServiceException(ErrorCode.PERMISSION_DENIED, PolicyReason.PERMISSION_DENIED,
          action + " on " + resource.describe() + " denied for " + p.subject() + ": " + d.explain(),
          Map.of("action", action), null);
    }
    return p;
  }

  /**
   * Authorize/BatchAuthorize: services holding the client role
   * tpmkms-policy-service/authorizer, or anyone allowed "Authorize" on the
   * deployment (admins and auditors asking why).
   */
  public Principal requireDecisionCaller() {
    Principal p = caller();
    if (trusted(p) || p.hasClientRole(AUTHORIZER_CLIENT, AUTHORIZER_ROLE)) return p;
    return require("Authorize", ResourceRef.DEPLOYMENT);
  }

  private boolean trusted(Principal p) {
    return auth.mode() == AuthConfig.Mode.NONE && p.anonymous();
  }

  /**
   * The pipeline's step: decided here and now (this service's engine is in process), a denial thrown
   * as PERMISSION_DENIED; IN_HANDLER targets are decided by their handler.
   */
  @Override
  public Verdict known(CallInfo call, String action, Target target) {
    switch (target.kind()) {
      case DEPLOYMENT -> require(action, ResourceRef.DEPLOYMENT);
      case RESOURCE -> require(action, ResourceRef.of(target.namespace(), target.name()));
      case ANY_CALLER -> caller();
      case IN_HANDLER -> { }
      default -> throw new IllegalStateException(action + ": the policy service has no " + target.kind() + " targets");
    }
    return Verdict.NOT_EVALUATED;
  }

  @Override
  public CompletableFuture<Verdict> ask(CallInfo call, String action, Target target) {
    return CompletableFuture.completedFuture(known(call, action, target));
  }

  @Override
  public RuntimeException denied(Verdict verdict, String action, Target target) {
    return new ServiceException(ErrorCode.PERMISSION_DENIED, PolicyReason.PERMISSION_DENIED,
        action + " denied: " + verdict.reason(), Map.of("action", action), null);
  }
}
