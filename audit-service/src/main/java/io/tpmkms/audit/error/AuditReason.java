package io.tpmkms.audit.error;

import io.tpmkms.platform.error.Reason;

/**
 * The stable {@code google.rpc.ErrorInfo.reason} values of the audit service
 * (docs/audit.md lists each with its status). Never renamed.
 */
public enum AuditReason implements Reason {

  // INVALID_ARGUMENT
  INVALID_REQUEST,
  TOO_MANY_EVENTS,
  INVALID_EVENT_ID,
  MISSING_FIELD,
  FIELD_TOO_LONG,
  INVALID_CHARACTER,
  INVALID_TIME,
  INVALID_DECISION,
  INVALID_DIGEST,
  INVALID_PAGE_TOKEN,
  INVALID_PAGE_SIZE,
  INVALID_RANGE,

  // NOT_FOUND
  CHECKPOINT_NOT_FOUND,

  // PERMISSION_DENIED (ADR 0023)
  /** Reading the trail was denied by the policy service (the auditor role). */
  PERMISSION_DENIED,
  /** AppendEvents from a client that is not an audit producer (tpmkms.audit.append.allowed-clients). */
  APPEND_NOT_ALLOWED,
  /** An event declares another service than the authenticated client that delivered it. */
  ORIGIN_MISMATCH,

  // UNAVAILABLE / INTERNAL
  /** No authorization decision could be had (the policy service down, slow, or refusing us): fail closed. */
  POLICY_UNAVAILABLE,
  DATABASE_UNAVAILABLE,
  BACKEND_UNAVAILABLE,
  OVERLOADED,
  INTERNAL;
}
