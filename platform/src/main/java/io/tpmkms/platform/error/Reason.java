package io.tpmkms.platform.error;

/**
 * A stable {@code google.rpc.ErrorInfo.reason}. Each service lists its own in
 * one enum that implements this ({@code KeyReason}, {@code PolicyReason},
 * {@code AuditReason}); clients switch on the name, which is never renamed
 * (docs/errors.md lists each with its status).
 */
public interface Reason {
  /** The reason as the caller sees it, e.g. "KEY_NOT_FOUND". */
  String name();
}
