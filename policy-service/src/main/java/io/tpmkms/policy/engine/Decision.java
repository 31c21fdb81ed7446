package io.tpmkms.policy.engine;

import java.util.List;

/**
 * The engine's answer. {@code reasons} are the policies that determined it:
 * the permits that matched (ALLOW), the forbids that matched (DENY), or one
 * {@link Reason.Kind#DEFAULT_DENY} when nothing permitted the request.
 * {@code errors} name policies that failed to evaluate (they did not match).
 */
public record Decision(boolean allowed, List<Reason> reasons, List<String> errors, long revision) {
  public Decision {
    reasons = List.copyOf(reasons);
    errors = List.copyOf(errors);
  }

  /** One line for a PERMISSION_DENIED message or a log: the reasons' descriptions. */
  public String explain() {
    return String.join("; ", reasons.stream().map(Reason::description).toList());
  }

  /** Why: a binding (id), an operator policy (id and version), or the default deny. */
  public record Reason(Kind kind, String id, long version, String description) {
    public enum Kind { ROLE_BINDING, POLICY, DEFAULT_DENY }
  }
}
