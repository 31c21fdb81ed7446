package io.tpmkms.console;

import io.vertx.core.http.HttpServerRequest;
import jakarta.inject.Singleton;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * CSRF tokens (ADR 0031): every form that changes something carries {@code _csrf} =
 * HMAC-SHA256(a per-process key, the session id in the {@code q_session} cookie); a POST without the
 * token of its own session is refused before anything is called. A page of another site cannot
 * read the token (the pages are same-origin, no CORS), so it cannot forge a change. Browsers that
 * send {@code Origin} or {@code Sec-Fetch-Site} are also checked for a cross-site POST
 * ({@link SecurityHeaders}).
 */
@Singleton
public class Csrf {
  static final String FIELD = "_csrf";
  static final String SESSION_COOKIE = "q_session";
  private final byte[] key = new byte[32];

  public Csrf() {
    new SecureRandom().nextBytes(key);
  }

  /** The token of the request's session; "" without a session. */
  public String token(HttpServerRequest request) {
    var cookie = request.getCookie(SESSION_COOKIE);
    if (cookie == null || cookie.getValue().isEmpty()) return "";
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      return Base64.getUrlEncoder().withoutPadding()
          .encodeToString(mac.doFinal(cookie.getValue().getBytes(StandardCharsets.UTF_8)));
    } catch (java.security.GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Whether {@code presented} is the token of the request's session (constant time). */
  public boolean valid(HttpServerRequest request, String presented) {
    String expected = token(request);
    if (expected.isEmpty() || presented == null) return false;
    return MessageDigest.isEqual(expected.getBytes(StandardCharsets.US_ASCII),
        presented.getBytes(StandardCharsets.US_ASCII));
  }
}
