package io.tpmkms.cli.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.grpc.Status;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.FakeOidcProvider;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import io.tpmkms.proto.policy.v1.Principal;
import io.tpmkms.proto.policy.v1.WhoAmIResponse;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code tpmkms login | logout | whoami | token print} and the token on every call, against
 * {@link FakeOidcProvider} and the fake gRPC services. The environment starts without
 * TPMKMS_TOKEN here, so the cache is what is used unless a test sets it.
 */
class LoginCommandTest extends CliHarness {

    FakeOidcProvider oidc;

    @BeforeEach
    void startProvider() throws Exception {
        oidc = new FakeOidcProvider();
        platform.env.remove("TPMKMS_TOKEN");
        platform.env.put("TPMKMS_OIDC_ISSUER", "http://127.0.0.1:1/not-this-one");
    }

    @AfterEach
    void stopProvider() {
        oidc.close();
    }

    Path cacheFile() {
        return configDir.resolve("config").resolve("credentials.json");
    }

    JsonObject cache() throws Exception {
        return JsonParser.parseString(Files.readString(cacheFile())).getAsJsonObject();
    }

    Result loginAlice() {
        return runWithStdin("alice-password\n".getBytes(StandardCharsets.UTF_8),
                "login", "--issuer", oidc.issuer, "--username", "alice", "--password-stdin");
    }

    String claim(String token, String name) {
        String payload = new String(Base64.getUrlDecoder().decode(token.split("\\.")[1]), StandardCharsets.UTF_8);
        return JsonParser.parseString(payload).getAsJsonObject().get(name).getAsString();
    }

    // ---------------------------------------------------------------------------------- password

