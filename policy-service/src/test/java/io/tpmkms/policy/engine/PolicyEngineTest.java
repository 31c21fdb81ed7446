package io.tpmkms.policy.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.tpmkms.policy.engine.Decision.Reason;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.platform.auth.Principal;
import io.tpmkms.platform.error.ErrorCode;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The engine alone (no database, no server): the role matrix, scopes, ancestry, policies, explanations. */
class PolicyEngineTest {
  static final PolicyEngine ENGINE = PolicyEngine.load();

  /** Where an action is asked about in the matrix test. */
  enum On { KEY, NAMESPACE, DEPLOYMENT }

  /**
   * The matrix of docs/authorization.md, written out independently of the
   * schema file: action → (resource it is asked on, roles that allow it).
   */
  static final Map<String, Object[]> MATRIX = new LinkedHashMap<>();
  static {
    // every role but a node agent's (ADR 0038): it reads nodes, nothing of keys or policies
    Set<Role> all = EnumSet.complementOf(EnumSet.of(Role.NODE));
    for (String a : List.of("GetKey", "ListKeyVersions", "GetKeyVersion", "GetPublicKey", "GetKeyAttestation")) {
      MATRIX.put(a, new Object[] {On.KEY, all});
    }
    MATRIX.put("ListKeys", new Object[] {On.NAMESPACE, all});
    for (String a : List.of("CreateKey", "UpdateKey", "RotateKey", "SetPrimaryVersion", "DisableKeyVersion",
        "EnableKeyVersion", "ScheduleKeyVersionDestruction", "RestoreKeyVersion", "RevokeKeyVersion")) {
      MATRIX.put(a, new Object[] {On.KEY, EnumSet.of(Role.ADMIN)});
    }
    MATRIX.put("GetImportJob", new Object[] {On.NAMESPACE, all});
    MATRIX.put("ListImportJobs", new Object[] {On.NAMESPACE, all});
    MATRIX.put("CreateImportJob", new Object[] {On.NAMESPACE, EnumSet.of(Role.ADMIN)});
    MATRIX.put("ImportKeyVersion", new Object[] {On.KEY, EnumSet.of(Role.ADMIN)});
    for (String a : List.of("CreatePolicy", "UpdatePolicy", "DeletePolicy")) {
      MATRIX.put(a, new Object[] {On.DEPLOYMENT, EnumSet.of(Role.ADMIN)});
    }
    for (String a : List.of("CreateRoleBinding", "DeleteRoleBinding")) {
      MATRIX.put(a, new Object[] {On.NAMESPACE, EnumSet.of(Role.ADMIN)});
    }
    for (String a : List.of("GetPolicy", "ListPolicies", "ListPolicyVersions", "ValidatePolicy", "GetSchema",
        "ListRoleBindings", "Authorize")) {
      MATRIX.put(a, new Object[] {On.DEPLOYMENT, EnumSet.of(Role.ADMIN, Role.AUDITOR)});
    }
    for (String a : List.of("Encrypt", "Decrypt", "GenerateDataKey", "Sign", "Verify", "AsymmetricDecrypt",
        "MacSign", "MacVerify")) {
      MATRIX.put(a, new Object[] {On.KEY, EnumSet.of(Role.USER)});
    }
    MATRIX.put("GenerateRandom", new Object[] {On.DEPLOYMENT, EnumSet.of(Role.USER)});
    MATRIX.put("ActivateAttestationCredential", new Object[] {On.DEPLOYMENT, EnumSet.of(Role.ADMIN, Role.AUDITOR)});
    for (String a : List.of("EnrollNode", "ActivateNode", "RevokeNode")) {
      MATRIX.put(a, new Object[] {On.DEPLOYMENT, EnumSet.of(Role.ADMIN)});
    }
    MATRIX.put("GetNode", new Object[] {On.DEPLOYMENT, EnumSet.allOf(Role.class)});
    MATRIX.put("ListNodes", new Object[] {On.DEPLOYMENT, EnumSet.allOf(Role.class)});
    MATRIX.put("GetAttestationChallenge", new Object[] {On.DEPLOYMENT, EnumSet.of(Role.NODE)});
    MATRIX.put("AttestNode", new Object[] {On.DEPLOYMENT, EnumSet.of(Role.NODE)});
    MATRIX.put("ReleaseKey", new Object[] {On.KEY, EnumSet.of(Role.NODE)});
    MATRIX.put("ExportKeyVersion", new Object[] {On.KEY, EnumSet.of(Role.DUPLICATOR)});
    for (String a : List.of("QueryAuditRecords", "VerifyAuditChain", "ExportAuditRecords", "ListCheckpoints",
        "GetCheckpoint")) {
      MATRIX.put(a, new Object[] {On.DEPLOYMENT, EnumSet.of(Role.AUDITOR)});
    }
  }

