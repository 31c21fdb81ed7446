package io.tpmkms.platform.auth;

import io.grpc.Context;

/**
 * The authenticated caller of the gRPC call being served, put into the gRPC
 * {@link Context} by {@link BearerTokenInterceptor} before any service code
 * runs (and carried along when the call moves to a worker thread).
 */
public final class Caller {
  static final Context.Key<Principal> KEY = Context.key("tpmkms-caller");
  static final Context.Key<String> TOKEN = Context.key("tpmkms-caller-token");

  private Caller() {}

  /**
   * The caller of the current call; {@link Principal#ANONYMOUS} when
   * authentication is off. Outside a gRPC call (schedulers): null.
   */
  public static Principal current() {
    return KEY.get();
  }

  /** A context carrying the given caller (for the interceptor and tests of one class). */
  public static Context with(Context context, Principal principal) {
    return context.withValue(KEY, principal);
  }
}
