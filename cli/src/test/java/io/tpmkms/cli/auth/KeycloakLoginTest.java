package io.tpmkms.cli.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.devtools.Keycloak;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Base64;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code tpmkms login} against a real Keycloak (dev-tools' launcher, the distribution zip)
 * with the versioned realm {@code deploy/keycloak/tpmkms-realm.json}: the password grant of the
 * public client {@code tpmkms-cli}, the claims of the cached token, renewal with the refresh token,
 * and logout's revocation. The token then goes to the fake gRPC services, whose recorder checks
 * it is what every call carries.
 *
 * <p>Skipped only when the Keycloak distribution is not in the local Maven repository (a build of
 * dev-tools fetches it); a Keycloak that is there but fails is a failure.
 */
class KeycloakLoginTest extends CliHarness {

    static final Path REALM = Path.of("..", "deploy", "keycloak", "tpmkms-realm.json");

    Keycloak kc;
    String issuer;
    Path instance;

    @BeforeAll
    void startKeycloak() throws Exception {
        Assumptions.assumeTrue(Files.isRegularFile(Keycloak.distributionZip())
                        || Files.isRegularFile(Keycloak.cacheDir().resolve("keycloak-" + Keycloak.VERSION + "/bin/kc.sh")),
                "no Keycloak distribution at " + Keycloak.distributionZip());
        instance = Files.createTempDirectory("tpmkms-cli-keycloak");
        kc = Keycloak.start(instance);
        kc.importRealm(REALM);
        issuer = kc.issuer("tpmkms");
    }

    @AfterAll
    void stopKeycloak() {
        if (kc != null) {
            kc.close();
        }
    }

    @BeforeEach
    void noEnvironmentToken() {
        platform.env.remove("TPMKMS_TOKEN");
    }

    Path cacheFile() {
        return configDir.resolve("config").resolve("credentials.json");
    }

    JsonObject cache() throws Exception {
        return JsonParser.parseString(Files.readString(cacheFile())).getAsJsonObject();
    }

    static JsonObject claims(String jwt) {
        return JsonParser.parseString(new String(Base64.getUrlDecoder().decode(jwt.split("\\.")[1]),
                StandardCharsets.UTF_8)).getAsJsonObject();
    }

    Result login(String user, String password) {
        return runWithStdin((password + "\n").getBytes(StandardCharsets.UTF_8),
                "login", "--issuer", issuer, "--username", user, "--password-stdin");
    }

    @Test
    void passwordLogin_cachesATokenOfTheRealmForTheCliClient_thatCallsCarry() throws Exception {
        Result r = login("dev-user", "dev-user");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("as dev-user (client tpmkms-cli)"), r::toString);
        JsonObject c = cache();
        assertEquals(issuer, c.get("issuer").getAsString());
        assertEquals("password", c.get("grant").getAsString());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(cacheFile())));
        String access = c.get("access_token").getAsString();
        JsonObject claims = claims(access);
        assertEquals(issuer, claims.get("iss").getAsString());
        assertEquals("tpmkms-cli", claims.get("azp").getAsString());
        assertEquals("dev-user", claims.get("preferred_username").getAsString());
        assertTrue(c.has("refresh_token"), "the password grant of tpmkms-cli issues a refresh token");
        assertTrue(c.has("revocation_endpoint"), "Keycloak announces its revocation endpoint");

        expectedAuthorization = "Bearer " + access;
        Result call = run("keys", "get", "ns/k");
        assertEquals(0, call.exitCode(), call::toString);
        assertEquals(1, calls().size());
    }

    @Test
    void expiredToken_isRenewedByKeycloak() throws Exception {
        assertEquals(0, login("dev-admin", "dev-admin").exitCode());
        String first = cache().get("access_token").getAsString();
        platform.advance(Duration.ofSeconds(claims(first).get("exp").getAsLong() - claims(first).get("iat").getAsLong()));

        Result r = run("token", "print");

        assertEquals(0, r.exitCode(), r::toString);
        String renewed = cache().get("access_token").getAsString();
        assertNotEquals(first, renewed);
        assertEquals(renewed + "\n", r.stdout());
        assertEquals("dev-admin", claims(renewed).get("preferred_username").getAsString());
        assertEquals("tpmkms-cli", claims(renewed).get("azp").getAsString());
    }

    @Test
    void wrongPassword_isRefusedByKeycloak_exit5() {
        Result r = login("dev-user", "not-the-password");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("invalid_grant"), r::toString);
        assertTrue(Files.notExists(cacheFile()));
    }

    @Test
    void logout_revokesTheRefreshTokenAtKeycloak() throws Exception {
        assertEquals(0, login("dev-user", "dev-user").exitCode());
        String saved = Files.readString(cacheFile());

        Result out = run("logout");
        assertEquals(0, out.exitCode(), out::toString);
        assertTrue(out.stdout().contains("refresh token revoked"), out::toString);

        // A copy of the cache made before logout is worthless once its access token expires.
        Files.writeString(cacheFile(), saved);
        platform.advance(Duration.ofSeconds(301)); // past the access token, within the session
        Result r = run("token", "print");
        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("cannot be refreshed") && r.stderr().endsWith("run 'tpmkms login'\n"), r::toString);
    }
}
