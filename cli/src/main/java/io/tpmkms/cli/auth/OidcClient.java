package io.tpmkms.cli.auth;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.tpmkms.cli.Platform;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Collectors;

/**
 * The OAuth 2.0 / OpenID Connect client of the CLI: discovery, the password, device authorization,
 * client credentials and refresh grants, and token revocation, over the JDK's HTTP client (no
 * OIDC library, to keep the shaded jar small; the CLI needs five POSTs and one GET).
 *
 * <p>The CLI does not verify the tokens it gets: it only carries them to the services, which do.
 * Confidential clients authenticate with HTTP Basic (RFC 6749 §2.3.1); the public client sends
 * its {@code client_id} in the form. Error messages quote the provider's {@code error} and
 * {@code error_description}, never a token or secret.
 *
 * <p>Not thread-safe in the sense that {@link #pollDevice} blocks its caller; otherwise stateless.
 */
public final class OidcClient {

    /** The grant type of RFC 8628. */
    static final String DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

    /** The endpoints of one issuer, from its discovery document. */
    public record Endpoints(String issuer, URI tokenEndpoint, URI deviceAuthorizationEndpoint, URI revocationEndpoint) {
    }

    /** A successful token response; {@code refreshToken} is {@code null} when none was issued. */
    public record Tokens(String accessToken, String refreshToken, Duration expiresIn, Duration refreshExpiresIn) {
        @Override
        public String toString() {
            return "Tokens[expiresIn=" + expiresIn + "]";
        }
    }

    /** A started device authorization (RFC 8628 §3.2). */
    public record DeviceAuthorization(String deviceCode, String userCode, String verificationUri,
            String verificationUriComplete, Duration expiresIn, Duration interval) {
        @Override
        public String toString() {
            return "DeviceAuthorization[userCode=" + userCode + ", uri=" + verificationUri + "]";
        }
    }

    /** An OAuth error response ({@code error}, {@code error_description}). */
    static final class OAuthError extends Exception {
        final String error;

        OAuthError(String error, String description) {
            super(description == null || description.isBlank() ? error : error + ": " + description);
            this.error = error;
        }
    }

    private final HttpClient http;
    private final Duration timeout;
    private final Endpoints endpoints;

    private OidcClient(HttpClient http, Duration timeout, Endpoints endpoints) {
        this.http = http;
        this.timeout = timeout;
        this.endpoints = endpoints;
    }

    /** A client for endpoints already known (from the token cache): no discovery request. */
    public static OidcClient of(Endpoints endpoints, Duration timeout) {
        return new OidcClient(httpClient(timeout), timeout, endpoints);
    }

    /**
     * Reads {@code ISSUER/.well-known/openid-configuration}. The document's {@code issuer} must be
     * the issuer asked for (OpenID Connect Discovery §4.3): tokens name their issuer, and the
     * services check it, so a provider answering for another name would only produce tokens they
     * reject.
     */
    public static OidcClient discover(String issuer, Duration timeout) throws AuthenticationException {
        String base = issuer.endsWith("/") ? issuer.substring(0, issuer.length() - 1) : issuer;
        URI uri;
        try {
            uri = URI.create(base + "/.well-known/openid-configuration");
        } catch (IllegalArgumentException e) {
            throw AuthenticationException.protocol("bad issuer URL '" + issuer + "': " + e.getMessage());
        }
        if (uri.getScheme() == null || !(uri.getScheme().equals("https") || uri.getScheme().equals("http"))) {
            throw AuthenticationException.protocol("the issuer must be an http(s) URL, got '" + issuer + "'");
        }
        HttpClient http = httpClient(timeout);
        HttpResponse<String> response = send(http, HttpRequest.newBuilder(uri).timeout(timeout)
                .header("Accept", "application/json").GET().build(), "the OpenID provider at " + issuer);
        if (response.statusCode() != 200) {
            throw AuthenticationException.protocol("no OpenID configuration at " + uri + " (HTTP " + response.statusCode() + ")");
        }
        JsonObject doc = json(response.body(), uri.toString());
        String announced = string(doc, "issuer");
        if (announced == null || !announced.equals(base)) {
            throw AuthenticationException.protocol("the OpenID configuration at " + uri + " is for issuer '"
                    + announced + "', not '" + base + "'");
        }
        String token = string(doc, "token_endpoint");
        if (token == null) {
            throw AuthenticationException.protocol("the OpenID configuration at " + uri + " has no token_endpoint");
        }
        String device = string(doc, "device_authorization_endpoint");
        String revocation = string(doc, "revocation_endpoint");
        Endpoints endpoints = new Endpoints(base, URI.create(token),
                device == null ? null : URI.create(device), revocation == null ? null : URI.create(revocation));
        return new OidcClient(http, timeout, endpoints);
    }

