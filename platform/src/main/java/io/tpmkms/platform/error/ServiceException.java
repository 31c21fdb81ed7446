package io.tpmkms.platform.error;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Every tpmkms service's one failure type: a code (which gRPC status), a
 * stable reason (each service's reason enum; the
 * {@code google.rpc.ErrorInfo.reason}), a message safe to show the caller, and
 * metadata (key name, version, policy id). Messages never contain key
 * material, plaintexts or tokens. {@link GrpcErrors} turns it, or anything
 * else thrown, into a status.
 */
public class ServiceException extends RuntimeException {
  private final ErrorCode code;
  private final Reason reason;
  private final Map<String, String> metadata;

  public ServiceException(ErrorCode code, Reason reason, String message) {
    this(code, reason, message, Map.of(), null);
  }

  public ServiceException(ErrorCode code, Reason reason, String message, Map<String, String> metadata,
      Throwable cause) {
    super(message, cause);
    this.code = code;
    this.reason = reason;
    this.metadata = Map.copyOf(metadata);
  }

  public static ServiceException invalid(Reason reason, String message) {
    return new ServiceException(ErrorCode.INVALID_ARGUMENT, reason, message);
  }

  public static ServiceException failedPrecondition(Reason reason, String message) {
    return new ServiceException(ErrorCode.FAILED_PRECONDITION, reason, message);
  }

  public static ServiceException notFound(Reason reason, String message, Map<String, String> metadata) {
    return new ServiceException(ErrorCode.NOT_FOUND, reason, message, metadata, null);
  }

  public ErrorCode code() { return code; }

  /** The reason's name, as the caller sees it. */
  public String reason() { return reason.name(); }

  public Reason reasonOf() { return reason; }

  public Map<String, String> metadata() { return metadata; }

  /** A copy with one more metadata entry. */
  public ServiceException with(String key, String value) {
    Map<String, String> m = new LinkedHashMap<>(metadata);
    m.put(key, value);
    return new ServiceException(code, reason, getMessage(), m, getCause());
  }
}
