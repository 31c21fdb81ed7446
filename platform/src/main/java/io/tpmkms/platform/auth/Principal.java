package io.tpmkms.platform.auth;

import java.util.List;

/**
 * Who is calling, as read from a verified Keycloak access token: the
 * subject, the OAuth client the token was issued to, realm and client roles
 * and group paths. {@link #ANONYMOUS} only when authentication is switched
 * off ({@code tpmkms.auth.mode=none}, loopback only).
 *
 * @param subject     token "sub"
 * @param username    "preferred_username", informational only
 * @param clientId    "azp"
 * @param realmRoles  realm_access.roles
 * @param clientRoles resource_access roles as "client/role"
 * @param groups      group paths ("/payments/oncall")
 * @param issuer      "iss"
 */
public record Principal(String subject, String username, String clientId, List<String> realmRoles,
    List<String> clientRoles, List<String> groups, String issuer) {

  public static final Principal ANONYMOUS =
      new Principal("anonymous", "anonymous", "", List.of(), List.of(), List.of(), "");

  public Principal {
    realmRoles = List.copyOf(realmRoles);
    clientRoles = List.copyOf(clientRoles);
    groups = List.copyOf(groups);
  }

  public boolean anonymous() {
    return this == ANONYMOUS || "anonymous".equals(subject) && issuer.isEmpty();
  }

  public boolean hasClientRole(String client, String role) {
    return clientRoles.contains(client + "/" + role);
  }

  /** The form written into audit records: "subject (username)". */
  public String auditName() {
    return username.isEmpty() || username.equals(subject) ? subject : subject + " (" + username + ")";
  }

  public io.tpmkms.proto.policy.v1.Principal toProto() {
    return io.tpmkms.proto.policy.v1.Principal.newBuilder()
        .setSubject(subject).setUsername(username).setClientId(clientId)
        .addAllRealmRoles(realmRoles).addAllClientRoles(clientRoles).addAllGroups(groups)
        .setIssuer(issuer).build();
  }

  public static Principal fromProto(io.tpmkms.proto.policy.v1.Principal p) {
    return new Principal(p.getSubject(), p.getUsername(), p.getClientId(), p.getRealmRolesList(),
        p.getClientRolesList(), p.getGroupsList(), p.getIssuer());
  }
}
