package io.tpmkms.console;

import com.google.rpc.ErrorInfo;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;

/** The services' refusals in plain words for a page: what happened, and the stable reason. */
public final class Errors {
  private Errors() {}

  /** "Permission denied: ... (PERMISSION_DENIED)". The services' messages never carry secrets. */
  public static String plain(StatusRuntimeException e) {
    String reason = reason(e);
    String what = switch (e.getStatus().getCode()) {
      case PERMISSION_DENIED -> "Not allowed";
      case UNAUTHENTICATED -> "Your sign-in was not accepted; sign in again";
      case NOT_FOUND -> "Not found";
      case ALREADY_EXISTS -> "Already exists";
      case FAILED_PRECONDITION -> "Not possible in this state";
      case INVALID_ARGUMENT -> "Invalid input";
      case UNAVAILABLE -> "Service unavailable; try again";
      case DEADLINE_EXCEEDED -> "The service took too long";
      case ABORTED -> "Changed meanwhile; reload and try again";
      case RESOURCE_EXHAUSTED -> "Too many requests; try again";
      case UNIMPLEMENTED -> "Not available for this key";
      default -> "The service failed";
    };
    String description = e.getStatus().getDescription();
    return what + (description == null || description.isBlank() ? "" : ": " + description)
        + (reason.isEmpty() ? "" : " (" + reason + ")");
  }

  /** The ErrorInfo reason, "" if none. */
  public static String reason(StatusRuntimeException e) {
    com.google.rpc.Status st = StatusProto.fromThrowable(e);
    if (st == null) return "";
    for (var any : st.getDetailsList()) {
      if (any.is(ErrorInfo.class)) {
        try {
          return any.unpack(ErrorInfo.class).getReason();
        } catch (com.google.protobuf.InvalidProtocolBufferException ignored) {
          return "";
        }
      }
    }
    return "";
  }
}
