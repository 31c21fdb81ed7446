package io.tpmkms.platform.error;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The shape of every tpmkms service's failure type: a code (which gRPC
 * status), a stable reason (the {@code google.rpc.ErrorInfo.reason}), a
 * message safe to show the caller, and metadata. Each service subclasses it
 * once, with its own reasons ({@link StatusMapper} turns any of them into a
 * status).
 */
public abstract class ServiceException extends RuntimeException {
  private final ErrorCode code;
  private final String reason;
  private final Map<String, String> metadata;

  protected ServiceException(ErrorCode code, String reason, String message, Map<String, String> metadata,
      Throwable cause) {
    super(message, cause);
    this.code = code;
    this.reason = reason;
    this.metadata = Map.copyOf(metadata);
  }

  public ErrorCode code() { return code; }
  public String reason() { return reason; }
  public Map<String, String> metadata() { return metadata; }

  /** The metadata plus one entry, for a subclass's copy-with. */
  protected Map<String, String> metadataWith(String key, String value) {
    Map<String, String> m = new LinkedHashMap<>(metadata);
    m.put(key, value);
    return m;
  }
}
