package io.tpmkms.platform.error;

import io.grpc.Status;

/**
 * The one table from condition to gRPC status (ARCHITECTURE §7), shared by
 * every tpmkms service. Every service exception names one of these; nothing
 * else decides a status.
 */
public enum ErrorCode {
  INVALID_ARGUMENT(Status.Code.INVALID_ARGUMENT, true),
  NOT_FOUND(Status.Code.NOT_FOUND, true),
  ALREADY_EXISTS(Status.Code.ALREADY_EXISTS, true),
  FAILED_PRECONDITION(Status.Code.FAILED_PRECONDITION, true),
  UNAUTHENTICATED(Status.Code.UNAUTHENTICATED, true),
  PERMISSION_DENIED(Status.Code.PERMISSION_DENIED, true),
  UNIMPLEMENTED(Status.Code.UNIMPLEMENTED, true),
  ABORTED(Status.Code.ABORTED, true),
  UNAVAILABLE(Status.Code.UNAVAILABLE, false),
  RESOURCE_EXHAUSTED(Status.Code.RESOURCE_EXHAUSTED, false),
  INTERNAL(Status.Code.INTERNAL, false);

  private final Status.Code status;
  private final boolean userError;

  ErrorCode(Status.Code status, boolean userError) {
    this.status = status;
    this.userError = userError;
  }

  public Status.Code status() { return status; }

  /** True for errors the caller caused (Vault's UserError); false for the service's own failures. */
  public boolean userError() { return userError; }
}
