package io.tpmkms.cli.policy;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.format.AuditViews;
import io.tpmkms.proto.policy.v1.AuthorizeRequest;
import io.tpmkms.proto.policy.v1.AuthorizeResponse;
import io.tpmkms.proto.policy.v1.CreatePolicyRequest;
import io.tpmkms.proto.policy.v1.Decision;
import io.tpmkms.proto.policy.v1.DeletePolicyRequest;
import io.tpmkms.proto.policy.v1.GetPolicyRequest;
import io.tpmkms.proto.policy.v1.GetSchemaRequest;
import io.tpmkms.proto.policy.v1.GetSchemaResponse;
import io.tpmkms.proto.policy.v1.ListPoliciesRequest;
import io.tpmkms.proto.policy.v1.ListPoliciesResponse;
import io.tpmkms.proto.policy.v1.ListPolicyVersionsRequest;
import io.tpmkms.proto.policy.v1.ListPolicyVersionsResponse;
import io.tpmkms.proto.policy.v1.Policy;
import io.tpmkms.proto.policy.v1.Principal;
import io.tpmkms.proto.policy.v1.UpdatePolicyRequest;
import io.tpmkms.proto.policy.v1.ValidatePolicyRequest;
import io.tpmkms.proto.policy.v1.ValidatePolicyResponse;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code tpmkms policy ...}: the operator-written Cedar policies of the policy service, the schema
 * they are checked against, and {@code check}, which asks for one decision and explains it.
 */
@Command(name = "policy", description = {
        "Manage Cedar policies, show the schema, and check what a principal may do.",
        "Talks to the policy service at --policy-address (env TPMKMS_POLICY_ADDRESS, default localhost:9092)."})
