package io.tpmkms.cli;

import com.google.gson.JsonObject;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An OpenID provider on a loopback port (the JDK's HTTP server), enough of Keycloak for the CLI:
 * discovery, the token endpoint (password, client credentials, refresh and device grants), the
 * device authorization endpoint and the revocation endpoint.
 *
 * <p>It issues JWT-shaped access tokens ({@code at-N} in the signature part, so each is unique and
 * recognisable) with the claims iss, sub, preferred_username and azp; refresh tokens are
 * {@code rt-N}. Every request to the token, device and revocation endpoints is recorded with its
 * form fields and Authorization header. Device polls answer from a script of OAuth error codes,
 * then succeed.
 */
public final class FakeOidcProvider implements AutoCloseable {

    /** One request received: path, form fields, Authorization header. */
    public record Request(String path, Map<String, String> form, String authorization) {
    }

    public final HttpServer server;
    public final String issuer;
    public final List<Request> requests = new ArrayList<>();
    public final Map<String, String> users = new HashMap<>(Map.of("alice", "alice-password"));
    public final Map<String, String> clients = new HashMap<>(Map.of("svc", "svc-secret"));
    public final Deque<String> devicePolls = new ArrayDeque<>();
    public final List<String> revoked = new ArrayList<>();
    public final Map<String, String> refreshTokens = new HashMap<>();   // refresh token -> subject
    public int expiresIn = 300;
    public int deviceInterval = 5;
    public int deviceExpiresIn = 600;
    public boolean device = true;
    public boolean revocation = true;
    public boolean refusesRefresh;
    public String announcedIssuer;
    private int counter;

    public FakeOidcProvider() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        issuer = "http://127.0.0.1:" + server.getAddress().getPort() + "/realms/tpmkms";
        server.createContext("/realms/tpmkms/.well-known/openid-configuration", this::discovery);
        server.createContext("/realms/tpmkms/protocol/openid-connect/token", this::token);
        server.createContext("/realms/tpmkms/protocol/openid-connect/auth/device", this::deviceAuthorization);
        server.createContext("/realms/tpmkms/protocol/openid-connect/revoke", this::revoke);
        server.start();
    }

    @Override
    public void close() {
        server.stop(0);
    }

    public synchronized List<Request> requests(String pathEnd) {
        return requests.stream().filter(r -> r.path().endsWith(pathEnd)).toList();
    }

    public synchronized List<Request> tokenRequests() {
        return requests("/token");
    }

    /** The access token the provider issued as number {@code n} (1-based). */
    public String accessToken(int n, String subject, String username, String clientId) {
        JsonObject header = new JsonObject();
        header.addProperty("alg", "RS256");
        JsonObject claims = new JsonObject();
        claims.addProperty("iss", issuer);
        claims.addProperty("sub", subject);
        if (username != null) {
            claims.addProperty("preferred_username", username);
        }
        claims.addProperty("azp", clientId);
        Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
        return b64.encodeToString(header.toString().getBytes(StandardCharsets.UTF_8)) + "."
                + b64.encodeToString(claims.toString().getBytes(StandardCharsets.UTF_8)) + ".at-" + n;
    }

    private void discovery(HttpExchange x) throws IOException {
        JsonObject doc = new JsonObject();
        doc.addProperty("issuer", announcedIssuer != null ? announcedIssuer : issuer);
        doc.addProperty("token_endpoint", issuer + "/protocol/openid-connect/token");
        if (device) {
            doc.addProperty("device_authorization_endpoint", issuer + "/protocol/openid-connect/auth/device");
        }
        if (revocation) {
            doc.addProperty("revocation_endpoint", issuer + "/protocol/openid-connect/revoke");
        }
        send(x, 200, doc);
    }

    private synchronized void token(HttpExchange x) throws IOException {
        Map<String, String> form = record(x);
        String clientId = form.get("client_id");
        String basic = x.getRequestHeaders().getFirst("Authorization");
        if (basic != null && basic.startsWith("Basic ")) {
            String[] idSecret = new String(Base64.getDecoder().decode(basic.substring(6)), StandardCharsets.UTF_8).split(":", 2);
            clientId = URLDecoder.decode(idSecret[0], StandardCharsets.UTF_8);
            if (!URLDecoder.decode(idSecret[1], StandardCharsets.UTF_8).equals(clients.get(clientId))) {
                error(x, 401, "invalid_client", "Invalid client or Invalid client credentials");
                return;
            }
        }
        switch (form.getOrDefault("grant_type", "")) {
            case "password" -> {
                String user = form.get("username");
                if (users.containsKey(user) && users.get(user).equals(form.get("password"))) {
                    issue(x, "sub-" + user, user, clientId, true);
                } else {
                    error(x, 401, "invalid_grant", "Invalid user credentials");
                }
            }
            case "client_credentials" -> {
                if (basic == null) {
                    error(x, 401, "unauthorized_client", "Public client not allowed to retrieve service account");
                } else {
                    issue(x, "sub-service-account-" + clientId, "service-account-" + clientId, clientId, false);
                }
            }
            case "refresh_token" -> {
                String subject = refreshTokens.remove(form.get("refresh_token"));
                if (subject == null || refusesRefresh) {
                    error(x, 400, "invalid_grant", "Session not active");
                } else {
                    issue(x, subject, subject.substring(4), clientId, true);
                }
            }
            case "urn:ietf:params:oauth:grant-type:device_code" -> {
                if (!"dc-1".equals(form.get("device_code"))) {
                    error(x, 400, "invalid_grant", "unknown device code");
                    return;
                }
                String script = devicePolls.poll();
                if (script != null) {
                    error(x, 400, script, "scripted " + script);
                } else {
                    issue(x, "sub-bob", "bob", clientId, true);
                }
            }
            default -> error(x, 400, "unsupported_grant_type", form.get("grant_type"));
        }
    }

    private synchronized void deviceAuthorization(HttpExchange x) throws IOException {
        record(x);
        JsonObject o = new JsonObject();
        o.addProperty("device_code", "dc-1");
        o.addProperty("user_code", "WDJB-MJHT");
        o.addProperty("verification_uri", issuer + "/device");
        o.addProperty("verification_uri_complete", issuer + "/device?user_code=WDJB-MJHT");
        o.addProperty("expires_in", deviceExpiresIn);
        o.addProperty("interval", deviceInterval);
        send(x, 200, o);
    }

    private synchronized void revoke(HttpExchange x) throws IOException {
        Map<String, String> form = record(x);
        revoked.add(form.get("token"));
        x.sendResponseHeaders(200, -1);
        x.close();
    }

    private void issue(HttpExchange x, String subject, String username, String clientId, boolean refresh)
            throws IOException {
        counter++;
        JsonObject o = new JsonObject();
        o.addProperty("access_token", accessToken(counter, subject, username, clientId));
        o.addProperty("token_type", "Bearer");
        o.addProperty("expires_in", expiresIn);
        if (refresh) {
            String rt = "rt-" + counter;
            refreshTokens.put(rt, subject);
            o.addProperty("refresh_token", rt);
            o.addProperty("refresh_expires_in", 1800);
        }
        send(x, 200, o);
    }

    private Map<String, String> record(HttpExchange x) throws IOException {
        String body = new String(x.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        Map<String, String> form = new LinkedHashMap<>();
        for (String pair : body.split("&")) {
            if (!pair.isEmpty()) {
                String[] kv = pair.split("=", 2);
                form.put(URLDecoder.decode(kv[0], StandardCharsets.UTF_8),
                        kv.length > 1 ? URLDecoder.decode(kv[1], StandardCharsets.UTF_8) : "");
            }
        }
        synchronized (this) {
            requests.add(new Request(x.getRequestURI().getPath(), form, x.getRequestHeaders().getFirst("Authorization")));
        }
        return form;
    }

    private static void error(HttpExchange x, int status, String error, String description) throws IOException {
        JsonObject o = new JsonObject();
        o.addProperty("error", error);
        o.addProperty("error_description", description);
        send(x, status, o);
    }

    private static void send(HttpExchange x, int status, JsonObject body) throws IOException {
        byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
        x.getResponseHeaders().add("Content-Type", "application/json");
        x.sendResponseHeaders(status, bytes.length);
        x.getResponseBody().write(bytes);
        x.close();
    }
}