  static Principal user(String subject, List<String> groups, List<String> realmRoles) {
    return new Principal(subject, subject, "tpmkms-cli", realmRoles, List.of(), groups, "https://kc/realms/tpmkms");
  }

  static Binding binding(String id, SubjectRef s, Role r, ResourceRef res) {
    return new Binding(id, s, r, res);
  }

  static ResourceRef on(On on) {
    return switch (on) {
      case KEY -> ResourceRef.key("payments", "cards");
      case NAMESPACE -> ResourceRef.namespace("payments");
      case DEPLOYMENT -> ResourceRef.DEPLOYMENT;
    };
  }

  private static Decision decide(CompiledPolicies state, Principal p, String action, ResourceRef r) {
    return ENGINE.authorize(state, AuthzRequest.of(p, action, r));
  }

  // ---- the matrix -------------------------------------------------------------------------------

  @Test
  void matrix_listsEverySchemaAction() {
    assertEquals(new TreeSet<>(MATRIX.keySet()), new TreeSet<>(ENGINE.actions().names()),
        "the schema's actions and the documented matrix differ");
  }

  @Test
  void matrix_everyActionForEveryRole_allowedExactlyWhereDocumented() {
    // One principal per role, each bound by a realm role on the deployment (the bootstrap shape).
    List<Binding> bindings = new ArrayList<>();
    for (Role r : Role.values()) {
      bindings.add(binding("b-" + r.label(), SubjectRef.of(SubjectRef.Kind.REALM_ROLE, "tpmkms-" + r.label()), r,
          ResourceRef.DEPLOYMENT));
    }
    CompiledPolicies state = ENGINE.compile(1, bindings, List.of());
    List<String> wrong = new ArrayList<>();
    int checked = 0;
    for (var e : MATRIX.entrySet()) {
      String action = e.getKey();
      ResourceRef res = on((On) e.getValue()[0]);
      @SuppressWarnings("unchecked") Set<Role> allowed = (Set<Role>) e.getValue()[1];
      for (Role r : Role.values()) {
        Decision d = decide(state, user("u-" + r.label(), List.of(), List.of("tpmkms-" + r.label())), action, res);
        checked++;
        if (d.allowed() != allowed.contains(r)) {
          wrong.add(action + " by " + r.label() + ": " + (d.allowed() ? "ALLOW" : "DENY") + " (" + d.explain() + ")");
        }
        if (d.allowed()) {
          assertEquals(List.of(new Reason(Reason.Kind.ROLE_BINDING, "b-" + r.label(), 0,
              "role " + r.label() + " on the deployment for realm role tpmkms-" + r.label())), d.reasons());
        } else {
          assertEquals(Reason.Kind.DEFAULT_DENY, d.reasons().get(0).kind());
        }
      }
      // a principal without any binding gets nothing
      assertFalse(decide(state, user("nobody", List.of(), List.of("offline_access")), action, res).allowed());
    }
    assertEquals(List.of(), wrong);
    assertEquals(MATRIX.size() * Role.values().length, checked);
  }

  @Test
  void listKeys_onTheDeployment_alsoAllowed() {
    CompiledPolicies state = ENGINE.compile(1, List.of(binding("v", SubjectRef.of(SubjectRef.Kind.USER, "ann"),
        Role.VIEWER, ResourceRef.DEPLOYMENT)), List.of());
    assertTrue(decide(state, user("ann", List.of(), List.of()), "ListKeys", ResourceRef.DEPLOYMENT).allowed());
  }

  // ---- scopes -----------------------------------------------------------------------------------

