package io.tpmkms.policy.api;

import static io.tpmkms.testing.GrpcClient.assertFailure;
import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agroal.api.AgroalDataSource;
import io.grpc.Status;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.policy.testing.PolicyClient;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.policy.v1.*;
import io.tpmkms.platform.auth.Principal;
import jakarta.inject.Inject;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Each RPC through the real server on a real PostgreSQL: versions, locking,
 * bindings, decisions, caller authorization, audit rows, bad input — with
 * exact status codes and reasons.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
class PolicyServiceRpcTest {
  private static final AtomicInteger SEQ = new AtomicInteger();

  @Inject AgroalDataSource db;
  PolicyClient client;

  @BeforeEach
  void connect() { client = new PolicyClient(); }

  @AfterEach
  void disconnect() { client.close(); }

  private PolicyServiceGrpc.PolicyServiceBlockingStub svc() { return client.policies(); }

  static String unique(String prefix) { return prefix + "-" + SEQ.incrementAndGet(); }

  static Principal person(String subject, List<String> groups, List<String> realmRoles) {
    return new Principal(subject, subject, "tpmkms-cli", realmRoles, List.of(), groups, "https://kc/realms/tpmkms");
  }

  static Resource key(String ns, String name) { return Resource.newBuilder().setNamespace(ns).setKeyName(name).build(); }

  static Resource ns(String ns) { return Resource.newBuilder().setNamespace(ns).build(); }

  static AuthorizeRequest ask(Principal p, String action, Resource r) {
    return AuthorizeRequest.newBuilder().setPrincipal(p.toProto()).setAction(action).setResource(r).build();
  }

  /** A valid policy that matters to no test's decisions (nobody is in that group). */
  static final String FORBID_DECRYPT = "forbid(principal in Tpmkms::Group::\"/nobody-in-these-tests\", "
      + "action == Tpmkms::Action::\"Decrypt\", resource);";

  // ---- policies: versions ----------------------------------------------------------------------

