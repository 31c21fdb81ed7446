package io.tpmkms.policy.engine;

import io.tpmkms.platform.auth.Principal;
import java.util.Map;

/** One question: may {@code principal} do {@code action} on {@code resource}, given {@code context}? */
public record AuthzRequest(Principal principal, String action, ResourceRef resource, Map<String, String> context) {
  public AuthzRequest {
    context = Map.copyOf(context);
  }

  public static AuthzRequest of(Principal principal, String action, ResourceRef resource) {
    return new AuthzRequest(principal, action, resource, Map.of());
  }
}
