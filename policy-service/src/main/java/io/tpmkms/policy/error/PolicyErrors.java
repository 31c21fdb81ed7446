package io.tpmkms.policy.error;

import io.tpmkms.platform.error.CommonReason;
import io.tpmkms.platform.error.ErrorCode;
import io.tpmkms.platform.error.GrpcErrors;
import io.tpmkms.platform.error.PersistenceErrors;
import io.tpmkms.platform.error.ServiceException;
import java.util.Map;
import org.hibernate.exception.ConstraintViolationException;

/**
 * The policy service's own failures ({@link PolicyReason}): a missing policy
 * or binding; a unique key another transaction took between our check and
 * our insert is a lost race (ABORTED, retry) like a lost lock. The platform's
 * {@link GrpcErrors} does the rest.
 */
public final class PolicyErrors {
  private PolicyErrors() {}

  private static final String DATABASE_UNAVAILABLE = "the policy database is unavailable; retry later";
  private static final String CONCURRENT = "changed concurrently; retry";

  /** Every failure of a policy-service call becomes a status here. */
  public static final GrpcErrors GRPC = new GrpcErrors(DATABASE_UNAVAILABLE,
      (cause, thrown) -> cause instanceof ConstraintViolationException
          ? new ServiceException(ErrorCode.ABORTED, CommonReason.CONCURRENT_MODIFICATION, CONCURRENT, Map.of(), thrown)
          : null,
      PersistenceErrors.classifier(CONCURRENT, DATABASE_UNAVAILABLE));

  public static ServiceException policyNotFound(String id) {
    return new ServiceException(ErrorCode.NOT_FOUND, PolicyReason.POLICY_NOT_FOUND, "policy \"" + id + "\" not found",
        Map.of("policy_id", id), null);
  }

  public static ServiceException bindingNotFound(String id) {
    return new ServiceException(ErrorCode.NOT_FOUND, PolicyReason.ROLE_BINDING_NOT_FOUND,
        "role binding \"" + id + "\" not found", Map.of("binding_id", id), null);
  }
}
