package io.tpmkms.client;

import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.Map;

/**
 * A call tpmkms refused or could not answer: the gRPC code, the service's stable reason
 * ({@code google.rpc.ErrorInfo.reason}, e.g. {@code KEY_NOT_FOUND}, {@code PERMISSION_DENIED},
 * {@code KEY_VERSION_NOT_ENABLED}; docs/api.md lists them) and its metadata. Programs branch on
 * {@link #reason()}, never on the message.
 */
public class TpmkmsException extends RuntimeException {
  private final Status.Code code;
  private final String reason;
  private final Map<String, String> metadata;
  private final int attempts;

  public TpmkmsException(Status.Code code, String reason, Map<String, String> metadata, String message, int attempts,
      Throwable cause) {
    super(message, cause);
    this.code = code;
    this.reason = reason;
    this.metadata = Map.copyOf(metadata);
    this.attempts = attempts;
  }

  /** The refusal of {@code e}, with its reason when the service gave one. */
  public static TpmkmsException of(StatusRuntimeException e, int attempts) {
    String reason = "";
    Map<String, String> metadata = Map.of();
    com.google.rpc.Status st = StatusProto.fromThrowable(e);
    if (st != null) {
      for (var any : st.getDetailsList()) {
        if (any.is(ErrorInfo.class)) {
          try {
            ErrorInfo info = any.unpack(ErrorInfo.class);
            reason = info.getReason();
            metadata = info.getMetadataMap();
          } catch (com.google.protobuf.InvalidProtocolBufferException ignored) {
            // no reason then
          }
          break;
        }
      }
    }
    Status s = e.getStatus();
    String message = s.getCode() + (reason.isEmpty() ? "" : " " + reason)
        + (s.getDescription() == null ? "" : ": " + s.getDescription())
        + (attempts > 1 ? " (after " + attempts + " attempts)" : "");
    return new TpmkmsException(s.getCode(), reason, metadata, message, attempts, e);
  }

  /** The error of one item of a batch (a google.rpc.Status as the single call's refusal). */
  public static TpmkmsException of(com.google.rpc.Status st) {
    String reason = "";
    Map<String, String> metadata = Map.of();
    for (var any : st.getDetailsList()) {
      if (any.is(ErrorInfo.class)) {
        try {
          ErrorInfo info = any.unpack(ErrorInfo.class);
          reason = info.getReason();
          metadata = info.getMetadataMap();
        } catch (com.google.protobuf.InvalidProtocolBufferException ignored) {
          // no reason then
        }
        break;
      }
    }
    Status.Code code = Status.fromCodeValue(st.getCode()).getCode();
    return new TpmkmsException(code, reason, metadata, code + (reason.isEmpty() ? "" : " " + reason)
        + (st.getMessage().isEmpty() ? "" : ": " + st.getMessage()), 1, null);
  }

  /** The gRPC status code. */
  public Status.Code code() {
    return code;
  }

  /** The stable reason, or "" when the failure did not come from the service (e.g. UNAVAILABLE from the channel). */
  public String reason() {
    return reason;
  }

  /** The reason's details (e.g. {@code key}, {@code version}). */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** How many times the call was sent (retries included). */
  public int attempts() {
    return attempts;
  }
}