    @Test
    void loginPassword_fromStdin_cachesTokensInA0600FileInA0700Directory_andPrintsNoToken() throws Exception {
        Result r = loginAlice();

        assertEquals(0, r.exitCode(), r::toString);
        FakeOidcProvider.Request token = oidc.tokenRequests().get(0);
        assertEquals("password", token.form().get("grant_type"));
        assertEquals("alice", token.form().get("username"));
        assertEquals("alice-password", token.form().get("password"));
        assertEquals("tpmkms-cli", token.form().get("client_id"));
        assertNull(token.authorization(), "a public client sends no Basic credentials");

        JsonObject c = cache();
        String access = oidc.accessToken(1, "sub-alice", "alice", "tpmkms-cli");
        assertEquals(oidc.issuer, c.get("issuer").getAsString());
        assertEquals("tpmkms-cli", c.get("client_id").getAsString());
        assertEquals("password", c.get("grant").getAsString());
        assertEquals(access, c.get("access_token").getAsString());
        assertEquals("rt-1", c.get("refresh_token").getAsString());
        assertEquals(platform.now.plusSeconds(300).toString(), c.get("expires_at").getAsString());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(cacheFile())));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(cacheFile().getParent())));

        assertTrue(r.stdout().contains("logged in to " + oidc.issuer + " as alice (client tpmkms-cli)"), r::toString);
        assertFalse(r.stdout().contains("at-1") || r.stderr().contains("at-1"), "token printed: " + r);
        assertFalse(r.stdout().contains("rt-1") || r.stderr().contains("rt-1"), "refresh token printed: " + r);
        assertTrue(calls().isEmpty(), "login calls no tpmkms service");
    }

    @Test
    void loginPassword_promptsOnTheTerminalWithoutEcho() throws Exception {
        platform.passwords.add("alice-password");

        Result r = run("login", "--issuer", oidc.issuer, "--username", "alice");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(List.of("Password for alice at " + oidc.issuer + ": "), platform.prompts);
        assertEquals("alice-password", oidc.tokenRequests().get(0).form().get("password"));
    }

    @Test
    void loginPassword_noTerminal_isUsageError_namingPasswordStdin() {
        Result r = run("login", "--issuer", oidc.issuer, "--username", "alice");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("--password-stdin"), r::toString);
        assertTrue(oidc.tokenRequests().isEmpty());
    }

    @Test
    void loginPassword_issuerFromEnvironment() {
        platform.env.put("TPMKMS_OIDC_ISSUER", oidc.issuer);

        Result r = runWithStdin("alice-password\n".getBytes(StandardCharsets.UTF_8),
                "login", "--username", "alice", "--password-stdin");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(1, oidc.tokenRequests().size());
    }

    @Test
    void loginPassword_wrongPassword_exits5_withTheProvidersReason_andCachesNothing() {
        Result r = runWithStdin("nope\n".getBytes(StandardCharsets.UTF_8),
                "login", "--issuer", oidc.issuer, "--username", "alice", "--password-stdin");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertEquals("error: login refused by " + oidc.issuer + ": invalid_grant: Invalid user credentials\n", r.stderr());
        assertFalse(Files.exists(cacheFile()));
    }

    @Test
    void login_withoutAMode_isUsageError() {
        Result r = run("login", "--issuer", oidc.issuer);

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("--username USER (password), --device"), r::toString);
    }

    @Test
    void login_twoModes_isUsageError() {
        Result r = run("login", "--issuer", oidc.issuer, "--username", "alice", "--device");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
    }

    @Test
    void login_providerNotListening_exits3() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Result r = runWithStdin("x\n".getBytes(StandardCharsets.UTF_8), "login", "--issuer",
                "http://127.0.0.1:" + port + "/realms/tpmkms", "--username", "alice", "--password-stdin");

        assertEquals(ExitCodes.UNREACHABLE, r.exitCode(), r::toString);
        assertTrue(r.stderr().startsWith("error: cannot reach the OpenID provider at http://127.0.0.1:" + port), r::toString);
    }

    @Test
    void login_discoveryForAnotherIssuer_isRefused() {
        oidc.announcedIssuer = "http://keycloak.example/realms/tpmkms";

        Result r = loginAlice();

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("is for issuer 'http://keycloak.example/realms/tpmkms'"), r::toString);
        assertTrue(oidc.tokenRequests().isEmpty());
    }

    // ---------------------------------------------------------------------------------- device

    @Test
    void loginDevice_pendingThenApproved_pollsEveryInterval_andCachesTheToken() throws Exception {
        oidc.devicePolls.add("authorization_pending");
        oidc.devicePolls.add("authorization_pending");

        Result r = run("login", "--issuer", oidc.issuer, "--device");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("open " + oidc.issuer + "/device and enter the code WDJB-MJHT"), r::toString);
        assertEquals("tpmkms-cli", oidc.requests("/auth/device").get(0).form().get("client_id"));
        assertEquals(List.of(Duration.ofSeconds(5), Duration.ofSeconds(5), Duration.ofSeconds(5)), platform.sleeps);
        List<FakeOidcProvider.Request> polls = oidc.tokenRequests();
        assertEquals(3, polls.size());
        for (FakeOidcProvider.Request p : polls) {
            assertEquals("urn:ietf:params:oauth:grant-type:device_code", p.form().get("grant_type"));
            assertEquals("dc-1", p.form().get("device_code"));
            assertEquals("tpmkms-cli", p.form().get("client_id"));
        }
        assertEquals("device", cache().get("grant").getAsString());
        assertEquals("bob", claim(cache().get("access_token").getAsString(), "preferred_username"));
        assertTrue(r.stdout().contains("as bob"), r::toString);
    }

    @Test
    void loginDevice_slowDown_addsFiveSecondsToTheInterval() {
        oidc.devicePolls.add("slow_down");
        oidc.devicePolls.add("authorization_pending");

        Result r = run("login", "--issuer", oidc.issuer, "--device");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(List.of(Duration.ofSeconds(5), Duration.ofSeconds(10), Duration.ofSeconds(10)), platform.sleeps);
    }

    @Test
    void loginDevice_expiredToken_exits5_andCachesNothing() {
        oidc.devicePolls.add("authorization_pending");
        oidc.devicePolls.add("expired_token");

        Result r = run("login", "--issuer", oidc.issuer, "--device");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("error: the device code expired before the login was completed"), r::toString);
        assertFalse(Files.exists(cacheFile()));
    }

    @Test
    void loginDevice_accessDenied_exits5() {
        oidc.devicePolls.add("access_denied");

        Result r = run("login", "--issuer", oidc.issuer, "--device");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("error: the device login was denied"), r::toString);
    }

    @Test
    void loginDevice_stopsPollingWhenExpiresInHasPassed() {
        oidc.deviceExpiresIn = 12;
        for (int i = 0; i < 10; i++) {
            oidc.devicePolls.add("authorization_pending");
        }

        Result r = run("login", "--issuer", oidc.issuer, "--device");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertEquals(2, oidc.tokenRequests().size(), "polls at 5 s and 10 s; the next would be after 12 s");
        assertTrue(r.stderr().contains("the device code expired"), r::toString);
    }

    @Test
    void loginDevice_providerWithoutDeviceEndpoint_saysSo() {
        oidc.device = false;

        Result r = run("login", "--issuer", oidc.issuer, "--device");

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("offers no device authorization grant"), r::toString);
    }

    // ---------------------------------------------------------------------------------- client credentials

    @Test
    void loginClientCredentials_secretFile_usesBasicAuth_andCachesNoSecret() throws Exception {
        Path secret = configDir.resolve("svc.secret");
        Files.writeString(secret, "svc-secret\n");

        Result r = run("login", "--issuer", oidc.issuer, "--client-id", "svc", "--client-secret-file", secret.toString());

        assertEquals(0, r.exitCode(), r::toString);
        FakeOidcProvider.Request token = oidc.tokenRequests().get(0);
        assertEquals("client_credentials", token.form().get("grant_type"));
        assertEquals("Basic " + Base64.getEncoder().encodeToString("svc:svc-secret".getBytes(StandardCharsets.UTF_8)),
                token.authorization());
        assertFalse(token.form().containsKey("client_id"));
        String text = Files.readString(cacheFile());
        assertFalse(text.contains("svc-secret"), text);
        assertEquals(secret.toAbsolutePath().toString(), cache().get("client_secret_file").getAsString());
        assertEquals("client_credentials", cache().get("grant").getAsString());
    }

    @Test
    void loginClientCredentials_secretFromEnvironment() {
        platform.env.put("TPMKMS_CLIENT_SECRET", "svc-secret");

        Result r = run("login", "--issuer", oidc.issuer, "--client-id", "svc");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals("client_credentials", oidc.tokenRequests().get(0).form().get("grant_type"));
    }

    @Test
    void loginClientCredentials_wrongSecret_exits5() throws Exception {
        Path secret = configDir.resolve("svc.secret");
        Files.writeString(secret, "wrong\n");

        Result r = run("login", "--issuer", oidc.issuer, "--client-id", "svc", "--client-secret-file", secret.toString());

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("invalid_client"), r::toString);
    }

    // ---------------------------------------------------------------------------------- token use

    @Test
    void afterLogin_callsCarryTheCachedToken() {
        loginAlice();
        expectedAuthorization = "Bearer " + oidc.accessToken(1, "sub-alice", "alice", "tpmkms-cli");

        Result r = run("keys", "get", "ns/k");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(1, calls().size());
        assertEquals(1, oidc.tokenRequests().size(), "a fresh token is not renewed");
    }

    @Test
    void expiredToken_isRefreshedFirst_andTheCacheRewritten() throws Exception {
        loginAlice();
        platform.advance(Duration.ofSeconds(301));
        String renewed = oidc.accessToken(2, "sub-alice", "alice", "tpmkms-cli");
        expectedAuthorization = "Bearer " + renewed;

        Result r = run("keys", "get", "ns/k");

        assertEquals(0, r.exitCode(), r::toString);
        FakeOidcProvider.Request refresh = oidc.tokenRequests().get(1);
        assertEquals("refresh_token", refresh.form().get("grant_type"));
        assertEquals("rt-1", refresh.form().get("refresh_token"));
        assertEquals("tpmkms-cli", refresh.form().get("client_id"));
        assertEquals(renewed, cache().get("access_token").getAsString());
        assertEquals("rt-2", cache().get("refresh_token").getAsString());
        assertEquals(platform.now.plusSeconds(300).toString(), cache().get("expires_at").getAsString());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(cacheFile())));
    }

    @Test
    void tokenWithin30sOfExpiry_isRefreshed_butNot31sBefore() {
        loginAlice();
        platform.advance(Duration.ofSeconds(300 - 31));
        expectedAuthorization = null;

        run("keys", "get", "ns/k");
        assertEquals(1, oidc.tokenRequests().size(), "31 s left: used as is");

        platform.advance(Duration.ofSeconds(2));
        run("keys", "get", "ns/k");
        assertEquals(2, oidc.tokenRequests().size(), "29 s left: refreshed");
        assertEquals("Bearer " + oidc.accessToken(2, "sub-alice", "alice", "tpmkms-cli"), calls().get(1).authorization());
    }

    @Test
    void oneRun_refreshesOnce_forAllItsCalls() {
        loginAlice();
        platform.advance(Duration.ofSeconds(400));
        service.respond(io.tpmkms.proto.key.v1.ListKeysResponse.newBuilder().setNextPageToken("p2").build());
        expectedAuthorization = "Bearer " + oidc.accessToken(2, "sub-alice", "alice", "tpmkms-cli");

        Result r = run("keys", "list", "--all");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(2, calls().size());
        assertEquals(2, oidc.tokenRequests().size(), "login + one refresh");
    }

    @Test
    void refreshRefused_exits5_andSaysToLogIn_withoutCallingTheService() {
        loginAlice();
        platform.advance(Duration.ofSeconds(301));
        oidc.refusesRefresh = true;

        Result r = run("keys", "get", "ns/k");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertTrue(r.stderr().startsWith("error: the session at " + oidc.issuer + " cannot be refreshed"), r::toString);
        assertTrue(r.stderr().endsWith("; run 'tpmkms login'\n"), r::toString);
        assertTrue(calls().isEmpty());
    }

    @Test
    void clientCredentialsToken_isReobtainedWithTheSecretFile_whenExpired() throws Exception {
        Path secret = configDir.resolve("svc.secret");
        Files.writeString(secret, "svc-secret\n");
        run("login", "--issuer", oidc.issuer, "--client-id", "svc", "--client-secret-file", secret.toString());
        platform.advance(Duration.ofSeconds(301));
        expectedAuthorization = "Bearer " + oidc.accessToken(2, "sub-service-account-svc", "service-account-svc", "svc");

        Result r = run("audit", "checkpoints");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals("client_credentials", oidc.tokenRequests().get(1).form().get("grant_type"));
        assertEquals(expectedAuthorization.substring(7), cache().get("access_token").getAsString());
    }

    @Test
    void tokenFromEnvironment_winsOverTheCache_andIsNeverRefreshed() {
        loginAlice();
        platform.advance(Duration.ofDays(1));
        platform.env.put("TPMKMS_TOKEN", "env-token");
        expectedAuthorization = "Bearer env-token";

        Result r = run("keys", "get", "ns/k");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(1, oidc.tokenRequests().size(), "only the login");
        assertEquals("ns/k", service.only(GetKeyRequest.class).getKey());
    }

    @Test
    void noTokenAnywhere_exits5_saysToLogIn_andSendsNothing() {
        Result r = run("keys", "get", "ns/k");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertEquals("error: not logged in (no TPMKMS_TOKEN and no " + cacheFile() + "); run 'tpmkms login'\n", r.stderr());
        assertTrue(calls().isEmpty());
    }

    @Test
    void noToken_andServiceDown_saysNotLoggedIn_first() {
        Result r = runAgainst(platform, new byte[0], "keys", "get", "ns/k", "--address", "127.0.0.1:1");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertTrue(r.stderr().startsWith("error: not logged in"), r::toString);
    }

    @Test
    void serverAnswersUnauthenticated_exits5_andSaysToLogIn() {
        loginAlice();
        expectedAuthorization = null;
        service.fail(Status.Code.UNAUTHENTICATED, "token expired", "TOKEN_INVALID");

        Result r = run("keys", "get", "ns/k");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertEquals("error: token expired (UNAUTHENTICATED, reason TOKEN_INVALID); run 'tpmkms login'\n", r.stderr());
    }

    @Test
    void serverAnswersUnauthenticated_toAnEnvironmentToken_namesTheVariable() {
        platform.env.put("TPMKMS_TOKEN", "stale");
        expectedAuthorization = "Bearer stale";
        policy.fail(Status.Code.UNAUTHENTICATED, "token expired", "TOKEN_INVALID");

        Result r = run("whoami");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertTrue(r.stderr().endsWith("; the token comes from TPMKMS_TOKEN: set a valid one, or unset it and run "
                + "'tpmkms login'\n"), r::toString);
    }

    @Test
    void damagedCache_exits5_andSaysToLogInAgain() throws Exception {
        Files.createDirectories(cacheFile().getParent());
        Files.writeString(cacheFile(), "{not json");

        Result r = run("keys", "get", "ns/k");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("is not a tpmkms credentials file"), r::toString);
        assertTrue(calls().isEmpty());
    }

    // ---------------------------------------------------------------------------------- logout, whoami, token

    @Test
    void logout_revokesTheRefreshToken_andDeletesTheCache() {
        loginAlice();

        Result r = run("logout");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(List.of("rt-1"), oidc.revoked);
        FakeOidcProvider.Request revoke = oidc.requests("/revoke").get(0);
        assertEquals("refresh_token", revoke.form().get("token_type_hint"));
        assertEquals("tpmkms-cli", revoke.form().get("client_id"));
        assertFalse(Files.exists(cacheFile()));
        assertTrue(r.stdout().contains("refresh token revoked"), r::toString);
        assertEquals(ExitCodes.DENIED, run("keys", "get", "ns/k").exitCode());
    }

    @Test
    void logout_providerGone_stillDeletesTheCache() {
        loginAlice();
        oidc.close();

        Result r = run("logout");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("warning: could not revoke the refresh token"), r::toString);
        assertFalse(Files.exists(cacheFile()));
    }

    @Test
    void logout_notLoggedIn_saysSo_exits0() {
        Result r = run("logout");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().startsWith("not logged in"), r::toString);
    }

    @Test
    void whoami_showsThePrincipalThePolicyServiceSees() {
        platform.env.put("TPMKMS_TOKEN", TEST_TOKEN);
        policy.respond(WhoAmIResponse.newBuilder().setPrincipal(Principal.newBuilder()
                .setSubject("f1c2").setUsername("dev-admin").setClientId("tpmkms-cli")
                .addRealmRoles("kms-admin").addRealmRoles("offline_access").addClientRoles("tpmkms/admin")
                .addGroups("/payments").setIssuer("http://127.0.0.1:8180/realms/tpmkms")).build());

        Result r = run("whoami");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals("""
                subject:      f1c2
                username:     dev-admin
                client:       tpmkms-cli
                issuer:       http://127.0.0.1:8180/realms/tpmkms
                realm roles:  kms-admin, offline_access
                client roles: tpmkms/admin
                groups:       /payments
                """, r.stdout());
        assertTrue(service.requests().isEmpty() && audit.requests().isEmpty());
    }

    @Test
    void whoami_json() {
        platform.env.put("TPMKMS_TOKEN", TEST_TOKEN);
        policy.respond(WhoAmIResponse.newBuilder().setPrincipal(Principal.newBuilder().setSubject("f1c2")).build());

        Result r = run("whoami", "--json");

        assertEquals(0, r.exitCode(), r::toString);
        JsonObject o = JsonParser.parseString(r.stdout()).getAsJsonObject();
        assertEquals("f1c2", o.getAsJsonObject("principal").get("subject").getAsString());
    }

    @Test
    void tokenPrint_printsTheTokenCallsWouldCarry_refreshedIfNeeded() {
        loginAlice();
        platform.advance(Duration.ofSeconds(290));

        Result r = run("token", "print");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(oidc.accessToken(2, "sub-alice", "alice", "tpmkms-cli") + "\n", r.stdout());
    }

    @Test
    void loginJson_describesTheLogin_withoutTokens() {
        Result r = runWithStdin("alice-password\n".getBytes(StandardCharsets.UTF_8),
                "login", "--issuer", oidc.issuer, "--username", "alice", "--password-stdin", "--json");

        assertEquals(0, r.exitCode(), r::toString);
        JsonObject o = JsonParser.parseString(r.stdout()).getAsJsonObject();
        assertEquals("alice", o.get("username").getAsString());
        assertEquals("sub-alice", o.get("subject").getAsString());
        assertEquals(Instant.parse("2030-01-24T12:05:00Z").toString(), o.get("expiresAt").getAsString());
        assertFalse(r.stdout().contains("at-1"), r::toString);
    }
}