  @Test
  void policy_updatedTwiceThenDeleted_everyVersionReadable() {
    String id = unique("versions");
    Policy v1 = svc().createPolicy(CreatePolicyRequest.newBuilder().setId(id).setDescription("first")
        .setText(FORBID_DECRYPT).build());
    assertEquals(1, v1.getVersion());
    assertEquals("anonymous", v1.getCreatedBy());
    String t2 = FORBID_DECRYPT.replace("Decrypt", "Encrypt");
    Policy v2 = svc().updatePolicy(UpdatePolicyRequest.newBuilder().setId(id).setDescription("second").setText(t2)
        .setExpectedVersion(1).build());
    Policy v3 = svc().updatePolicy(UpdatePolicyRequest.newBuilder().setId(id).setDescription("third")
        .setText(FORBID_DECRYPT.replace("Decrypt", "Sign")).setExpectedVersion(2).build());
    assertEquals(List.of(2L, 3L), List.of(v2.getVersion(), v3.getVersion()));
    Policy deleted = svc().deletePolicy(DeletePolicyRequest.newBuilder().setId(id).setExpectedVersion(3).build());
    assertEquals(4, deleted.getVersion());
    assertTrue(deleted.getDeleted());

    assertEquals(v1, svc().getPolicy(GetPolicyRequest.newBuilder().setId(id).setVersion(1).build()));
    assertEquals(t2, svc().getPolicy(GetPolicyRequest.newBuilder().setId(id).setVersion(2).build()).getText());
    assertEquals(v3, svc().getPolicy(GetPolicyRequest.newBuilder().setId(id).setVersion(3).build()));
    assertEquals(deleted, svc().getPolicy(GetPolicyRequest.newBuilder().setId(id).build()));
    List<Policy> versions = svc().listPolicyVersions(ListPolicyVersionsRequest.newBuilder().setId(id).build())
        .getVersionsList();
    assertEquals(List.of(v1, v2, v3, deleted), versions);
    // paging through versions, two at a time
    ListPolicyVersionsResponse page1 = svc().listPolicyVersions(ListPolicyVersionsRequest.newBuilder().setId(id)
        .setPageSize(2).build());
    ListPolicyVersionsResponse page2 = svc().listPolicyVersions(ListPolicyVersionsRequest.newBuilder().setId(id)
        .setPageSize(2).setPageToken(page1.getNextPageToken()).build());
    assertEquals(List.of(v3, deleted), page2.getVersionsList());
    // issue 11: a token is bound to its policy id, and a hand-made cursor (the old format) is refused
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", () -> svc().listPolicyVersions(
        ListPolicyVersionsRequest.newBuilder().setId(id + "x").setPageToken(page1.getNextPageToken()).build()));
    String handMade = java.util.Base64.getUrlEncoder().withoutPadding().encodeToString("2".getBytes());
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", () -> svc().listPolicyVersions(
        ListPolicyVersionsRequest.newBuilder().setId(id).setPageToken(handMade).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", () -> svc().listRoleBindings(
        ListRoleBindingsRequest.newBuilder().setPageToken(page1.getNextPageToken()).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_CHARACTER", () -> svc().getPolicy(
        GetPolicyRequest.newBuilder().setId("a\0b").build()));

    assertFalse(svc().listPolicies(ListPoliciesRequest.newBuilder().setPageSize(1000).build()).getPoliciesList()
        .stream().anyMatch(p -> p.getId().equals(id)));
    assertTrue(svc().listPolicies(ListPoliciesRequest.newBuilder().setIncludeDeleted(true).setPageSize(1000).build())
        .getPoliciesList().contains(deleted));
    assertStatus(Status.Code.NOT_FOUND, "POLICY_VERSION_NOT_FOUND",
        () -> svc().getPolicy(GetPolicyRequest.newBuilder().setId(id).setVersion(5).build()));
    assertStatus(Status.Code.NOT_FOUND, "POLICY_NOT_FOUND", () -> svc().updatePolicy(UpdatePolicyRequest.newBuilder()
        .setId(id).setText(FORBID_DECRYPT).build()));
    // re-created: the next version of the same history
    assertEquals(5, svc().createPolicy(CreatePolicyRequest.newBuilder().setId(id).setText(FORBID_DECRYPT).build())
        .getVersion());
  }

  @Test
  void updatePolicy_staleExpectedVersion_abortedAndUnchanged() {
    String id = unique("locking");
    svc().createPolicy(CreatePolicyRequest.newBuilder().setId(id).setText(FORBID_DECRYPT).build());
    svc().updatePolicy(UpdatePolicyRequest.newBuilder().setId(id).setText(FORBID_DECRYPT.replace("Decrypt", "Sign"))
        .setExpectedVersion(1).build());
    // a second writer that read version 1
    assertStatus(Status.Code.ABORTED, "CONCURRENT_MODIFICATION", () -> svc().updatePolicy(UpdatePolicyRequest
        .newBuilder().setId(id).setText(FORBID_DECRYPT.replace("Decrypt", "MacSign")).setExpectedVersion(1).build()));
    assertStatus(Status.Code.ABORTED, "CONCURRENT_MODIFICATION", () -> svc().deletePolicy(DeletePolicyRequest
        .newBuilder().setId(id).setExpectedVersion(1).build()));
    Policy latest = svc().getPolicy(GetPolicyRequest.newBuilder().setId(id).build());
    assertEquals(2, latest.getVersion());
    assertTrue(latest.getText().contains("Sign"));
  }

  @Test
  void updatePolicy_concurrentWriters_exactlyOneWinsPerVersion() throws Exception {
    String id = unique("race");
    svc().createPolicy(CreatePolicyRequest.newBuilder().setId(id).setText(FORBID_DECRYPT).build());
    List<Thread> threads = new ArrayList<>();
    AtomicInteger ok = new AtomicInteger();
    AtomicInteger aborted = new AtomicInteger();
    List<String> other = java.util.Collections.synchronizedList(new ArrayList<>());
    for (int i = 0; i < 8; i++) {
      Thread t = new Thread(() -> {
        try {
          svc().updatePolicy(UpdatePolicyRequest.newBuilder().setId(id).setText(FORBID_DECRYPT).setExpectedVersion(1)
              .build());
          ok.incrementAndGet();
        } catch (io.grpc.StatusRuntimeException e) {
          if (e.getStatus().getCode() == Status.Code.ABORTED) aborted.incrementAndGet();
          else other.add(e.getStatus().toString());
        }
      });
      threads.add(t);
      t.start();
    }
    for (Thread t : threads) t.join();
    assertEquals(List.of(), other);
    assertEquals(1, ok.get());
    assertEquals(7, aborted.get());
    assertEquals(2, svc().getPolicy(GetPolicyRequest.newBuilder().setId(id).build()).getVersion());
  }

  @Test
  void createPolicy_badInput_refusedAndNothingSaved() {
    String id = unique("bad");
    var e = assertFailure(Status.Code.INVALID_ARGUMENT, "POLICY_INVALID", () -> svc().createPolicy(
        CreatePolicyRequest.newBuilder().setId(id)
            .setText("permit(principal, action == Tpmkms::Action::\"Encrpyt\", resource);").build()));
    assertTrue(e.getStatus().getDescription().contains("Encrpyt"), e.getStatus().getDescription());
    assertStatus(Status.Code.NOT_FOUND, "POLICY_NOT_FOUND", () -> svc().getPolicy(GetPolicyRequest.newBuilder()
        .setId(id).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "POLICY_INVALID", () -> svc().createPolicy(CreatePolicyRequest
        .newBuilder().setId(id).setText("permit(principal, action, resource) when { principal.email == \"x\" };")
        .build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_POLICY_ID", () -> svc().createPolicy(CreatePolicyRequest
        .newBuilder().setId("Bad Id").setText(FORBID_DECRYPT).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_POLICY_ID", () -> svc().getPolicy(GetPolicyRequest
        .newBuilder().build()));
    svc().createPolicy(CreatePolicyRequest.newBuilder().setId(id).setText(FORBID_DECRYPT).build());
    assertStatus(Status.Code.ALREADY_EXISTS, "POLICY_ALREADY_EXISTS", () -> svc().createPolicy(CreatePolicyRequest
        .newBuilder().setId(id).setText(FORBID_DECRYPT).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "POLICY_INVALID", () -> svc().updatePolicy(UpdatePolicyRequest
        .newBuilder().setId(id).setText("forbid(principal, action, resource").build()));
    assertEquals(1, svc().getPolicy(GetPolicyRequest.newBuilder().setId(id).build()).getVersion());
    assertStatus(Status.Code.NOT_FOUND, "POLICY_NOT_FOUND", () -> svc().deletePolicy(DeletePolicyRequest.newBuilder()
        .setId(unique("nope")).build()));
    assertStatus(Status.Code.NOT_FOUND, "POLICY_NOT_FOUND", () -> svc().listPolicyVersions(
        ListPolicyVersionsRequest.newBuilder().setId(unique("nope")).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", () -> svc().listPolicyVersions(
        ListPolicyVersionsRequest.newBuilder().setId(id).setPageToken("!!").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> svc().listPolicies(
        ListPoliciesRequest.newBuilder().setPageSize(1001).build()));
  }

  @Test
  void validatePolicy_answersErrorsWithoutSaving() {
    ValidatePolicyResponse bad = svc().validatePolicy(ValidatePolicyRequest.newBuilder()
        .setText("permit(principal in Tpmkms::Team::\"x\", action, resource);").build());
    assertFalse(bad.getValid());
    assertTrue(bad.getErrors(0).contains("Team"), bad.toString());
    assertTrue(svc().validatePolicy(ValidatePolicyRequest.newBuilder().setText(FORBID_DECRYPT).build()).getValid());
  }

  // ---- role bindings and decisions -------------------------------------------------------------

  @Test
  void bootstrap_sixRealmRoleBindingsOnTheDeployment() {
    List<RoleBinding> boot = svc().listRoleBindings(ListRoleBindingsRequest.newBuilder()
        .setResource(Resource.getDefaultInstance()).setPageSize(1000).build()).getBindingsList().stream()
        .filter(b -> b.getCreatedBy().equals("bootstrap")).toList();
    assertEquals(List.of("tpmkms-admin", "tpmkms-user", "tpmkms-duplicator", "tpmkms-auditor", "tpmkms-viewer",
        "tpmkms-node"), boot.stream().map(b -> b.getSubject().getRealmRole()).toList());
    assertEquals(List.of(Role.ADMIN, Role.USER, Role.DUPLICATOR, Role.AUDITOR, Role.VIEWER, Role.NODE),
        boot.stream().map(RoleBinding::getRole).toList());
    AuthorizeResponse d = svc().authorize(ask(person(unique("u"), List.of(), List.of("tpmkms-user")), "Encrypt",
        key("any", "k")));
    assertEquals(Decision.ALLOW, d.getDecision());
    assertEquals(Reason.Kind.ROLE_BINDING, d.getReasons(0).getKind());
    assertEquals("role user on the deployment for realm role tpmkms-user", d.getReasons(0).getDescription());
  }

  @Test
  void binding_createListDelete_andDecisionsFollow() {
    String namespace = unique("ns");
    String group = "/" + unique("team");
    Principal member = person(unique("m"), List.of(group + "/oncall"), List.of());
    assertEquals(Decision.DENY, svc().authorize(ask(member, "Decrypt", key(namespace, "k"))).getDecision());

    RoleBinding b = svc().createRoleBinding(CreateRoleBindingRequest.newBuilder()
        .setSubject(Subject.newBuilder().setGroup(group)).setRole(Role.USER).setResource(ns(namespace))
        .setDescription("team uses its keys").build());
    assertTrue(b.getId().startsWith("rb-"));
    assertEquals("anonymous", b.getCreatedBy());
    AuthorizeResponse allowed = svc().authorize(ask(member, "Decrypt", key(namespace, "k")));
    assertEquals(Decision.ALLOW, allowed.getDecision());
    assertEquals(Reason.newBuilder().setKind(Reason.Kind.ROLE_BINDING).setId(b.getId())
        .setDescription("role user on namespace " + namespace + " for group " + group).build(), allowed.getReasons(0));
    assertEquals(Decision.DENY, svc().authorize(ask(member, "Decrypt", key(unique("other"), "k"))).getDecision());

    assertStatus(Status.Code.ALREADY_EXISTS, "ROLE_BINDING_ALREADY_EXISTS", () -> svc().createRoleBinding(
        CreateRoleBindingRequest.newBuilder().setSubject(Subject.newBuilder().setGroup(group)).setRole(Role.USER)
            .setResource(ns(namespace)).build()));
    assertEquals(List.of(b), svc().listRoleBindings(ListRoleBindingsRequest.newBuilder()
        .setSubject(Subject.newBuilder().setGroup(group)).build()).getBindingsList());

    RoleBinding gone = svc().deleteRoleBinding(DeleteRoleBindingRequest.newBuilder().setId(b.getId()).build());
    assertTrue(gone.getDeleted());
    assertEquals("anonymous", gone.getDeletedBy());
    assertTrue(gone.hasDeleteTime());
    AuthorizeResponse denied = svc().authorize(ask(member, "Decrypt", key(namespace, "k")));
    assertEquals(Decision.DENY, denied.getDecision());
    assertEquals(Reason.Kind.DEFAULT_DENY, denied.getReasons(0).getKind());
    assertTrue(denied.getRevision() > allowed.getRevision());
    assertEquals(List.of(), svc().listRoleBindings(ListRoleBindingsRequest.newBuilder()
        .setSubject(Subject.newBuilder().setGroup(group)).build()).getBindingsList());
    assertEquals(List.of(gone), svc().listRoleBindings(ListRoleBindingsRequest.newBuilder()
        .setSubject(Subject.newBuilder().setGroup(group)).setIncludeDeleted(true).build()).getBindingsList());
    assertStatus(Status.Code.NOT_FOUND, "ROLE_BINDING_NOT_FOUND", () -> svc().deleteRoleBinding(
        DeleteRoleBindingRequest.newBuilder().setId(b.getId()).build()));
    assertStatus(Status.Code.NOT_FOUND, "ROLE_BINDING_NOT_FOUND", () -> svc().deleteRoleBinding(
        DeleteRoleBindingRequest.newBuilder().setId("rb-999999").build()));
    // the same grant can be made again after the deletion
    svc().createRoleBinding(CreateRoleBindingRequest.newBuilder().setSubject(Subject.newBuilder().setGroup(group))
        .setRole(Role.USER).setResource(ns(namespace)).build());
  }

  @Test
  void binding_badInput_invalidArgument() {
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_SUBJECT", () -> svc().createRoleBinding(
        CreateRoleBindingRequest.newBuilder().setRole(Role.USER).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_SUBJECT", () -> svc().createRoleBinding(
        CreateRoleBindingRequest.newBuilder().setSubject(Subject.newBuilder().setGroup("no-slash")).setRole(Role.USER)
            .build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_ROLE", () -> svc().createRoleBinding(
        CreateRoleBindingRequest.newBuilder().setSubject(Subject.newBuilder().setUser("u")).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_RESOURCE", () -> svc().createRoleBinding(
        CreateRoleBindingRequest.newBuilder().setSubject(Subject.newBuilder().setUser("u")).setRole(Role.USER)
            .setResource(key("", "k")).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> svc().deleteRoleBinding(
        DeleteRoleBindingRequest.newBuilder().build()));
  }

  @Test
  void forbidPolicy_overridesBinding_andIsNamedInTheDecision() {
    String id = unique("no-decrypt");
    String namespace = unique("fns");
    String interns = "/" + unique("interns");
    Principal intern = person(unique("i"), List.of(interns), List.of("tpmkms-user"));
    assertEquals(Decision.ALLOW, svc().authorize(ask(intern, "Decrypt", key(namespace, "k"))).getDecision());
    String text = "forbid(principal in Tpmkms::Group::\"" + interns + "\", action == Tpmkms::Action::\"Decrypt\", "
        + "resource in Tpmkms::Namespace::\"" + namespace + "\");";
    Policy p = svc().createPolicy(CreatePolicyRequest.newBuilder().setId(id).setDescription("interns never decrypt")
        .setText(text).build());
    AuthorizeResponse d = svc().authorize(ask(intern, "Decrypt", key(namespace, "k")));
    assertEquals(Decision.DENY, d.getDecision());
    assertEquals(Reason.newBuilder().setKind(Reason.Kind.POLICY).setId(id).setVersion(1)
        .setDescription("policy " + id + " v1: interns never decrypt").build(), d.getReasons(0));
    assertEquals(Decision.ALLOW, svc().authorize(ask(intern, "Encrypt", key(namespace, "k"))).getDecision());
    svc().deletePolicy(DeletePolicyRequest.newBuilder().setId(id).setExpectedVersion(p.getVersion()).build());
    assertEquals(Decision.ALLOW, svc().authorize(ask(intern, "Decrypt", key(namespace, "k"))).getDecision());
  }

  @Test
  void authorize_badInput_invalidArgumentNeverUnknown() {
    Principal p = person("x", List.of(), List.of());
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_CONTEXT", () -> svc().authorize(ask(p, "Encrypt",
        key("a", "b")).toBuilder().putContext("region", "eu").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_ACTION", () -> svc().authorize(ask(p, "Nope", key("a", "b"))));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_RESOURCE", () -> svc().authorize(ask(p, "Encrypt", ns("a"))));
    // no principal: the question is about the caller itself (here the anonymous caller of auth mode
    // none, bound to nothing), which anyone may ask
    AuthorizeResponse self = svc().authorize(AuthorizeRequest.newBuilder().setAction("GetKey")
        .setResource(key("a", "b")).build());
    assertEquals(Decision.DENY, self.getDecision(), self.toString());
    List<AuthorizeRequest> many = new ArrayList<>();
    for (int i = 0; i < 101; i++) many.add(ask(p, "GetKey", key("a", "b")));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> svc().batchAuthorize(
        BatchAuthorizeRequest.newBuilder().addAllRequests(many).build()));
  }

  @Test
  void batchAuthorize_answersInRequestOrder() {
    Principal user = person(unique("b"), List.of(), List.of("tpmkms-user"));
    BatchAuthorizeResponse r = svc().batchAuthorize(BatchAuthorizeRequest.newBuilder()
        .addRequests(ask(user, "Encrypt", key("a", "b")))
        .addRequests(ask(user, "CreateKey", key("a", "b")))
        .addRequests(ask(user, "GenerateRandom", Resource.getDefaultInstance())).build());
    assertEquals(List.of(Decision.ALLOW, Decision.DENY, Decision.ALLOW),
        r.getResponsesList().stream().map(AuthorizeResponse::getDecision).toList());
  }

  @Test
  void changeByAnotherReplica_seenWithinTheReloadBound() throws Exception {
    // Another replica's change: rows written straight into the shared database and the revision bumped.
    String namespace = unique("replica");
    Principal p = person(unique("r"), List.of(), List.of());
    assertEquals(Decision.DENY, svc().authorize(ask(p, "Sign", key(namespace, "k"))).getDecision());
    long start;
    try (Connection c = db.getConnection()) {
      c.setAutoCommit(false);
      try (PreparedStatement s = c.prepareStatement("INSERT INTO role_binding (seq, id, subject_kind, subject_value,"
          + " role, namespace, key_name, description, created_by, create_time, deleted, row_version)"
          + " SELECT n, 'rb-' || n, 'USER', ?, 'USER', ?, '', 'other replica', 'test', now(), false, 0"
          + " FROM (SELECT nextval('role_binding_seq') AS n) x")) {
        s.setString(1, p.subject());
        s.setString(2, namespace);
        s.executeUpdate();
      }
      c.createStatement().executeUpdate("UPDATE store_revision SET revision = revision + 1");
      c.commit();
      start = System.nanoTime();
    }
    long bound = 200 + 5_000; // reload interval (200 ms in tests) plus generous slack for a loaded machine
    long seenAfter = -1;
    while ((System.nanoTime() - start) / 1_000_000 < bound) {
      if (svc().authorize(ask(p, "Sign", key(namespace, "k"))).getDecision() == Decision.ALLOW) {
        seenAfter = (System.nanoTime() - start) / 1_000_000;
        break;
      }
      Thread.sleep(10);
    }
    assertTrue(seenAfter >= 0, "the change was not in force within " + bound + " ms");
    org.jboss.logging.Logger.getLogger(getClass()).infof("another replica's change in force after %d ms", seenAfter);
  }

  // ---- caller authorization --------------------------------------------------------------------

  @Test
  void caller_userRole_mayNotManage_adminMay() {
    Principal devUser = person(unique("dev-user"), List.of(), List.of("tpmkms-user"));
    var e = assertFailure(Status.Code.PERMISSION_DENIED, "PERMISSION_DENIED", () -> client.as(devUser).createPolicy(
        CreatePolicyRequest.newBuilder().setId(unique("p")).setText(FORBID_DECRYPT).build()));
    assertTrue(e.getStatus().getDescription().contains("no role binding or policy permits CreatePolicy"),
        e.getStatus().getDescription());
    assertStatus(Status.Code.PERMISSION_DENIED, "PERMISSION_DENIED", () -> client.as(devUser).authorize(
        ask(devUser, "Encrypt", key("a", "b"))));
    assertStatus(Status.Code.PERMISSION_DENIED, "PERMISSION_DENIED", () -> client.as(devUser).listRoleBindings(
        ListRoleBindingsRequest.getDefaultInstance()));
    Principal devAdmin = person(unique("dev-admin"), List.of(), List.of("tpmkms-admin"));
    Policy made = client.as(devAdmin).createPolicy(CreatePolicyRequest.newBuilder().setId(unique("p"))
        .setText(FORBID_DECRYPT).build());
    assertEquals(devAdmin.subject(), made.getCreatedBy());
    assertEquals(devAdmin.subject(), client.as(devAdmin).whoAmI(WhoAmIRequest.getDefaultInstance()).getPrincipal()
        .getSubject());
    // an auditor may read and ask for explanations, not change
    Principal auditor = person(unique("aud"), List.of(), List.of("tpmkms-auditor"));
    assertEquals(Decision.ALLOW, client.as(auditor).authorize(ask(devUser, "Encrypt", key("a", "b"))).getDecision());
    client.as(auditor).getSchema(GetSchemaRequest.getDefaultInstance());
    assertStatus(Status.Code.PERMISSION_DENIED, "PERMISSION_DENIED", () -> client.as(auditor).deletePolicy(
        DeletePolicyRequest.newBuilder().setId(made.getId()).build()));
  }

  @Test
  void caller_authorizerClientRole_mayAuthorize() {
    Principal keyService = new Principal(unique("sa"), "service-account-tpmkms-key-service", "tpmkms-key-service",
        List.of(), List.of("tpmkms-policy-service/authorizer"), List.of(), "https://kc/realms/tpmkms");
    Principal someone = person(unique("s"), List.of(), List.of("tpmkms-viewer"));
    AuthorizeResponse d = client.as(keyService).authorize(ask(someone, "GetKey", key("a", "b")));
    assertEquals(Decision.ALLOW, d.getDecision());
    assertStatus(Status.Code.PERMISSION_DENIED, "PERMISSION_DENIED", () -> client.as(keyService).createPolicy(
        CreatePolicyRequest.newBuilder().setId(unique("p")).setText(FORBID_DECRYPT).build()));
  }

  @Test
  void caller_namespaceAdmin_grantsInItsNamespaceOnly() {
    String namespace = unique("pay");
    Principal nsAdmin = person(unique("na"), List.of(), List.of());
    svc().createRoleBinding(CreateRoleBindingRequest.newBuilder().setSubject(Subject.newBuilder()
        .setUser(nsAdmin.subject())).setRole(Role.ADMIN).setResource(ns(namespace)).build());
    RoleBinding granted = client.as(nsAdmin).createRoleBinding(CreateRoleBindingRequest.newBuilder()
        .setSubject(Subject.newBuilder().setGroup("/" + namespace)).setRole(Role.USER)
        .setResource(key(namespace, "cards")).build());
    assertEquals(nsAdmin.subject(), granted.getCreatedBy());
    assertStatus(Status.Code.PERMISSION_DENIED, "PERMISSION_DENIED", () -> client.as(nsAdmin).createRoleBinding(
        CreateRoleBindingRequest.newBuilder().setSubject(Subject.newBuilder().setGroup("/x")).setRole(Role.USER)
            .setResource(ns(unique("elsewhere"))).build()));
    assertStatus(Status.Code.PERMISSION_DENIED, "PERMISSION_DENIED", () -> client.as(nsAdmin).createRoleBinding(
        CreateRoleBindingRequest.newBuilder().setSubject(Subject.newBuilder().setUser(nsAdmin.subject()))
            .setRole(Role.ADMIN).setResource(Resource.getDefaultInstance()).build()));
    // deleting a deployment-wide (bootstrap) binding is not theirs either
    RoleBinding boot = svc().listRoleBindings(ListRoleBindingsRequest.newBuilder().setSubject(Subject.newBuilder()
        .setRealmRole("tpmkms-viewer")).build()).getBindings(0);
    assertStatus(Status.Code.PERMISSION_DENIED, "PERMISSION_DENIED", () -> client.as(nsAdmin).deleteRoleBinding(
        DeleteRoleBindingRequest.newBuilder().setId(boot.getId()).build()));
    assertTrue(client.as(nsAdmin).deleteRoleBinding(DeleteRoleBindingRequest.newBuilder().setId(granted.getId())
        .build()).getDeleted());
  }

  // ---- audit, schema ---------------------------------------------------------------------------

  @Test
  void changes_writeAuditEventsInTheirTransaction_refusedOnesDoNot() throws Exception {
    String id = unique("audited");
    Principal admin = person(unique("adm"), List.of(), List.of("tpmkms-admin"));
    client.as(admin).createPolicy(CreatePolicyRequest.newBuilder().setId(id).setText(FORBID_DECRYPT).build());
    assertStatus(Status.Code.INVALID_ARGUMENT, "POLICY_INVALID", () -> client.as(admin).updatePolicy(
        UpdatePolicyRequest.newBuilder().setId(id).setText("nonsense").build()));
    client.as(admin).deletePolicy(DeletePolicyRequest.newBuilder().setId(id).build());
    List<AuditEvent> events = new ArrayList<>();
    try (Connection c = db.getConnection(); ResultSet rs = c.createStatement()
        .executeQuery("SELECT payload FROM audit_outbox ORDER BY id")) {
      while (rs.next()) {
        AuditEvent e = AuditEvent.parseFrom(rs.getBytes(1));
        if (e.getKey().equals("policy/" + id)) events.add(e);
      }
    }
    assertEquals(List.of("tpmkms.policy.v1.PolicyService/CreatePolicy", "tpmkms.policy.v1.PolicyService/DeletePolicy"),
        events.stream().map(AuditEvent::getOperation).toList());
    assertEquals(List.of(1, 2), events.stream().map(AuditEvent::getKeyVersion).toList());
    assertTrue(events.get(0).getPrincipal().startsWith(admin.subject()), events.get(0).getPrincipal());
    assertEquals("policy-service", events.get(0).getService());
    assertEquals("OK", events.get(0).getOutcome());
  }

  @Test
  void getSchema_returnsTheSchemaAndEveryAction() {
    GetSchemaResponse s = svc().getSchema(GetSchemaRequest.getDefaultInstance());
    assertTrue(s.getSchema().contains("namespace Tpmkms"));
    assertTrue(s.getActionsList().containsAll(List.of("Encrypt", "CreatePolicy", "QueryAuditRecords", "ExportKeyVersion")));
    assertFalse(s.getActionsList().contains("role:admin"));
    assertEquals("anonymous", svc().whoAmI(WhoAmIRequest.getDefaultInstance()).getPrincipal().getSubject());
  }
}