  @Test
  void namespaceBinding_coversItsKeys_notOtherNamespaces() {
    CompiledPolicies state = ENGINE.compile(7, List.of(binding("pay-users",
        SubjectRef.of(SubjectRef.Kind.GROUP, "/payments"), Role.USER, ResourceRef.namespace("payments"))), List.of());
    Principal bob = user("bob", List.of("/payments"), List.of());
    Decision yes = decide(state, bob, "Encrypt", ResourceRef.key("payments", "cards"));
    assertTrue(yes.allowed());
    assertEquals(7, yes.revision());
    assertEquals("role user on namespace payments for group /payments", yes.reasons().get(0).description());
    assertFalse(decide(state, bob, "Encrypt", ResourceRef.key("billing", "cards")).allowed());
    assertFalse(decide(state, bob, "GenerateRandom", ResourceRef.DEPLOYMENT).allowed(),
        "a namespace binding gives nothing on the deployment");
  }

  @Test
  void keyBinding_coversOnlyThatKey() {
    CompiledPolicies state = ENGINE.compile(1, List.of(binding("signer",
        SubjectRef.of(SubjectRef.Kind.CLIENT, "release-bot"), Role.USER, ResourceRef.key("release", "signing"))),
        List.of());
    Principal bot = new Principal("sa-1", "service-account-release-bot", "release-bot", List.of(), List.of(),
        List.of(), "iss");
    assertTrue(decide(state, bot, "Sign", ResourceRef.key("release", "signing")).allowed());
    assertFalse(decide(state, bot, "Sign", ResourceRef.key("release", "other")).allowed());
    assertFalse(decide(state, bot, "ListKeys", ResourceRef.namespace("release")).allowed());
  }

  @Test
  void groupAncestry_bindingOnParentGroup_coversSubgroupMembers() {
    CompiledPolicies state = ENGINE.compile(1, List.of(binding("g", SubjectRef.of(SubjectRef.Kind.GROUP, "/payments"),
        Role.ADMIN, ResourceRef.namespace("payments"))), List.of());
    Principal oncall = user("carl", List.of("/payments/oncall/night"), List.of());
    assertTrue(decide(state, oncall, "RotateKey", ResourceRef.key("payments", "k")).allowed());
    Principal other = user("dora", List.of("/paymentsx"), List.of());
    assertFalse(decide(state, other, "RotateKey", ResourceRef.key("payments", "k")).allowed());
  }

  @Test
  void clientRoleAndUserSubjects_match() {
    CompiledPolicies state = ENGINE.compile(1, List.of(
        binding("cr", SubjectRef.of(SubjectRef.Kind.CLIENT_ROLE, "tpmkms-key-service/auditor"), Role.AUDITOR,
            ResourceRef.DEPLOYMENT),
        binding("u", SubjectRef.of(SubjectRef.Kind.USER, "sub-42"), Role.DUPLICATOR, ResourceRef.namespace("x"))),
        List.of());
    Principal p = new Principal("sub-42", "eve", "c", List.of(), List.of("tpmkms-key-service/auditor"), List.of(), "i");
    assertTrue(decide(state, p, "QueryAuditRecords", ResourceRef.DEPLOYMENT).allowed());
    assertTrue(decide(state, p, "ExportKeyVersion", ResourceRef.key("x", "k")).allowed());
    assertFalse(decide(state, p, "ExportKeyVersion", ResourceRef.key("y", "k")).allowed());
  }

  @Test
  void adminOfNamespace_mayGrantThere_notElsewhere() {
    CompiledPolicies state = ENGINE.compile(1, List.of(binding("pa", SubjectRef.of(SubjectRef.Kind.USER, "pat"),
        Role.ADMIN, ResourceRef.namespace("payments"))), List.of());
    Principal pat = user("pat", List.of(), List.of());
    assertTrue(decide(state, pat, "CreateRoleBinding", ResourceRef.namespace("payments")).allowed());
    assertTrue(decide(state, pat, "CreateRoleBinding", ResourceRef.key("payments", "k")).allowed());
    assertFalse(decide(state, pat, "CreateRoleBinding", ResourceRef.namespace("billing")).allowed());
    assertFalse(decide(state, pat, "CreateRoleBinding", ResourceRef.DEPLOYMENT).allowed());
    assertFalse(decide(state, pat, "CreatePolicy", ResourceRef.DEPLOYMENT).allowed());
  }

  // ---- operator policies -----------------------------------------------------------------------

