package io.tpmkms.cli.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.Timestamp;
import io.grpc.Status;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.proto.policy.v1.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code tpmkms policy ...} and {@code tpmkms bindings ...} against {@link FakePolicyService}. */
class PolicyCommandTest extends CliHarness {

    static final Timestamp T2030 = Timestamp.newBuilder().setSeconds(1_895_486_400L).build(); // 2030-01-24T12:00:00Z
    static final String CEDAR = "permit (\n\tprincipal in Tpmkms::Group::\"/payments\",\n"
            + "  action == Tpmkms::Action::\"Encrypt\",\n  resource\n);\n";

    static Policy policy(String id, long version, boolean deleted) {
        return Policy.newBuilder().setId(id).setVersion(version).setDeleted(deleted).setDescription("payments may encrypt")
                .setText(CEDAR).setCreateTime(T2030).setCreatedBy("dev-admin").build();
    }

    Path policyFile() throws Exception {
        Path f = configDir.resolve("p.cedar");
        Files.writeString(f, CEDAR);
        return f;
    }

    // ---------------------------------------------------------------------------------- every call is the policy service

    @Test
    void policyCommands_talkToThePolicyServiceOnly_withTheToken() throws Exception {
        run("policy", "list");
        run("policy", "schema");
        run("bindings", "list");
        run("whoami");

        assertEquals(4, calls().size());
        for (Call c : calls()) {
            assertTrue(c.method().startsWith("tpmkms.policy.v1.PolicyService/"), c::toString);
            assertEquals("Bearer " + TEST_TOKEN, c.authorization());
        }
        assertTrue(service.requests().isEmpty() && audit.requests().isEmpty());
    }

    @Test
    void policyAddress_fromTheOption_unreachable_namesThePolicyService() {
        Result r = runAgainst(platform, new byte[0], "policy", "list", "--policy-address", "127.0.0.1:1");

        assertEquals(ExitCodes.UNREACHABLE, r.exitCode(), r::toString);
        assertTrue(r.stderr().startsWith("error: cannot reach the policy service at 127.0.0.1:1"), r::toString);
    }

    // ---------------------------------------------------------------------------------- policies

    @Test
    void list_showsATable() {
        policy.respond(ListPoliciesResponse.newBuilder().addPolicies(policy("payments-encrypt", 3, false))
                .addPolicies(policy("old", 2, true)).build());

        Result r = run("policy", "list", "--include-deleted", "--page-size", "10");

        assertEquals(0, r.exitCode(), r::toString);
        ListPoliciesRequest q = policy.only(ListPoliciesRequest.class);
        assertTrue(q.getIncludeDeleted());
        assertEquals(10, q.getPageSize());
        assertEquals("""
                ID                VERSION  STATE    CREATED               CREATED BY  DESCRIPTION
                payments-encrypt  3        active   2030-01-24T12:00:00Z  dev-admin   payments may encrypt
                old               2        deleted  2030-01-24T12:00:00Z  dev-admin   payments may encrypt
                """, r.stdout());
    }

    @Test
    void list_all_followsPageTokens_andJsonHoldsEveryPage() {
        policy.respond(ListPoliciesResponse.newBuilder().addPolicies(policy("a", 1, false)).setNextPageToken("t2").build(),
                ListPoliciesResponse.newBuilder().addPolicies(policy("b", 1, false)).build());

        Result r = run("policy", "list", "--all", "--json");

        assertEquals(0, r.exitCode(), r::toString);
        List<ListPoliciesRequest> q = policy.requests(ListPoliciesRequest.class);
        assertEquals(List.of("", "t2"), q.stream().map(ListPoliciesRequest::getPageToken).toList());
        JsonObject o = JsonParser.parseString(r.stdout()).getAsJsonObject();
        assertEquals(2, o.getAsJsonArray("policies").size());
        assertEquals("b", o.getAsJsonArray("policies").get(1).getAsJsonObject().get("id").getAsString());
    }

