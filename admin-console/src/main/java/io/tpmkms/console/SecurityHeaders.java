package io.tpmkms.console;

import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.Router;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Singleton;
import java.net.URI;
import org.eclipse.microprofile.config.inject.ConfigProperty;

/**
 * Headers on every answer, pages and files alike: a Content-Security-Policy without inline script
 * or style, no framing, no sniffing, no referrer, no caching; and cross-site POSTs refused before
 * they reach a page (the CSRF token is checked there too, {@link Csrf}).
 */
@Singleton
public class SecurityHeaders {
  private final String csp;

  public SecurityHeaders(@ConfigProperty(name = "quarkus.oidc.auth-server-url") String oidc) {
    URI u = URI.create(oidc);
    String keycloak = u.getScheme() + "://" + u.getAuthority();
    // form-action names Keycloak too: a form posted after the session ended is redirected to its login
    this.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "form-action 'self' " + keycloak + "; frame-ancestors 'none'; base-uri 'none'";
  }

  void install(@Observes Router router) {
    router.route().order(-1000).handler(ctx -> {
      var r = ctx.response();
      r.putHeader("Content-Security-Policy", csp);
      r.putHeader("X-Frame-Options", "DENY");
      r.putHeader("X-Content-Type-Options", "nosniff");
      r.putHeader("Referrer-Policy", "same-origin"); // not no-referrer: with it a form POST sends Origin: null
      r.putHeader("Cache-Control", "no-store");
      if (ctx.request().method() == HttpMethod.POST) {
        String site = ctx.request().getHeader("Sec-Fetch-Site");
        String origin = ctx.request().getHeader("Origin");
        String host = ctx.request().getHeader("Host");
        // the origin's host:port must be this one's (the scheme may differ behind a TLS proxy)
        boolean otherOrigin = origin != null && (host == null || !(origin.endsWith("://" + host)));
        if ("cross-site".equals(site) || otherOrigin) {
          r.setStatusCode(403).putHeader("Content-Type", "text/plain; charset=utf-8")
              .end("refused: a change requested from another site");
          return;
        }
      }
      ctx.next();
    });
  }
}