  @Test
  void forbid_overridesBinding_andIsTheReason() {
    OperatorPolicy noDecrypt = new OperatorPolicy("no-decrypt-interns", 3, "interns never decrypt",
        "forbid(principal in Tpmkms::Group::\"/interns\", action == Tpmkms::Action::\"Decrypt\", resource);");
    CompiledPolicies state = ENGINE.compile(1, List.of(binding("all-users",
        SubjectRef.of(SubjectRef.Kind.REALM_ROLE, "tpmkms-user"), Role.USER, ResourceRef.DEPLOYMENT)),
        List.of(noDecrypt));
    Principal intern = user("ivy", List.of("/interns"), List.of("tpmkms-user"));
    Decision d = decide(state, intern, "Decrypt", ResourceRef.key("payments", "k"));
    assertFalse(d.allowed());
    assertEquals(List.of(new Reason(Reason.Kind.POLICY, "no-decrypt-interns", 3,
        "policy no-decrypt-interns v3: interns never decrypt")), d.reasons());
    assertTrue(decide(state, intern, "Encrypt", ResourceRef.key("payments", "k")).allowed());
    assertTrue(decide(state, user("sam", List.of(), List.of("tpmkms-user")), "Decrypt",
        ResourceRef.key("payments", "k")).allowed());
  }

  @Test
  void permitPolicy_withContextCondition_onlyWhenTheContextSaysSo() {
    OperatorPolicy tpmOnly = new OperatorPolicy("bot-signs-on-tpm", 1, "",
        "permit(principal in Tpmkms::Client::\"release-bot\", action == Tpmkms::Action::\"Sign\", "
            + "resource == Tpmkms::Key::\"release/signing\") "
            + "when { context has protection_level && context.protection_level == \"TPM\" };");
    assertEquals(List.of(), ENGINE.validate(tpmOnly.text()));
    CompiledPolicies state = ENGINE.compile(1, List.of(), List.of(tpmOnly));
    Principal bot = new Principal("sa", "sa", "release-bot", List.of(), List.of(), List.of(), "i");
    ResourceRef key = ResourceRef.key("release", "signing");
    Decision yes = ENGINE.authorize(state, new AuthzRequest(bot, "Sign", key, Map.of("protection_level", "TPM")));
    assertTrue(yes.allowed());
    assertEquals(Reason.Kind.POLICY, yes.reasons().get(0).kind());
    assertFalse(ENGINE.authorize(state, new AuthzRequest(bot, "Sign", key, Map.of("protection_level", "SOFTWARE")))
        .allowed());
    assertFalse(ENGINE.authorize(state, new AuthzRequest(bot, "Sign", key, Map.of())).allowed());
    assertFalse(ENGINE.authorize(state, new AuthzRequest(bot, "Sign", ResourceRef.key("release", "other"),
        Map.of("protection_level", "TPM"))).allowed());
  }

  @Test
  void policyReadingUserAttributes_validatesAndMatches() {
    String text = "permit(principal, action == Tpmkms::Action::\"GetKey\", resource in Tpmkms::Namespace::\"pub\") "
        + "when { principal.issuer == \"https://kc/realms/tpmkms\" };";
    assertEquals(List.of(), ENGINE.validate(text));
    CompiledPolicies state = ENGINE.compile(1, List.of(), List.of(new OperatorPolicy("pub", 1, "", text)));
    assertTrue(decide(state, user("x", List.of(), List.of()), "GetKey", ResourceRef.key("pub", "k")).allowed());
  }

  // ---- validation ------------------------------------------------------------------------------

  @Test
  void validate_unknownAction_refusedWithValidatorMessage() {
    List<String> errors = ENGINE.validate("permit(principal, action == Tpmkms::Action::\"Encrpyt\", resource);");
    assertFalse(errors.isEmpty());
    assertTrue(errors.get(0).contains("unrecognized action"), errors.toString());
    ServiceException e = assertThrows(ServiceException.class,
        () -> ENGINE.requireValid("permit(principal, action == Tpmkms::Action::\"Encrpyt\", resource);"));
    assertEquals(ErrorCode.INVALID_ARGUMENT, e.code());
    assertEquals("POLICY_INVALID", e.reason());
    assertTrue(e.getMessage().contains("Encrpyt"), e.getMessage());
  }

