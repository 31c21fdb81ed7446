package io.tpmkms.devtools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jboss.logging.Logger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real Keycloak from the distribution zip with the versioned tpmkms realm: the claims every tpmkms service
 * relies on (audiences, roles, groups, issuer) are asserted on decoded tokens, so a realm change that drops
 * one fails here rather than in a service.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class KeycloakTest {
  private static final Logger LOG = Logger.getLogger(KeycloakTest.class);
  private static final Path REALM = Path.of("..", "deploy", "keycloak", "tpmkms-realm.json");
  private static final String R = "tpmkms";
  private static final String KEY = "tpmkms-key-service";
  private static final String POLICY = "tpmkms-policy-service";
  private static final String AUDIT = "tpmkms-audit-service";

  @TempDir
  static Path dir;
  static Keycloak kc;

  @BeforeAll
  static void start() throws Exception {
    long t0 = System.nanoTime();
    kc = Keycloak.start(dir.resolve("kc"));
    LOG.infof("Keycloak start (fresh instance dir): %d ms", (System.nanoTime() - t0) / 1_000_000);
    t0 = System.nanoTime();
    assertTrue(kc.importRealm(REALM), "fresh instance: the realm is imported");
    LOG.infof("realm import: %d ms", (System.nanoTime() - t0) / 1_000_000);
  }

  @AfterAll
  static void stop() {
    if (kc != null) kc.close();
  }

  @Test
  @Order(1)
  void pomFetchesTheVersionTheLauncherRuns() {
    String fromPom = System.getProperty("tpmkms.keycloak.version");
    if (fromPom != null) assertEquals(fromPom, Keycloak.VERSION, "dev-tools/pom.xml keycloak.version");
  }

  @Test
  @Order(2)
  void devAdminThroughTheCliHasTheServiceAudiencesAndAdminRoles() throws Exception {
    Keycloak.Tokens t = kc.passwordGrant(R, "tpmkms-cli", null, "dev-admin", "dev-admin");
    assertTrue(t.expiresInSeconds() > 290 && t.expiresInSeconds() <= 300, "expires_in " + t.expiresInSeconds());
    JsonNode c = Keycloak.claims(t.accessToken());
    assertEquals(kc.issuer(R), c.path("iss").asText());
    assertEquals("http://127.0.0.1:" + kc.port() + "/realms/tpmkms", c.path("iss").asText());
    assertTrue(aud(c).containsAll(Set.of(KEY, POLICY, AUDIT)), "aud: " + aud(c));
    assertEquals("tpmkms-cli", c.path("azp").asText());
    assertEquals("dev-admin", c.path("preferred_username").asText());
    assertFalse(c.path("sub").asText().isEmpty(), "sub");
    List<String> roles = strings(c.path("realm_access").path("roles"));
    assertTrue(roles.containsAll(List.of("tpmkms-admin", "tpmkms-auditor")), "roles: " + roles);
    assertFalse(roles.contains("tpmkms-user"), "roles: " + roles);
    // Keycloak omits an empty groups claim: services treat a missing one as no groups
    assertEquals(List.of(), strings(c.path("groups")), "dev-admin is in no group");
    assertEquals(300, c.path("exp").asLong() - c.path("iat").asLong());
    assertTrue(t.refreshToken() != null);
    assertFalse(t.toString().contains(t.accessToken()), "Tokens.toString() hides the token");
  }

  @Test
  @Order(3)
  void devUserIsInPaymentsWithTheUserRole() throws Exception {
    JsonNode c = Keycloak.claims(kc.passwordGrant(R, "tpmkms-cli", null, "dev-user", "dev-user").accessToken());
    assertEquals(List.of("/payments"), strings(c.path("groups")));
    List<String> roles = strings(c.path("realm_access").path("roles"));
    assertTrue(roles.contains("tpmkms-user"), "roles: " + roles);
    assertFalse(roles.contains("tpmkms-admin"), "roles: " + roles);
    assertTrue(aud(c).containsAll(Set.of(KEY, POLICY, AUDIT)), "aud: " + aud(c));
  }

  @Test
  @Order(4)
  void keyServiceAccountIsAnAuthorizerAndAppender() throws Exception {
    Keycloak.Tokens t = kc.clientCredentials(R, KEY, "dev-only-key-service-secret");
    JsonNode c = Keycloak.claims(t.accessToken());
    assertEquals(KEY, c.path("azp").asText());
    assertEquals("service-account-tpmkms-key-service", c.path("preferred_username").asText());
    assertTrue(aud(c).containsAll(Set.of(POLICY, AUDIT)), "aud: " + aud(c));
    assertEquals(List.of("authorizer"), strings(c.path("resource_access").path(POLICY).path("roles")));
    assertEquals(List.of("appender"), strings(c.path("resource_access").path(AUDIT).path("roles")));
    assertNull(t.refreshToken(), "client credentials: no refresh token");
  }

  @Test
  @Order(5)
  void policyServiceAccountAppendsButDoesNotAuthorize() throws Exception {
    JsonNode c = Keycloak.claims(kc.clientCredentials(R, POLICY, "dev-only-policy-service-secret").accessToken());
    assertTrue(aud(c).contains(AUDIT), "aud: " + aud(c));
    assertFalse(aud(c).contains(KEY), "aud: " + aud(c));
    assertEquals(List.of("appender"), strings(c.path("resource_access").path(AUDIT).path("roles")));
    assertTrue(c.path("resource_access").path(POLICY).path("roles").isMissingNode(), "claims: " + c);
  }

  @Test
  @Order(6)
  void adminCliTokensLackTheServiceAudiences() throws Exception {
    JsonNode c = Keycloak.claims(kc.passwordGrant(R, "admin-cli", null, "dev-admin", "dev-admin").accessToken());
    assertEquals("admin-cli", c.path("azp").asText());
    assertFalse(aud(c).contains(KEY), "aud: " + aud(c));
    assertFalse(aud(c).contains(POLICY), "aud: " + aud(c));
  }

  @Test
  @Order(7)
  void wrongPasswordAndWrongSecretAreRefusedClearly() {
    Keycloak.KeycloakException e = assertThrows(Keycloak.KeycloakException.class,
        () -> kc.passwordGrant(R, "tpmkms-cli", null, "dev-admin", "not-the-password-42"));
    assertEquals(400, e.status(), e.getMessage());
    assertEquals("invalid_grant", e.error());
    assertTrue(e.getMessage().contains("invalid_grant") && e.getMessage().contains("tpmkms-cli"), e.getMessage());
    assertFalse(e.getMessage().contains("not-the-password-42"), "no password in the message");

    Keycloak.KeycloakException s = assertThrows(Keycloak.KeycloakException.class,
        () -> kc.clientCredentials(R, KEY, "wrong-secret-43"));
    assertEquals(401, s.status(), s.getMessage());
    assertEquals("unauthorized_client", s.error(), s.getMessage());
    assertFalse(s.getMessage().contains("wrong-secret-43"), "no secret in the message");
  }

  @Test
  @Order(8)
  void clientsAreConfiguredAsTheServicesExpect() throws Exception {
    JsonNode cli = client("tpmkms-cli");
    assertTrue(cli.path("publicClient").asBoolean());
    assertTrue(cli.path("directAccessGrantsEnabled").asBoolean());
    assertFalse(cli.path("standardFlowEnabled").asBoolean());
    assertEquals("true", cli.path("attributes").path("oauth2.device.authorization.grant.enabled").asText());
    JsonNode console = client("tpmkms-console");
    assertTrue(console.path("publicClient").asBoolean());
    assertTrue(console.path("standardFlowEnabled").asBoolean());
    assertEquals("S256", console.path("attributes").path("pkce.code.challenge.method").asText());
    // Keycloak has no port wildcard: the console's default address, and any port on the loopback IP
    // (RFC 8252 §7.3 loopback redirects; the browser tests run the console on a free port)
    assertEquals(Set.of("http://127.0.0.1/*", "http://127.0.0.1:8095/*", "http://localhost:8095/*"),
        Set.copyOf(strings(console.path("redirectUris"))));
    assertFalse(client(AUDIT).path("publicClient").asBoolean());
    // the audit service asks the policy service who may read the trail (ADR 0023): an authorizer, appends nothing
    assertTrue(client(AUDIT).path("serviceAccountsEnabled").asBoolean());
    JsonNode a = Keycloak.claims(kc.clientCredentials(R, AUDIT, "dev-only-audit-service-secret").accessToken());
    assertEquals(AUDIT, a.path("azp").asText());
    assertTrue(aud(a).contains(POLICY), "aud: " + aud(a));
    assertFalse(aud(a).contains(KEY), "aud: " + aud(a));
    assertEquals(List.of("authorizer"), strings(a.path("resource_access").path(POLICY).path("roles")));
    assertTrue(a.path("resource_access").path(AUDIT).path("roles").isMissingNode(), "claims: " + a);

    // the device authorization grant answers for the CLI (a disabled grant is refused with 401/400)
    HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
            URI.create(kc.issuer(R) + "/protocol/openid-connect/auth/device"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .POST(HttpRequest.BodyPublishers.ofString("client_id=tpmkms-cli")).build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode(), "device authorization for tpmkms-cli");
    JsonNode device = new ObjectMapper().readTree(r.body());
    assertTrue(device.hasNonNull("device_code") && device.hasNonNull("user_code"), "device response fields");
  }

  @Test
  @Order(9)
  void createdUsersGroupsAndClientsIssueTheExpectedClaims() throws Exception {
    String groupId = kc.createGroup(R, "/payments/eu");
    assertEquals(groupId, kc.createGroup(R, "/payments/eu"), "createGroup is idempotent");
    String sub = kc.createUser(R, "alice", "alice-pw-1", List.of("tpmkms-viewer", "tpmkms-duplicator"),
        List.of("/payments/eu", "/platform"));
    JsonNode c = Keycloak.claims(kc.passwordGrant(R, "tpmkms-cli", null, "alice", "alice-pw-1").accessToken());
    assertEquals(sub, c.path("sub").asText());
    assertEquals(Set.of("/payments/eu", "/platform"), Set.copyOf(strings(c.path("groups"))));
    assertTrue(strings(c.path("realm_access").path("roles")).containsAll(List.of("tpmkms-viewer", "tpmkms-duplicator")));

    kc.createClient(R, Map.of("clientId", "batch-job", "publicClient", false, "secret", "batch-secret",
        "serviceAccountsEnabled", true, "standardFlowEnabled", false));
    JsonNode b = Keycloak.claims(kc.clientCredentials(R, "batch-job", "batch-secret").accessToken());
    assertEquals("batch-job", b.path("azp").asText());
    assertFalse(aud(b).contains(KEY), "a new client has none of our audiences: " + aud(b));

    JsonNode users = kc.adminGet("/realms/tpmkms/users?username=alice&exact=true");
    assertEquals(sub, users.get(0).path("id").asText());
  }

  @Test
  @Order(10)
  void theRealmUnderAnotherNameIsAnotherIssuer() throws Exception {
    assertFalse(kc.importRealm(REALM), "an existing realm is skipped, not replaced");
    assertTrue(kc.importRealm(REALM, "tpmkms-other"));
    assertFalse(kc.importRealm(REALM, "tpmkms-other"));
    JsonNode mine = Keycloak.claims(kc.passwordGrant(R, "tpmkms-cli", null, "dev-admin", "dev-admin").accessToken());
    JsonNode other = Keycloak.claims(
        kc.passwordGrant("tpmkms-other", "tpmkms-cli", null, "dev-admin", "dev-admin").accessToken());
    assertEquals(kc.issuer("tpmkms-other"), other.path("iss").asText());
    assertNotEquals(mine.path("iss").asText(), other.path("iss").asText());
    assertNotEquals(mine.path("sub").asText(), other.path("sub").asText(), "different users, different subs");
    assertTrue(aud(other).contains(KEY), "same clients, same audiences: " + aud(other));
    assertEquals(List.of("/payments"),
        strings(Keycloak.claims(kc.passwordGrant("tpmkms-other", "tpmkms-cli", null, "dev-user", "dev-user")
            .accessToken()).path("groups")));
    kc.deleteRealm("tpmkms-other");
    assertFalse(kc.realmExists("tpmkms-other"));
  }

  /** The run script's case: the same instance dir again keeps realm, users and the admin password. */
  @Test
  @Order(11)
  void aRestartOnTheSameInstanceDirKeepsTheRealm() throws Exception {
    kc.close();
    assertFalse(kc.isAlive());
    long t0 = System.nanoTime();
    kc = Keycloak.start(dir.resolve("kc"), kc.port(), kc.managementPort());
    LOG.infof("Keycloak warm start (existing instance dir): %d ms", (System.nanoTime() - t0) / 1_000_000);
    assertFalse(kc.importRealm(REALM), "kept");
    assertEquals("alice", Keycloak.claims(kc.passwordGrant(R, "tpmkms-cli", null, "alice", "alice-pw-1")
        .accessToken()).path("preferred_username").asText());
    assertTrue(Files.size(kc.log()) > 0);
    assertFalse(Files.readString(kc.log()).contains(Files.readString(dir.resolve("kc/admin-password")).trim()),
        "the bootstrap admin password is not in the log");
  }

  private static JsonNode client(String clientId) throws Exception {
    JsonNode list = kc.adminGet("/realms/tpmkms/clients?clientId=" + clientId);
    assertEquals(1, list.size(), clientId);
    return list.get(0);
  }

  /** {@code aud} is a string for one audience and an array for several. */
  private static Set<String> aud(JsonNode claims) {
    JsonNode a = claims.path("aud");
    return a.isTextual() ? Set.of(a.asText()) : Set.copyOf(strings(a));
  }

  private static List<String> strings(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }
}
