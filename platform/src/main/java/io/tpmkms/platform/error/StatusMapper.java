package io.tpmkms.platform.error;

import com.google.protobuf.Any;
import com.google.rpc.ErrorInfo;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import org.jboss.logging.Logger;

/**
 * Builds the status every tpmkms service answers with: the code's gRPC status,
 * a message safe for the caller and a {@code google.rpc.ErrorInfo} (domain
 * {@value #DOMAIN}) with a stable reason. Internal failures get a correlation
 * id, logged with the cause; the caller sees only the id. Caller errors are
 * logged at debug, the service's own failures at warn.
 */
public final class StatusMapper {
  public static final String DOMAIN = "tpmkms.io";
  private static final Logger LOG = Logger.getLogger(StatusMapper.class);

  private StatusMapper() {}

  /** The status of a service exception; {@code cause} is what was thrown, for the log. */
  public static StatusRuntimeException toStatus(Throwable cause, ServiceException e) {
    return toStatus(cause, e.code(), e.reason(), e.getMessage(), e.metadata());
  }

  /**
   * @param cause what was thrown, for the log
   * @param message safe to show the caller (never key material, plaintext or tokens)
   */
  public static StatusRuntimeException toStatus(Throwable cause, ErrorCode code, String reason, String message,
      Map<String, String> metadata) {
    Map<String, String> meta = new LinkedHashMap<>(metadata);
    String shown = message;
    if (code == ErrorCode.INTERNAL) {
      String id = UUID.randomUUID().toString();
      LOG.errorf(cause, "internal error, correlation id %s", id);
      meta.put("correlation_id", id);
      shown = "internal error (correlation id " + id + ")";
    } else if (code.userError()) {
      LOG.debugf("%s (%s): %s%s", code, reason, message, causeText(cause));
    } else {
      LOG.warnf("%s (%s): %s%s", code, reason, message, causeText(cause));
    }
    ErrorInfo info = ErrorInfo.newBuilder().setReason(reason).setDomain(DOMAIN).putAllMetadata(meta).build();
    com.google.rpc.Status status = com.google.rpc.Status.newBuilder()
        .setCode(code.status().value())
        .setMessage(shown == null ? "" : shown)
        .addDetails(Any.pack(info))
        .build();
    return StatusProto.toStatusRuntimeException(status);
  }

  private static String causeText(Throwable t) {
    if (t == null || t.getCause() == null) return "";
    Throwable r = t;
    while (r.getCause() != null) r = r.getCause();
    return " caused by " + r.getClass().getSimpleName() + ": " + r.getMessage();
  }
}