    public Endpoints endpoints() {
        return endpoints;
    }

    /** Resource owner password grant (RFC 6749 §4.3). */
    public Tokens password(String clientId, String clientSecret, String username, char[] password)
            throws AuthenticationException {
        Map<String, String> form = new LinkedHashMap<>();
        form.put("grant_type", "password");
        form.put("username", username);
        form.put("password", new String(password));
        return tokenOrFail(form, clientId, clientSecret, "login");
    }

    /** Client credentials grant (RFC 6749 §4.4): the client's service account. */
    public Tokens clientCredentials(String clientId, String clientSecret) throws AuthenticationException {
        Map<String, String> form = new LinkedHashMap<>();
        form.put("grant_type", "client_credentials");
        return tokenOrFail(form, clientId, clientSecret, "login");
    }

    /**
     * Refresh grant (RFC 6749 §6). A refused refresh token (session ended, revoked, expired) is a
     * {@link AuthenticationException#loginNeeded}.
     */
    public Tokens refresh(String clientId, String clientSecret, String refreshToken) throws AuthenticationException {
        Map<String, String> form = new LinkedHashMap<>();
        form.put("grant_type", "refresh_token");
        form.put("refresh_token", refreshToken);
        try {
            return token(form, clientId, clientSecret);
        } catch (OAuthError e) {
            throw AuthenticationException.loginNeeded("the session at " + endpoints.issuer()
                    + " cannot be refreshed (" + e.getMessage() + ")");
        }
    }

    /** Starts the device authorization grant (RFC 8628 §3.1). */
    public DeviceAuthorization startDevice(String clientId, String clientSecret) throws AuthenticationException {
        if (endpoints.deviceAuthorizationEndpoint() == null) {
            throw AuthenticationException.protocol("the OpenID provider " + endpoints.issuer()
                    + " offers no device authorization grant (no device_authorization_endpoint)");
        }
        HttpResponse<String> response = post(endpoints.deviceAuthorizationEndpoint(), Map.of(), clientId, clientSecret);
        JsonObject body = json(response.body(), endpoints.deviceAuthorizationEndpoint().toString());
        if (response.statusCode() != 200) {
            OAuthError error = error(body, response.statusCode());
            throw AuthenticationException.refused("device authorization refused: " + error.getMessage());
        }
        String deviceCode = string(body, "device_code");
        String userCode = string(body, "user_code");
        String uri = string(body, "verification_uri");
        if (deviceCode == null || userCode == null || uri == null) {
            throw AuthenticationException.protocol("the device authorization response lacks device_code, user_code "
                    + "or verification_uri");
        }
        long expires = number(body, "expires_in", 600);
        long interval = number(body, "interval", 5);
        return new DeviceAuthorization(deviceCode, userCode, uri, string(body, "verification_uri_complete"),
                Duration.ofSeconds(expires), Duration.ofSeconds(Math.max(1, interval)));
    }

    /**
     * Polls the token endpoint until the user approves the device (RFC 8628 §3.4, §3.5): waits
     * {@code interval} before each request, adds 5 s on {@code slow_down}, and gives up when
     * {@code expires_in} has passed or the provider answers {@code expired_token} or
     * {@code access_denied}.
     *
     * @param waiting told the time of each poll that found the request still pending
     */
    public Tokens pollDevice(String clientId, String clientSecret, DeviceAuthorization device, Platform platform,
            Consumer<Instant> waiting) throws AuthenticationException {
        Instant deadline = platform.now().plus(device.expiresIn());
        Duration interval = device.interval();
        Map<String, String> form = new LinkedHashMap<>();
        form.put("grant_type", DEVICE_GRANT);
        form.put("device_code", device.deviceCode());
        while (true) {
            if (!platform.now().plus(interval).isBefore(deadline)) {
                throw AuthenticationException.refused("the device code expired before the login was completed "
                        + "(after " + device.expiresIn().toSeconds() + "s)");
            }
            platform.sleep(interval);
            if (Thread.currentThread().isInterrupted()) {
                throw AuthenticationException.refused("interrupted while waiting for the device login");
            }
            try {
                return token(form, clientId, clientSecret);
            } catch (OAuthError e) {
                switch (e.error) {
                    case "authorization_pending" -> waiting.accept(platform.now());
                    case "slow_down" -> interval = interval.plusSeconds(5);
                    case "expired_token" -> throw AuthenticationException.refused(
                            "the device code expired before the login was completed (" + e.getMessage() + ")");
                    case "access_denied" -> throw AuthenticationException.refused("the device login was denied ("
                            + e.getMessage() + ")");
                    default -> throw AuthenticationException.refused("device login failed: " + e.getMessage());
                }
            }
        }
    }

