package io.tpmkms.platform.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.smallrye.jwt.auth.principal.DefaultJWTCallerPrincipal;
import java.util.List;
import org.jose4j.jwt.JwtClaims;
import org.junit.jupiter.api.Test;

/**
 * The mapping from a verified Keycloak access token's claims to the
 * {@link Principal} the policy service decides on (claims shaped as Keycloak
 * 26 issues them; the real-token path is covered by AuthorizationIT).
 */
class PrincipalOfTokenTest {

  @Test
  void keycloakClaims_becomeSubjectClientRolesAndGroups() throws Exception {
    JwtClaims c = JwtClaims.parse("""
        {"sub":"7c1e","preferred_username":"alice","azp":"tpmkms-cli",
         "iss":"http://127.0.0.1:8180/realms/tpmkms","exp":4102444800,
         "realm_access":{"roles":["tpmkms-user","offline_access"]},
         "resource_access":{"tpmkms-policy-service":{"roles":["authorizer"]},"account":{"roles":["view-profile"]}},
         "groups":["/payments","/payments/eu"]}""");
    Principal p = BearerTokenInterceptor.principalOf(new DefaultJWTCallerPrincipal(c));
    assertEquals("7c1e", p.subject());
    assertEquals("alice", p.username());
    assertEquals("tpmkms-cli", p.clientId());
    assertEquals("http://127.0.0.1:8180/realms/tpmkms", p.issuer());
    assertEquals(List.of("tpmkms-user", "offline_access"), p.realmRoles());
    assertTrue(p.clientRoles().contains("tpmkms-policy-service/authorizer"), p.clientRoles().toString());
    assertTrue(p.clientRoles().contains("account/view-profile"), p.clientRoles().toString());
    assertEquals(List.of("/payments", "/payments/eu"), p.groups());
    assertEquals("7c1e (alice)", p.auditName());
  }

  @Test
  void missingOptionalClaims_meanNone_andNoSubjectIsRefused() throws Exception {
    // Keycloak leaves "groups" out entirely for a user in no group, and service accounts have no username.
    Principal p = BearerTokenInterceptor.principalOf(new DefaultJWTCallerPrincipal(JwtClaims.parse(
        "{\"sub\":\"svc\",\"azp\":\"tpmkms-key-service\",\"iss\":\"i\",\"exp\":4102444800}")));
    assertEquals(List.of(), p.groups());
    assertEquals(List.of(), p.realmRoles());
    assertEquals(List.of(), p.clientRoles());
    assertEquals("", p.username());
    assertFalse(p.anonymous());
    assertThrows(IllegalArgumentException.class, () -> BearerTokenInterceptor.principalOf(
        new DefaultJWTCallerPrincipal(JwtClaims.parse("{\"azp\":\"x\",\"exp\":4102444800}"))));
  }

  @Test
  void authenticationOff_onlyOnLoopback() {
    assertTrue(BearerTokenInterceptor.loopback("127.0.0.1"));
    assertTrue(BearerTokenInterceptor.loopback("localhost"));
    assertTrue(BearerTokenInterceptor.loopback("::1"));
    assertFalse(BearerTokenInterceptor.loopback("0.0.0.0"));
  }
}
