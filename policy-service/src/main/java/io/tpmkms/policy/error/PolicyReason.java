package io.tpmkms.policy.error;

import io.tpmkms.platform.error.Reason;

/**
 * The stable {@code google.rpc.ErrorInfo.reason} values of the policy
 * service. Clients may switch on them; they are never renamed or reused
 * (docs/errors.md, policy section). Reasons shared with the key service
 * ({@code INVALID_REQUEST}, {@code CONCURRENT_MODIFICATION}, ...) mean the same
 * thing here.
 */
public enum PolicyReason implements Reason {

  // INVALID_ARGUMENT
  INVALID_REQUEST,
  INVALID_POLICY_ID,
  /** Policy text that does not parse, is not exactly one policy, or fails schema validation. */
  POLICY_INVALID,
  INVALID_ACTION,
  INVALID_RESOURCE,
  INVALID_CONTEXT,
  INVALID_PRINCIPAL,
  INVALID_SUBJECT,
  INVALID_ROLE,
  INVALID_PAGE_TOKEN,

  // NOT_FOUND / ALREADY_EXISTS
  POLICY_NOT_FOUND,
  POLICY_VERSION_NOT_FOUND,
  POLICY_ALREADY_EXISTS,
  ROLE_BINDING_NOT_FOUND,
  ROLE_BINDING_ALREADY_EXISTS,

  // UNAUTHENTICATED / PERMISSION_DENIED
  UNAUTHENTICATED,
  /** The caller's own request was decided DENY; the message names the decision's reason. */
  PERMISSION_DENIED,

  // ABORTED
  CONCURRENT_MODIFICATION,

  // UNAVAILABLE / INTERNAL
  DATABASE_UNAVAILABLE,
  INTERNAL;
}