    /**
     * Revokes a token (RFC 7009). Returns false when the provider has no revocation endpoint or
     * did not accept the request; never throws for an answer, as logout goes on regardless.
     */
    public boolean revoke(String clientId, String clientSecret, String token, String hint) throws AuthenticationException {
        if (endpoints.revocationEndpoint() == null) {
            return false;
        }
        Map<String, String> form = new LinkedHashMap<>();
        form.put("token", token);
        form.put("token_type_hint", hint);
        return post(endpoints.revocationEndpoint(), form, clientId, clientSecret).statusCode() == 200;
    }

    private Tokens tokenOrFail(Map<String, String> form, String clientId, String clientSecret, String what)
            throws AuthenticationException {
        try {
            return token(form, clientId, clientSecret);
        } catch (OAuthError e) {
            throw AuthenticationException.refused(what + " refused by " + endpoints.issuer() + ": " + e.getMessage());
        }
    }

    private Tokens token(Map<String, String> form, String clientId, String clientSecret)
            throws OAuthError, AuthenticationException {
        HttpResponse<String> response = post(endpoints.tokenEndpoint(), form, clientId, clientSecret);
        JsonObject body = json(response.body(), endpoints.tokenEndpoint().toString());
        if (response.statusCode() != 200) {
            throw error(body, response.statusCode());
        }
        String access = string(body, "access_token");
        if (access == null) {
            throw AuthenticationException.protocol("the token response from " + endpoints.tokenEndpoint()
                    + " has no access_token");
        }
        String type = string(body, "token_type");
        if (type != null && !type.equalsIgnoreCase("Bearer")) {
            throw AuthenticationException.protocol("the token endpoint issued a '" + type + "' token, not a Bearer token");
        }
        long refreshExpires = number(body, "refresh_expires_in", -1);
        return new Tokens(access, string(body, "refresh_token"), Duration.ofSeconds(number(body, "expires_in", 60)),
                refreshExpires <= 0 ? null : Duration.ofSeconds(refreshExpires));
    }

    private HttpResponse<String> post(URI uri, Map<String, String> fields, String clientId, String clientSecret)
            throws AuthenticationException {
        Map<String, String> form = new LinkedHashMap<>(fields);
        HttpRequest.Builder request = HttpRequest.newBuilder(uri).timeout(timeout)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Accept", "application/json");
        if (clientSecret == null) {
            form.put("client_id", clientId);
        } else {
            String basic = urlEncode(clientId) + ":" + urlEncode(clientSecret);
            request.header("Authorization", "Basic "
                    + Base64.getEncoder().encodeToString(basic.getBytes(StandardCharsets.UTF_8)));
        }
        String body = form.entrySet().stream()
                .map(e -> urlEncode(e.getKey()) + "=" + urlEncode(e.getValue()))
                .collect(Collectors.joining("&"));
        return send(http, request.POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                "the OpenID provider at " + endpoints.issuer());
    }

    private static HttpResponse<String> send(HttpClient http, HttpRequest request, String what)
            throws AuthenticationException {
        try {
            return http.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (HttpTimeoutException e) {
            throw AuthenticationException.unreachable("no answer from " + what + " within the timeout", e);
        } catch (IOException e) {
            throw AuthenticationException.unreachable("cannot reach " + what + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw AuthenticationException.unreachable("interrupted while calling " + what, e);
        }
    }

    private static HttpClient httpClient(Duration timeout) {
        return HttpClient.newBuilder().connectTimeout(timeout).followRedirects(HttpClient.Redirect.NEVER).build();
    }

    private static OAuthError error(JsonObject body, int status) {
        String error = string(body, "error");
        return new OAuthError(error == null ? "HTTP " + status : error, string(body, "error_description"));
    }

    private static JsonObject json(String body, String from) throws AuthenticationException {
        try {
            JsonElement e = JsonParser.parseString(body);
            if (e.isJsonObject()) {
                return e.getAsJsonObject();
            }
        } catch (JsonParseException e) {
            // reported below
        }
        throw AuthenticationException.protocol("not a JSON object from " + from);
    }

    static String string(JsonObject o, String name) {
        JsonElement e = o.get(name);
        return e == null || e.isJsonNull() || !e.isJsonPrimitive() ? null : e.getAsString();
    }

    private static long number(JsonObject o, String name, long otherwise) {
        JsonElement e = o.get(name);
        if (e == null || !e.isJsonPrimitive()) {
            return otherwise;
        }
        try {
            return e.getAsLong();
        } catch (NumberFormatException ex) {
            return otherwise;
        }
    }

    private static String urlEncode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }
}
