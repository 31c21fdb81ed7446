package io.tpmkms.client;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/**
 * Client-credentials tokens from an OpenID Connect issuer, cached until {@code skew} before they
 * expire. A failure to get one is an UNAUTHENTICATED {@link TpmkmsException} naming the issuer and
 * the HTTP status or OAuth error, never the secret.
 */
final class ClientCredentialsTokens implements TokenSource {
  private final URI issuer;
  private final String clientId;
  private final String clientSecret;
  private final Clock clock;
  private final Duration skew;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
  private URI tokenEndpoint;
  private String token;
  private Instant refreshAt = Instant.MIN;
  private int fetches;

  ClientCredentialsTokens(URI issuer, String clientId, String clientSecret, Clock clock, Duration skew) {
    this.issuer = issuer;
    this.clientId = clientId;
    this.clientSecret = clientSecret;
    this.clock = clock;
    this.skew = skew;
  }

  @Override
  public synchronized String token() {
    if (token == null || !clock.instant().isBefore(refreshAt)) fetch();
    return token;
  }

  @Override
  public synchronized void invalidate() {
    token = null;
  }

  /** How many tokens were fetched (for tests and metrics). */
  synchronized int fetches() {
    return fetches;
  }

  private void fetch() {
    try {
      if (tokenEndpoint == null) tokenEndpoint = discover();
      String form = "grant_type=client_credentials&client_id=" + enc(clientId) + "&client_secret=" + enc(clientSecret);
      HttpResponse<String> r = http.send(HttpRequest.newBuilder(tokenEndpoint).timeout(Duration.ofSeconds(10))
          .header("Content-Type", "application/x-www-form-urlencoded")
          .POST(HttpRequest.BodyPublishers.ofString(form)).build(), HttpResponse.BodyHandlers.ofString());
      JsonObject body = parse(r.body());
      if (r.statusCode() != 200 || !body.has("access_token")) {
        String error = body.has("error") ? body.get("error").getAsString() : "HTTP " + r.statusCode();
        throw unauthenticated("the token endpoint " + tokenEndpoint + " refused client " + clientId + ": " + error, null);
      }
      Instant now = clock.instant();
      long expiresIn = body.has("expires_in") ? body.get("expires_in").getAsLong() : 60;
      token = body.get("access_token").getAsString();
      // refresh skew before expiry, but never sooner than half the lifetime (short-lived tokens)
      long refreshAfter = Math.max(expiresIn / 2, expiresIn - skew.toSeconds());
      refreshAt = now.plusSeconds(refreshAfter);
      fetches++;
    } catch (IOException e) {
      throw unauthenticated("no token from " + issuer + ": " + e.getClass().getSimpleName() + " " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw unauthenticated("interrupted while fetching a token from " + issuer, e);
    }
  }

  private URI discover() throws IOException, InterruptedException {
    String base = issuer.toString().endsWith("/") ? issuer.toString() : issuer + "/";
    URI wellKnown = URI.create(base + ".well-known/openid-configuration");
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(wellKnown).timeout(Duration.ofSeconds(10)).build(),
        HttpResponse.BodyHandlers.ofString());
    JsonObject body = parse(r.body());
    if (r.statusCode() != 200 || !body.has("token_endpoint")) {
      throw unauthenticated("no OpenID configuration at " + wellKnown + " (HTTP " + r.statusCode() + ")", null);
    }
    return URI.create(body.get("token_endpoint").getAsString());
  }

  private static JsonObject parse(String body) {
    try {
      var e = JsonParser.parseString(body);
      return e.isJsonObject() ? e.getAsJsonObject() : new JsonObject();
    } catch (RuntimeException e) {
      return new JsonObject();
    }
  }

  private static TpmkmsException unauthenticated(String message, Throwable cause) {
    return new TpmkmsException(io.grpc.Status.Code.UNAUTHENTICATED, "TOKEN_UNAVAILABLE", java.util.Map.of(), message,
        0, cause);
  }

  private static String enc(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }
}
