package io.tpmkms.platform.error;

/**
 * The reasons the platform itself gives, the same in every service: the
 * request gate, page tokens, bearer tokens, and the failures every service
 * maps alike (a lost database, a lost race, an internal error).
 */
public enum CommonReason implements Reason {
  INVALID_REQUEST,
  INVALID_CHARACTER,
  INVALID_PAGE_TOKEN,
  UNAUTHENTICATED,
  TOKEN_MISSING,
  TOKEN_INVALID,
  TOKEN_TOO_LARGE,
  /** The operation's audit event could not be made durable, so it was refused (fail closed). */
  AUDIT_UNAVAILABLE,
  CONCURRENT_MODIFICATION,
  DATABASE_UNAVAILABLE,
  INTERNAL
}