  @Test
  void validate_unknownAttributeEntityOrContext_refused() {
    assertTrue(String.join(" ", ENGINE.validate("permit(principal, action, resource) when { principal.email == \"x\" };"))
        .contains("email"));
    assertTrue(String.join(" ", ENGINE.validate("permit(principal in Tpmkms::Team::\"a\", action, resource);"))
        .contains("Team"));
    assertFalse(ENGINE.validate("permit(principal, action, resource) when { context.region == \"eu\" };").isEmpty());
    // strict: a type mismatch is an error, not a runtime surprise
    assertFalse(ENGINE.validate("permit(principal, action, resource) when { principal.username == 3 };").isEmpty());
  }

  @Test
  void validate_syntaxTemplatesAndSeveralPolicies_refused() {
    assertFalse(ENGINE.validate("permit(principal, action, resource").isEmpty());
    assertTrue(ENGINE.validate("permit(principal in ?principal, action, resource);").get(0).contains("slots"));
    assertTrue(ENGINE.validate("permit(principal, action, resource); forbid(principal, action, resource);").get(0)
        .contains("exactly one"));
    assertFalse(ENGINE.validate("").isEmpty());
    assertEquals(List.of(), ENGINE.validate("forbid(principal, action in Tpmkms::Action::\"role:duplicator\", resource);"));
  }

  // ---- bad requests ----------------------------------------------------------------------------

  @Test
  void authorize_badInput_refusedWithReason() {
    CompiledPolicies state = ENGINE.compile(1, List.of(), List.of());
    Principal p = user("x", List.of(), List.of());
    assertReason("INVALID_CONTEXT", () -> ENGINE.authorize(state, new AuthzRequest(p, "Encrypt",
        ResourceRef.key("a", "b"), Map.of("region", "eu"))));
    assertReason("INVALID_ACTION", () -> decide(state, p, "Frobnicate", ResourceRef.DEPLOYMENT));
    assertReason("INVALID_ACTION", () -> decide(state, p, "role:admin", ResourceRef.DEPLOYMENT));
    assertReason("INVALID_RESOURCE", () -> decide(state, p, "Encrypt", ResourceRef.namespace("a")));
    assertReason("INVALID_RESOURCE", () -> decide(state, p, "CreatePolicy", ResourceRef.namespace("a")));
    assertReason("INVALID_PRINCIPAL", () -> decide(state,
        new Principal("", "", "", List.of(), List.of(), List.of(), ""), "GetKey", ResourceRef.key("a", "b")));
    assertReason("INVALID_RESOURCE", () -> ResourceRef.of("", "k"));
    assertReason("INVALID_RESOURCE", () -> ResourceRef.of("Bad NS", ""));
    assertReason("INVALID_SUBJECT", () -> SubjectRef.of(SubjectRef.Kind.GROUP, "payments"));
    assertReason("INVALID_SUBJECT", () -> SubjectRef.of(SubjectRef.Kind.CLIENT_ROLE, "norole"));
  }

  @Test
  void authorize_evaluationErrorInAPolicy_isReportedAndDoesNotMatch() {
    // "like" on an absent optional context attribute without "has": the validator refuses it, so
    // build the state directly as a replica with an older schema might have it.
    OperatorPolicy broken = new OperatorPolicy("broken", 1, "",
        "forbid(principal, action, resource) when { context.algorithm == \"x\" };");
    CompiledPolicies state = ENGINE.compile(1, List.of(binding("v", SubjectRef.of(SubjectRef.Kind.USER, "x"),
        Role.VIEWER, ResourceRef.DEPLOYMENT)), List.of(broken));
    Decision d = decide(state, user("x", List.of(), List.of()), "GetKey", ResourceRef.key("a", "b"));
    assertTrue(d.allowed(), "an erroring forbid does not match");
    assertEquals(1, d.errors().size());
    assertTrue(d.errors().get(0).startsWith("policy broken v1"), d.errors().toString());
  }

  private static void assertReason(String reason, org.junit.jupiter.api.function.Executable call) {
    ServiceException e = assertThrows(ServiceException.class, call);
    assertEquals(ErrorCode.INVALID_ARGUMENT, e.code());
    assertEquals(reason, e.reason(), e.getMessage());
  }
}
