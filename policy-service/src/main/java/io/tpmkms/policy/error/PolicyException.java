package io.tpmkms.policy.error;

import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.ServiceException;
import java.util.Map;

/**
 * The policy service's one failure type: a code (which gRPC status), a stable
 * reason ({@link Reasons}), a message safe to show the caller and metadata
 * ({@code policy_id}, {@code version}, {@code binding_id}). Messages never
 * contain tokens.
 */
public final class PolicyException extends ServiceException {
  public PolicyException(ErrorCode code, String reason, String message) {
    this(code, reason, message, Map.of(), null);
  }

  public PolicyException(ErrorCode code, String reason, String message, Map<String, String> metadata,
      Throwable cause) {
    super(code, reason, message, metadata, cause);
  }

  public static PolicyException invalid(String reason, String message) {
    return new PolicyException(ErrorCode.INVALID_ARGUMENT, reason, message);
  }

  public static PolicyException policyNotFound(String id) {
    return new PolicyException(ErrorCode.NOT_FOUND, Reasons.POLICY_NOT_FOUND, "policy \"" + id + "\" not found",
        Map.of("policy_id", id), null);
  }

  public static PolicyException bindingNotFound(String id) {
    return new PolicyException(ErrorCode.NOT_FOUND, Reasons.ROLE_BINDING_NOT_FOUND,
        "role binding \"" + id + "\" not found", Map.of("binding_id", id), null);
  }
}