    @Test
    void list_onePage_printsTheNextToken() {
        policy.respond(ListPoliciesResponse.newBuilder().addPolicies(policy("a", 1, false)).setNextPageToken("t2").build());

        Result r = run("policy", "list");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(1, policy.requests(ListPoliciesRequest.class).size());
        assertEquals("more policies: --page-token t2 (or --all)\n", r.stderr());
    }

    @Test
    void get_version_showsMetadataAndTheText() {
        policy.respond(policy("payments-encrypt", 2, false));

        Result r = run("policy", "get", "payments-encrypt", "--version", "2");

        assertEquals(0, r.exitCode(), r::toString);
        GetPolicyRequest q = policy.only(GetPolicyRequest.class);
        assertEquals("payments-encrypt", q.getId());
        assertEquals(2, q.getVersion());
        assertEquals("""
                id:          payments-encrypt
                version:     2
                description: payments may encrypt
                created:     2030-01-24T12:00:00Z by dev-admin

                permit (
                    principal in Tpmkms::Group::"/payments",
                  action == Tpmkms::Action::"Encrypt",
                  resource
                );

                """, r.stdout());
    }

    @Test
    void get_notFound_exits4_withTheReason() {
        policy.fail(Status.Code.NOT_FOUND, "policy \"x\" not found", "POLICY_NOT_FOUND");

        Result r = run("policy", "get", "x");

        assertEquals(ExitCodes.NOT_FOUND, r.exitCode(), r::toString);
        assertEquals("error: policy \"x\" not found (NOT_FOUND, reason POLICY_NOT_FOUND)\n", r.stderr());
    }

    @Test
    void get_escapesControlCharactersInTheText() {
        policy.respond(Policy.newBuilder().setId("p").setVersion(1).setText("permit(principal, action, resource);\u001b[2J").build());

        Result r = run("policy", "get", "p");

        assertTrue(r.stdout().contains("resource);\\u001b[2J"), r::toString);
    }

    @Test
    void versions_listsEveryPage() {
        policy.respond(ListPolicyVersionsResponse.newBuilder().addVersions(policy("p", 1, false)).setNextPageToken("n").build(),
                ListPolicyVersionsResponse.newBuilder().addVersions(policy("p", 2, true)).build());

        Result r = run("policy", "versions", "p");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(List.of("", "n"), policy.requests(ListPolicyVersionsRequest.class).stream()
                .map(ListPolicyVersionsRequest::getPageToken).toList());
        assertEquals(3, r.stdout().lines().count());
        assertTrue(r.stdout().contains("p   2        deleted"), r::toString);
    }

    @Test
    void create_sendsTheFileTextAndDescription() throws Exception {
        policy.respond(policy("payments-encrypt", 1, false));

        Result r = run("policy", "create", "payments-encrypt", "--file", policyFile().toString(),
                "--description", "payments may encrypt");

        assertEquals(0, r.exitCode(), r::toString);
        CreatePolicyRequest q = policy.only(CreatePolicyRequest.class);
        assertEquals("payments-encrypt", q.getId());
        assertEquals(CEDAR, q.getText());
        assertEquals("payments may encrypt", q.getDescription());
        assertEquals("created policy payments-encrypt version 1\n", r.stdout());
    }

    @Test
    void create_fromStdin() {
        Result r = runWithStdin(CEDAR.getBytes(StandardCharsets.UTF_8), "policy", "create", "p", "--file", "-");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(CEDAR, policy.only(CreatePolicyRequest.class).getText());
    }

