package io.tpmkms.platform.auth;

/**
 * Where {@link BearerTokenInterceptor} reports each call it refuses (no,
 * invalid or oversized token), so the refusal reaches the audit trail: the key
 * and policy services through their audit log ({@code RefusalAudit}), the audit
 * service straight into its chain. One bean per service; without one,
 * refusals are only answered.
 *
 * <p>Called on the transport thread before the call is answered: an
 * implementation must not block (queue the event and return). It never sees
 * the token.
 */
public interface UnauthenticatedCalls {
  /**
   * @param operation full RPC name ("tpmkms.key.v1.KeyService/Encrypt")
   * @param client    the peer address
   * @param requestId the caller's x-request-id, or null
   * @param reason    the ErrorInfo reason the caller got (TOKEN_MISSING, TOKEN_INVALID, TOKEN_TOO_LARGE)
   * @param message   why, as the caller was told (never containing the token)
   */
  void refused(String operation, String client, String requestId, String reason, String message);
}
