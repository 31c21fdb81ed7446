package io.tpmkms.policy.api;

import static io.tpmkms.testing.GrpcClient.assertFailure;
import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.MetadataUtils;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.tpmkms.policy.testing.PolicyClient;
import io.tpmkms.policy.testing.KeycloakResource;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.policy.v1.*;
import io.tpmkms.devtools.Keycloak;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The policy service with authentication on, against a real Keycloak and the
 * tpmkms realm: callers are who their tokens say, and the bootstrap bindings
 * decide what they may do.
 */
@QuarkusTest
@TestProfile(OidcCallerTest.Oidc.class)
class OidcCallerTest {
  /** Authentication on; Keycloak and PostgreSQL started for this profile only. */
  public static class Oidc implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
      return Map.of("tpmkms.auth.mode", "oidc", "quarkus.oidc.tenant-enabled", "true");
    }

    @Override
    public List<TestResourceEntry> testResources() {
      return List.of(new TestResourceEntry(PostgresResource.class), new TestResourceEntry(KeycloakResource.class));
    }
  }

  PolicyClient client;

  @BeforeEach
  void connect() { client = new PolicyClient(); }

  @AfterEach
  void disconnect() { client.close(); }

  private PolicyServiceGrpc.PolicyServiceBlockingStub withToken(String token) {
    Metadata m = new Metadata();
    m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
    return client.policies().withInterceptors(MetadataUtils.newAttachHeadersInterceptor(m));
  }

  private static String password(String user) throws Exception {
    return KeycloakResource.current().passwordGrant("tpmkms", "tpmkms-cli", null, user, user).accessToken();
  }

  private static final String TEXT = "forbid(principal in Tpmkms::Group::\"/contractors\", "
      + "action == Tpmkms::Action::\"ExportKeyVersion\", resource);";

  @Test
  void devAdmin_mayCreatePolicy_asItself() throws Exception {
    PolicyServiceGrpc.PolicyServiceBlockingStub admin = withToken(password("dev-admin"));
    WhoAmIResponse me = admin.whoAmI(WhoAmIRequest.getDefaultInstance());
    assertEquals("dev-admin", me.getPrincipal().getUsername());
    assertTrue(me.getPrincipal().getRealmRolesList().contains("tpmkms-admin"));
    Policy p = admin.createPolicy(CreatePolicyRequest.newBuilder().setId("no-export-contractors").setText(TEXT).build());
    assertEquals(me.getPrincipal().getSubject(), p.getCreatedBy());
  }

  @Test
  void devUser_mayNotCreatePolicy() throws Exception {
    PolicyServiceGrpc.PolicyServiceBlockingStub user = withToken(password("dev-user"));
    var e = assertFailure(Status.Code.PERMISSION_DENIED, "PERMISSION_DENIED", () -> user.createPolicy(
        CreatePolicyRequest.newBuilder().setId("by-dev-user").setText(TEXT).build()));
    assertTrue(e.getStatus().getDescription().contains("CreatePolicy"), e.getStatus().getDescription());
    assertEquals(List.of("/payments"), user.whoAmI(WhoAmIRequest.getDefaultInstance()).getPrincipal().getGroupsList());
  }

  @Test
  void keyServiceAccount_mayAuthorize() throws Exception {
    Keycloak.Tokens t = KeycloakResource.current().clientCredentials("tpmkms", "tpmkms-key-service",
        "dev-only-key-service-secret");
    PolicyServiceGrpc.PolicyServiceBlockingStub keyService = withToken(t.accessToken());
    // the principal asked about is dev-user as the key service saw it from dev-user's token
    Principal devUser = withToken(password("dev-user")).whoAmI(WhoAmIRequest.getDefaultInstance()).getPrincipal();
    AuthorizeResponse allowed = keyService.authorize(AuthorizeRequest.newBuilder().setPrincipal(devUser)
        .setAction("Encrypt").setResource(Resource.newBuilder().setNamespace("payments").setKeyName("cards")).build());
    assertEquals(Decision.ALLOW, allowed.getDecision());
    assertEquals("role user on the deployment for realm role tpmkms-user", allowed.getReasons(0).getDescription());
    AuthorizeResponse denied = keyService.authorize(AuthorizeRequest.newBuilder().setPrincipal(devUser)
        .setAction("CreateKey").setResource(Resource.newBuilder().setNamespace("payments").setKeyName("cards")).build());
    assertEquals(Decision.DENY, denied.getDecision());
    // the key service's own token is no admin
    assertStatus(Status.Code.PERMISSION_DENIED, "PERMISSION_DENIED", () -> keyService.listPolicies(
        ListPoliciesRequest.getDefaultInstance()));
  }

  @Test
  void noOrBadToken_unauthenticated() {
    var e = org.junit.jupiter.api.Assertions.assertThrows(io.grpc.StatusRuntimeException.class,
        () -> client.policies().whoAmI(WhoAmIRequest.getDefaultInstance()));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    var bad = org.junit.jupiter.api.Assertions.assertThrows(io.grpc.StatusRuntimeException.class,
        () -> withToken("not.a.token").authorize(AuthorizeRequest.getDefaultInstance()));
    assertEquals(Status.Code.UNAUTHENTICATED, bad.getStatus().getCode());
  }

  /**
   * Issue 11: a real Keycloak token of a user in 150 groups (about 20 KB) passed gRPC's 8 KiB header
   * limit: UNKNOWN (HTTP 431) or INTERNAL (RST_STREAM) before any service code ran. Now it authenticates;
   * a garbage token of that size gets the normal TOKEN_INVALID; one above the documented 64 KiB limit
   * gets TOKEN_TOO_LARGE.
   */
  @Test
  void largeTokens_normalOutcome_orTokenTooLarge() throws Exception {
    Keycloak kc = KeycloakResource.current();
    List<String> groups = new java.util.ArrayList<>();
    for (int i = 0; i < 150; i++) {
      String path = "/large-token-group-with-a-rather-long-descriptive-name-like-real-directories-have-" + i;
      kc.createGroup("tpmkms", path);
      groups.add(path);
    }
    kc.createUser("tpmkms", "many-groups", "many-groups", List.of("tpmkms-viewer"), groups);
    String token = password("many-groups");
    assertTrue(token.length() > 16 * 1024, "token of " + token.length() + " characters");
    WhoAmIResponse me = withToken(token).whoAmI(WhoAmIRequest.getDefaultInstance());
    assertEquals(150, me.getPrincipal().getGroupsCount());
    assertStatus(Status.Code.UNAUTHENTICATED, "TOKEN_INVALID",
        () -> withToken("x".repeat(20_000)).whoAmI(WhoAmIRequest.getDefaultInstance()));
    assertStatus(Status.Code.UNAUTHENTICATED, "TOKEN_TOO_LARGE",
        () -> withToken("x".repeat(70_000)).whoAmI(WhoAmIRequest.getDefaultInstance()));
  }
}