    @Test
    void create_invalidPolicy_exits1_withTheServiceMessage() throws Exception {
        policy.fail(Status.Code.INVALID_ARGUMENT, "policy does not validate: unknown action Encrypt2", "POLICY_INVALID");

        Result r = run("policy", "create", "p", "--file", policyFile().toString());

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("(INVALID_ARGUMENT, reason POLICY_INVALID)"), r::toString);
    }

    @Test
    void create_notUtf8_isUsageError() throws Exception {
        Path f = configDir.resolve("bad.cedar");
        Files.write(f, new byte[] {(byte) 0xff, (byte) 0xfe, 'p'});

        Result r = run("policy", "create", "p", "--file", f.toString());

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(policy.requests().isEmpty());
    }

    @Test
    void update_expectedVersion_keepsTheDescriptionOfThatVersion() throws Exception {
        policy.respond(policy("p", 3, false));
        policy.respond(policy("p", 4, false));

        Result r = run("policy", "update", "p", "--file", policyFile().toString(), "--expected-version", "3");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(3, policy.only(GetPolicyRequest.class).getVersion());
        UpdatePolicyRequest q = policy.only(UpdatePolicyRequest.class);
        assertEquals(3, q.getExpectedVersion());
        assertEquals("payments may encrypt", q.getDescription());
        assertEquals(CEDAR, q.getText());
        assertEquals("updated policy p: version 4\n", r.stdout());
    }

    @Test
    void update_expectedVersionAndDescription_needsNoRead() throws Exception {
        Result r = run("policy", "update", "p", "--file", policyFile().toString(), "--expected-version", "3",
                "--description", "new");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(policy.requests(GetPolicyRequest.class).isEmpty());
        assertEquals("new", policy.only(UpdatePolicyRequest.class).getDescription());
    }

    @Test
    void update_force_basesTheChangeOnTheLatestVersion() throws Exception {
        policy.respond(policy("p", 7, false));

        Result r = run("policy", "update", "p", "--file", policyFile().toString(), "--force", "--description", "d");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(0, policy.only(GetPolicyRequest.class).getVersion(), "asks for the latest");
        assertEquals(7, policy.only(UpdatePolicyRequest.class).getExpectedVersion());
    }

    @Test
    void update_withoutExpectedVersionOrForce_isUsageError() throws Exception {
        Result r = run("policy", "update", "p", "--file", policyFile().toString());

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("--expected-version") && r.stderr().contains("--force"), r::toString);
        assertTrue(policy.requests().isEmpty());
    }

    @Test
    void update_concurrentModification_exits6() throws Exception {
        policy.fail(Status.Code.ABORTED, "policy p is at version 5, not 3", "CONCURRENT_MODIFICATION");

        Result r = run("policy", "update", "p", "--file", policyFile().toString(), "--expected-version", "3",
                "--description", "d");

        assertEquals(ExitCodes.CONFLICT, r.exitCode(), r::toString);
        assertEquals("error: policy p is at version 5, not 3 (ABORTED, reason CONCURRENT_MODIFICATION)\n", r.stderr());
    }

    @Test
    void delete_sendsTheExpectedVersion() {
        policy.respond(policy("p", 4, true));

        Result r = run("policy", "delete", "p", "--expected-version", "3");

        assertEquals(0, r.exitCode(), r::toString);
        DeletePolicyRequest q = policy.only(DeletePolicyRequest.class);
        assertEquals("p", q.getId());
        assertEquals(3, q.getExpectedVersion());
        assertEquals("deleted policy p (version 4)\n", r.stdout());
    }

    @Test
    void validate_valid_exits0() throws Exception {
        policy.respond(ValidatePolicyResponse.newBuilder().setValid(true).build());

        Result r = run("policy", "validate", "--file", policyFile().toString());

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(CEDAR, policy.only(ValidatePolicyRequest.class).getText());
        assertEquals("valid\n", r.stdout());
    }

    @Test
    void validate_invalid_exits1_withTheErrors() throws Exception {
        policy.respond(ValidatePolicyResponse.newBuilder().setValid(false)
                .addErrors("unrecognized action `Tpmkms::Action::\"Encrypt2\"`").build());

        Result r = run("policy", "validate", "--file", policyFile().toString());

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertEquals("policy INVALID\n  unrecognized action `Tpmkms::Action::\"Encrypt2\"`\n", r.stderr());
    }

    @Test
    void schema_printsTheSchema_orTheActions() {
        GetSchemaResponse schema = GetSchemaResponse.newBuilder().setSchema("namespace tpmkms {\n  entity User;\n}")
                .addActions("Encrypt").addActions("Decrypt").build();
        policy.respond(schema, schema);

        Result text = run("policy", "schema");
        Result actions = run("policy", "schema", "--actions");

        assertEquals("namespace tpmkms {\n  entity User;\n}\n", text.stdout());
        assertEquals("Encrypt\nDecrypt\n", actions.stdout());
    }

    // ---------------------------------------------------------------------------------- check

    @Test
    void check_allow_exits0_andMapsEveryOption() {
        policy.respond(AuthorizeResponse.newBuilder().setDecision(Decision.ALLOW).setRevision(42)
                .addReasons(Reason.newBuilder().setKind(Reason.Kind.ROLE_BINDING).setId("b-17")
                        .setDescription("role user on namespace payments for group /payments"))
                .build());

        Result r = run("policy", "check", "--user", "f1c2", "--username", "alice", "--realm-role", "staff",
                "--realm-role", "oncall", "--group", "/payments", "--client-role", "tpmkms/user", "--client", "orders-app",
                "--action", "Encrypt", "--key", "payments/orders", "--context", "protection_level=tpm");

        assertEquals(0, r.exitCode(), r::toString);
        AuthorizeRequest q = policy.only(AuthorizeRequest.class);
        assertEquals(Principal.newBuilder().setSubject("f1c2").setUsername("alice").addRealmRoles("staff")
                .addRealmRoles("oncall").addGroups("/payments").addClientRoles("tpmkms/user").setClientId("orders-app")
                .build(), q.getPrincipal());
        assertEquals("Encrypt", q.getAction());
        assertEquals(Resource.newBuilder().setNamespace("payments").setKeyName("orders").build(), q.getResource());
        assertEquals(Map.of("protection_level", "tpm"), q.getContextMap());
        assertEquals("""
                ALLOW
                  role binding b-17: role user on namespace payments for group /payments
                revision: 42
                """, r.stdout());
    }

    @Test
    void check_deny_exits7_withTheReason() {
        policy.respond(AuthorizeResponse.newBuilder().setDecision(Decision.DENY).setRevision(42)
                .addReasons(Reason.newBuilder().setKind(Reason.Kind.DEFAULT_DENY)
                        .setDescription("nothing permits Encrypt on namespace payments"))
                .addErrors("policy broken-1: evaluation error").build());

        Result r = run("policy", "check", "--user", "f1c2", "--action", "Encrypt", "--namespace", "payments");

        assertEquals(ExitCodes.POLICY_DENY, r.exitCode(), r::toString);
        assertEquals(7, ExitCodes.POLICY_DENY);
        assertEquals(Resource.newBuilder().setNamespace("payments").build(), policy.only(AuthorizeRequest.class).getResource());
        assertEquals("""
                DENY
                  default deny: nothing permits Encrypt on namespace payments
                  policy error: policy broken-1: evaluation error
                revision: 42
                """, r.stdout());
        assertEquals("", r.stderr());
    }

    @Test
    void check_forbidPolicy_showsPolicyAndVersion() {
        policy.respond(AuthorizeResponse.newBuilder().setDecision(Decision.DENY)
                .addReasons(Reason.newBuilder().setKind(Reason.Kind.POLICY).setId("no-export").setVersion(3)).build());

        Result r = run("policy", "check", "--user", "u", "--action", "ExportKeyVersion", "--deployment");

        assertEquals(ExitCodes.POLICY_DENY, r.exitCode(), r::toString);
        assertEquals(Resource.getDefaultInstance(), policy.only(AuthorizeRequest.class).getResource());
        assertTrue(r.stdout().contains("  policy no-export v3\n"), r::toString);
    }

    @Test
    void check_denyJson_stillExits7() {
        policy.respond(AuthorizeResponse.newBuilder().setDecision(Decision.DENY).build());

        Result r = run("policy", "check", "--user", "u", "--action", "Encrypt", "--deployment", "--json");

        assertEquals(ExitCodes.POLICY_DENY, r.exitCode(), r::toString);
        assertEquals("DENY", JsonParser.parseString(r.stdout()).getAsJsonObject().get("decision").getAsString());
    }

    @Test
    void check_noDecision_exits1() {
        Result r = run("policy", "check", "--user", "u", "--action", "Encrypt", "--deployment");

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
    }

    @Test
    void check_permissionDenied_exits5_notTheDenyCode() {
        policy.fail(Status.Code.PERMISSION_DENIED, "Authorize needs the admin role", "POLICY_DENIED");

        Result r = run("policy", "check", "--user", "u", "--action", "Encrypt", "--deployment");

        assertEquals(ExitCodes.DENIED, r.exitCode(), r::toString);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "no resource                | --user u --action Encrypt",
            "two resources              | --user u --action Encrypt --namespace a --deployment",
            "bad key                    | --user u --action Encrypt --key nokey",
            "no user                    | --action Encrypt --deployment",
            "bad client role            | --user u --action Encrypt --deployment --client-role admin",
    })
    void check_badArguments_areUsageErrors(String what, String args) {
        List<String> all = new java.util.ArrayList<>(List.of("policy", "check"));
        all.addAll(List.of(args.trim().split(" +")));

        Result r = run(all.toArray(String[]::new));

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(policy.requests().isEmpty());
    }

    // ---------------------------------------------------------------------------------- bindings

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
            "--user, f1c2, user:f1c2",
            "--group, /payments, group:/payments",
            "--realm-role, kms-operator, realm-role:kms-operator",
            "--client-role, tpmkms/admin, client-role:tpmkms/admin",
            "--client, orders-app, client:orders-app",
    })
    void bindingsCreate_mapsTheSubject(String option, String value, String shown) {
        Subject subject = switch (option) {
            case "--user" -> Subject.newBuilder().setUser(value).build();
            case "--group" -> Subject.newBuilder().setGroup(value).build();
            case "--realm-role" -> Subject.newBuilder().setRealmRole(value).build();
            case "--client-role" -> Subject.newBuilder().setClientRole(value).build();
            default -> Subject.newBuilder().setClient(value).build();
        };
        Resource ns = Resource.newBuilder().setNamespace("payments").build();
        policy.respond(RoleBinding.newBuilder().setId("b-1").setRole(Role.USER).setSubject(subject).setResource(ns).build());

        Result r = run("bindings", "create", "--role", "user", option, value, "--namespace", "payments",
                "--description", "why");

        assertEquals(0, r.exitCode(), r::toString);
        CreateRoleBindingRequest q = policy.only(CreateRoleBindingRequest.class);
        assertEquals(subject, q.getSubject());
        assertEquals(Role.USER, q.getRole());
        assertEquals(ns, q.getResource());
        assertEquals("why", q.getDescription());
        assertEquals("created binding b-1: role user for " + shown + " on namespace:payments\n", r.stdout());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "--key payments/orders, payments, orders",
            "--namespace payments, payments, ''",
            "--deployment, '', ''",
    })
    void bindingsCreate_mapsTheResource(String option, String namespace, String key) {
        List<String> args = new java.util.ArrayList<>(List.of("bindings", "create", "--role", "ADMIN", "--user", "u"));
        args.addAll(List.of(option.split(" ")));

        Result r = run(args.toArray(String[]::new));

        assertEquals(0, r.exitCode(), r::toString);
        CreateRoleBindingRequest q = policy.only(CreateRoleBindingRequest.class);
        assertEquals(Resource.newBuilder().setNamespace(namespace).setKeyName(key).build(), q.getResource());
        assertEquals(Role.ADMIN, q.getRole());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "unknown role      | --role owner --user u --deployment",
            "no subject        | --role user --deployment",
            "two subjects      | --role user --user u --group /g --deployment",
            "no resource       | --role user --user u",
            "group not a path  | --role user --group payments --deployment",
            "no role           | --user u --deployment",
    })
    void bindingsCreate_badArguments_areUsageErrors(String what, String args) {
        List<String> all = new java.util.ArrayList<>(List.of("bindings", "create"));
        all.addAll(List.of(args.trim().split(" +")));

        Result r = run(all.toArray(String[]::new));

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(policy.requests().isEmpty());
    }

    @Test
    void bindingsList_filters_andShowsDeleted() {
        policy.respond(ListRoleBindingsResponse.newBuilder()
                .addBindings(RoleBinding.newBuilder().setId("b-1").setRole(Role.USER)
                        .setSubject(Subject.newBuilder().setGroup("/payments"))
                        .setResource(Resource.newBuilder().setNamespace("payments"))
                        .setCreateTime(T2030).setCreatedBy("dev-admin"))
                .addBindings(RoleBinding.newBuilder().setId("b-2").setRole(Role.AUDITOR)
                        .setSubject(Subject.newBuilder().setUser("f1c2"))
                        .setResource(Resource.newBuilder().setNamespace("payments"))
                        .setCreateTime(T2030).setCreatedBy("dev-admin").setDescription("audit 2030")
                        .setDeleted(true).setDeleteTime(T2030).setDeletedBy("dev-admin"))
                .build());

        Result r = run("bindings", "list", "--namespace", "payments", "--group", "/payments", "--include-deleted");

        assertEquals(0, r.exitCode(), r::toString);
        ListRoleBindingsRequest q = policy.only(ListRoleBindingsRequest.class);
        assertEquals(Resource.newBuilder().setNamespace("payments").build(), q.getResource());
        assertTrue(q.hasResource());
        assertEquals(Subject.newBuilder().setGroup("/payments").build(), q.getSubject());
        assertTrue(q.getIncludeDeleted());
        assertEquals("""
                ID   ROLE     SUBJECT          RESOURCE            CREATED               CREATED BY  DELETED                            DESCRIPTION
                b-1  user     group:/payments  namespace:payments  2030-01-24T12:00:00Z  dev-admin   -                                  -
                b-2  auditor  user:f1c2        namespace:payments  2030-01-24T12:00:00Z  dev-admin   2030-01-24T12:00:00Z by dev-admin  audit 2030
                """, r.stdout());
    }

    @Test
    void bindingsList_withoutFilters_sendsNoResourceFilter_andDeploymentSendsAnEmptyOne() {
        run("bindings", "list");
        run("bindings", "list", "--deployment");

        List<ListRoleBindingsRequest> q = policy.requests(ListRoleBindingsRequest.class);
        assertTrue(!q.get(0).hasResource() && !q.get(0).hasSubject(), "no filter: any resource");
        assertTrue(q.get(1).hasResource(), "--deployment: only bindings on the deployment");
        assertEquals(Resource.getDefaultInstance(), q.get(1).getResource());
    }

    @Test
    void bindingsList_json() {
        policy.respond(ListRoleBindingsResponse.newBuilder()
                .addBindings(RoleBinding.newBuilder().setId("b-1").setRole(Role.VIEWER)).build());

        Result r = run("bindings", "list", "--key", "payments/orders", "--json");

        assertEquals(0, r.exitCode(), r::toString);
        JsonObject o = JsonParser.parseString(r.stdout()).getAsJsonObject();
        assertEquals("VIEWER", o.getAsJsonArray("bindings").get(0).getAsJsonObject().get("role").getAsString());
        assertEquals("orders", policy.only(ListRoleBindingsRequest.class).getResource().getKeyName());
    }

    @Test
    void bindingsDelete_sendsTheId() {
        policy.respond(RoleBinding.newBuilder().setId("b-9").setRole(Role.ADMIN)
                .setSubject(Subject.newBuilder().setRealmRole("kms-admin")).setDeleted(true).build());

        Result r = run("bindings", "delete", "b-9");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals("b-9", policy.only(DeleteRoleBindingRequest.class).getId());
        assertEquals("deleted binding b-9: role admin for realm-role:kms-admin on deployment\n", r.stdout());
    }

    @Test
    void bindingsDelete_notFound_exits4() {
        policy.fail(Status.Code.NOT_FOUND, "no binding b-9", "ROLE_BINDING_NOT_FOUND");

        Result r = run("bindings", "delete", "b-9");

        assertEquals(ExitCodes.NOT_FOUND, r.exitCode(), r::toString);
        assertEquals("error: no binding b-9 (NOT_FOUND, reason ROLE_BINDING_NOT_FOUND)\n", r.stderr());
    }
}