public final class PolicyCommand implements Callable<Integer> {
    /**
     * The subcommands, in the order the help lists them. Registered by {@code TpmkmsCommand}, not in
     * {@code @Command(subcommands=...)}: a run builds picocli's model of only the one it executes (ADR 0018).
     */
    public static final Class<?>[] SUBCOMMANDS = {
            PolicyCommand.List.class,
            PolicyCommand.Get.class,
            PolicyCommand.Versions.class,
            PolicyCommand.Create.class,
            PolicyCommand.Update.class,
            PolicyCommand.Delete.class,
            PolicyCommand.Validate.class,
            PolicyCommand.Schema.class,
            PolicyCommand.Check.class,
    };


    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return ExitCodes.USAGE;
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "list", description = "The latest version of every policy (deleted ones with --include-deleted).")
    static final class List extends PolicyServiceCommand {
        @Option(names = "--include-deleted", description = "Also policies whose latest version is a deletion.")
        boolean includeDeleted;

        @ArgGroup(exclusive = false)
        PageOptions page = new PageOptions();

        @Override
        protected int run(Session s) throws Exception {
            if (page.pageSize < 0 || page.pageSize > MAX_PAGE) {
                throw usage("--page-size must be between 1 and " + MAX_PAGE);
            }
            ListPoliciesRequest.Builder request = ListPoliciesRequest.newBuilder()
                    .setIncludeDeleted(includeDeleted).setPageSize(page.pageSize);
            if (page.pageToken != null) {
                request.setPageToken(page.pageToken);
            }
            ListPoliciesResponse.Builder result = ListPoliciesResponse.newBuilder();
            while (true) {
                ListPoliciesResponse r = s.policy().listPolicies(request.build());
                result.addAllPolicies(r.getPoliciesList()).setNextPageToken(r.getNextPageToken());
                if (!page.all || r.getNextPageToken().isEmpty()) {
                    break;
                }
                if (r.getNextPageToken().equals(request.getPageToken())) {
                    throw new IllegalStateException("the policy service returned the same page token twice");
                }
                request.setPageToken(r.getNextPageToken());
            }
            if (s.json()) {
                s.printJson(result);
            } else {
                PolicyViews.policyTable(result.getPoliciesList(), s.out());
                if (!result.getNextPageToken().isEmpty()) {
                    s.err().println("more policies: --page-token " + result.getNextPageToken() + " (or --all)");
                }
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "get", description = "A policy: its latest version, or --version N (deleted ones too).")
    static final class Get extends PolicyServiceCommand {
        @Parameters(index = "0", paramLabel = "ID", description = "Policy id.")
        String id;

        @Option(names = "--version", paramLabel = "N", description = "This version (default: the latest).")
        long version;

        @Override
        protected int run(Session s) throws Exception {
            if (version < 0) {
                throw usage("--version must be at least 1");
            }
            Policy p = s.policy().getPolicy(GetPolicyRequest.newBuilder().setId(id).setVersion(version).build());
            if (s.json()) {
                s.printJson(p);
            } else {
                PolicyViews.policy(p, s.out());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "versions", description = "Every version of a policy, oldest first.")
    static final class Versions extends PolicyServiceCommand {
        @Parameters(index = "0", paramLabel = "ID", description = "Policy id.")
        String id;

        @Override
        protected int run(Session s) throws Exception {
            ListPolicyVersionsRequest.Builder request = ListPolicyVersionsRequest.newBuilder().setId(id);
            ListPolicyVersionsResponse.Builder result = ListPolicyVersionsResponse.newBuilder();
            while (true) {
                ListPolicyVersionsResponse r = s.policy().listPolicyVersions(request.build());
                result.addAllVersions(r.getVersionsList());
                if (r.getNextPageToken().isEmpty()) {
                    break;
                }
                if (r.getNextPageToken().equals(request.getPageToken())) {
                    throw new IllegalStateException("the policy service returned the same page token twice");
                }
                request.setPageToken(r.getNextPageToken());
            }
            if (s.json()) {
                s.printJson(result);
            } else {
                PolicyViews.policyTable(result.getVersionsList(), s.out());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "create", description = {
            "Create a policy (version 1) from a Cedar file holding exactly one permit or forbid.",
            "The service validates it against the schema first (exit 1 with the errors if it does not fit)."})
    static final class Create extends PolicyServiceCommand {
        @Parameters(index = "0", paramLabel = "ID", description = "Policy id: [a-z0-9][a-z0-9._-]{0,62}.")
        String id;

        @Option(names = "--file", required = true, paramLabel = "FILE", description = "Cedar source, or - for stdin.")
        String file;

        @Option(names = "--description", paramLabel = "TEXT", description = "What the policy is for.")
        String description = "";

        @Override
        protected int run(Session s) throws Exception {
            String text = readPolicy(s, file);
            Policy p = s.policy().createPolicy(CreatePolicyRequest.newBuilder()
                    .setId(id).setDescription(description).setText(text).build());
            if (s.json()) {
                s.printJson(p);
            } else {
                s.out().println("created policy " + AuditViews.escape(p.getId()) + " version " + p.getVersion());
            }
            return ExitCodes.OK;
        }
    }

    /**
     * Makes a new version. The version the change is based on must be given
     * ({@code --expected-version}, from {@code policy get}), so a change made by someone else in
     * between is refused (ABORTED, exit 6) instead of silently overwritten. {@code --force} reads
     * the latest version and bases the change on it: for scripts that own the policy. Without
     * {@code --description} the based-on version's description is kept.
     */
    @Command(name = "update", description = {
            "Make a new version of a policy from a Cedar file.",
            "Give the version you based it on (--expected-version N, see 'policy get'): if the policy changed since, "
                    + "the update fails with exit 6. --force bases it on whatever version is the latest.",
            "Without --description the description is kept."})
    static final class Update extends PolicyServiceCommand {
        @Parameters(index = "0", paramLabel = "ID", description = "Policy id.")
        String id;

        @Option(names = "--file", required = true, paramLabel = "FILE", description = "Cedar source, or - for stdin.")
        String file;

        @Option(names = "--description", paramLabel = "TEXT", description = "New description (default: keep).")
        String description;

        @ArgGroup(exclusive = true, multiplicity = "1")
        Base base;

        static final class Base {
            @Option(names = "--expected-version", required = true, paramLabel = "N",
                    description = "The version this change is based on.")
            Long expectedVersion;

            @Option(names = "--force", required = true, description = "Base the change on the latest version, whatever it is.")
            boolean force;
        }

        @Override
        protected int run(Session s) throws Exception {
            if (base.expectedVersion != null && base.expectedVersion < 1) {
                throw usage("--expected-version must be at least 1");
            }
            String text = readPolicy(s, file);
            long expected;
            String keptDescription = description;
            if (base.force || description == null) {
                Policy current = s.policy().getPolicy(GetPolicyRequest.newBuilder()
                        .setId(id).setVersion(base.force ? 0 : base.expectedVersion).build());
                expected = base.force ? current.getVersion() : base.expectedVersion;
                if (keptDescription == null) {
                    keptDescription = current.getDescription();
                }
            } else {
                expected = base.expectedVersion;
            }
            Policy p = s.policy().updatePolicy(UpdatePolicyRequest.newBuilder()
                    .setId(id).setDescription(keptDescription).setText(text).setExpectedVersion(expected).build());
            if (s.json()) {
                s.printJson(p);
            } else {
                s.out().println("updated policy " + AuditViews.escape(p.getId()) + ": version " + p.getVersion());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "delete", description = {
            "Delete a policy: a new version marked deleted; older versions stay readable.",
            "--expected-version N refuses (exit 6) if the policy changed since version N."})
    static final class Delete extends PolicyServiceCommand {
        @Parameters(index = "0", paramLabel = "ID", description = "Policy id.")
        String id;

        @Option(names = "--expected-version", paramLabel = "N", description = "Only if N is still the latest version.")
        long expectedVersion;

        @Override
        protected int run(Session s) throws Exception {
            if (expectedVersion < 0) {
                throw usage("--expected-version must be at least 1");
            }
            Policy p = s.policy().deletePolicy(DeletePolicyRequest.newBuilder()
                    .setId(id).setExpectedVersion(expectedVersion).build());
            if (s.json()) {
                s.printJson(p);
            } else {
                s.out().println("deleted policy " + AuditViews.escape(p.getId()) + " (version " + p.getVersion() + ")");
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "validate", description = {
            "Check a Cedar file against the schema without saving it.",
            "Exit 0 and 'valid' when it fits; exit 1 with one error per line on stderr when not."})
    static final class Validate extends PolicyServiceCommand {
        @Option(names = "--file", required = true, paramLabel = "FILE", description = "Cedar source, or - for stdin.")
        String file;

        @Override
        protected int run(Session s) throws Exception {
            String text = readPolicy(s, file);
            ValidatePolicyResponse r = s.policy().validatePolicy(ValidatePolicyRequest.newBuilder().setText(text).build());
            if (s.json()) {
                s.printJson(r);
            } else if (r.getValid()) {
                s.out().println("valid");
            }
            if (r.getValid()) {
                return ExitCodes.OK;
            }
            s.out().flush();
            s.err().println("policy INVALID");
            for (String error : r.getErrorsList()) {
                s.err().println("  " + AuditViews.escape(error));
            }
            return ExitCodes.FAILED;
        }
    }

    @Command(name = "schema", description = "The Cedar schema in force; --actions lists the action names only.")
    static final class Schema extends PolicyServiceCommand {
        @Option(names = "--actions", description = "Only the action names, one per line.")
        boolean actions;

        @Override
        protected int run(Session s) throws Exception {
            GetSchemaResponse r = s.policy().getSchema(GetSchemaRequest.getDefaultInstance());
            if (s.json()) {
                s.printJson(r);
            } else if (actions) {
                r.getActionsList().forEach(a -> s.out().println(AuditViews.escape(a)));
            } else {
                String schema = r.getSchema();
                for (String line : schema.split("\n", -1)) {
                    s.out().println(AuditViews.escape(line.replace("\t", "    ")));
                }
            }
            return ExitCodes.OK;
        }
    }

    /**
     * Asks for one decision for a principal described on the command line (not the caller:
     * an admin checks what someone else may do) and shows why. The exit code is the answer, so
     * scripts can test it: 0 ALLOW, {@link ExitCodes#POLICY_DENY} DENY; anything else is an error.
     */
    @Command(name = "check", description = {
            "Would the policy service allow this principal this action on this resource? Shows the decision and why.",
            "Exit 0 on ALLOW, 7 on DENY (errors have their usual codes)."})
    static final class Check extends PolicyServiceCommand {
        @Option(names = "--user", required = true, paramLabel = "SUB", description = "The principal's subject (token 'sub').")
        String user;

        @Option(names = "--username", paramLabel = "NAME", description = "preferred_username (informational).")
        String username;

        @Option(names = "--realm-role", paramLabel = "ROLE", description = "A realm role of the principal; repeatable.")
        java.util.List<String> realmRoles = new ArrayList<>();

        @Option(names = "--client-role", paramLabel = "CLIENT/ROLE", description = "A client role; repeatable.")
        java.util.List<String> clientRoles = new ArrayList<>();

        @Option(names = "--group", paramLabel = "PATH", description = "A group path (/payments/oncall); repeatable.")
        java.util.List<String> groups = new ArrayList<>();

        @Option(names = "--client", paramLabel = "CLIENT", description = "The OAuth client the token was issued to ('azp').")
        String client;

        @Option(names = "--issuer", paramLabel = "URL", description = "The token's issuer ('iss'), if policies look at it.")
        String issuer;

        @Option(names = "--action", required = true, paramLabel = "ACTION",
                description = "An action of the schema: Encrypt, CreateKey, CreatePolicy, ... ('policy schema --actions').")
        String action;

        @ArgGroup(exclusive = true, multiplicity = "1")
        ResourceOptions resource;

        @Option(names = "--context", paramLabel = "NAME=VALUE",
                description = "Request context (client_address, protection_level, algorithm, purpose); repeatable.")
        Map<String, String> context = new LinkedHashMap<>();

        @Override
        protected int run(Session s) throws Exception {
            for (String role : clientRoles) {
                if (role.indexOf('/') <= 0 || role.endsWith("/")) {
                    throw usage("--client-role must be CLIENT/ROLE, got '" + role + "'");
                }
            }
            Principal.Builder principal = Principal.newBuilder().setSubject(user)
                    .addAllRealmRoles(realmRoles).addAllClientRoles(clientRoles).addAllGroups(groups);
            if (username != null) {
                principal.setUsername(username);
            }
            if (client != null) {
                principal.setClientId(client);
            }
            if (issuer != null) {
                principal.setIssuer(issuer);
            }
            AuthorizeResponse r = s.policy().authorize(AuthorizeRequest.newBuilder()
                    .setPrincipal(principal).setAction(action).setResource(resource.toProto(this::usage))
                    .putAllContext(context).build());
            if (s.json()) {
                s.printJson(r);
            } else {
                PolicyViews.decision(r, s.out());
            }
            if (r.getDecision() == Decision.ALLOW) {
                return ExitCodes.OK;
            }
            if (r.getDecision() == Decision.DENY) {
                return ExitCodes.POLICY_DENY;
            }
            s.out().flush();
            s.err().println("error: the policy service answered no decision (" + r.getDecision() + ")");
            return ExitCodes.FAILED;
        }
    }
}
