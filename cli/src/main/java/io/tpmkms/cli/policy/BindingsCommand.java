package io.tpmkms.cli.policy;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.format.AuditViews;
import io.tpmkms.proto.policy.v1.CreateRoleBindingRequest;
import io.tpmkms.proto.policy.v1.DeleteRoleBindingRequest;
import io.tpmkms.proto.policy.v1.ListRoleBindingsRequest;
import io.tpmkms.proto.policy.v1.ListRoleBindingsResponse;
import io.tpmkms.proto.policy.v1.Role;
import io.tpmkms.proto.policy.v1.RoleBinding;
import io.tpmkms.proto.policy.v1.Subject;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code tpmkms bindings ...}: role bindings, which give a user, group, Keycloak role or client a
 * tpmkms role on the deployment, a namespace or one key. Deleting one keeps it as a record
 * ({@code --include-deleted} shows it).
 */
@Command(name = "bindings", description = {
        "Grant tpmkms roles (admin, user, duplicator, auditor, viewer, node) on the deployment, a namespace or a key.",
        "Talks to the policy service at --policy-address (env TPMKMS_POLICY_ADDRESS, default localhost:9092)."})
public final class BindingsCommand implements Callable<Integer> {
    /**
     * The subcommands, in the order the help lists them. Registered by {@code TpmkmsCommand}, not in
     * {@code @Command(subcommands=...)}: a run builds picocli's model of only the one it executes (ADR 0018).
     */
    public static final Class<?>[] SUBCOMMANDS = {
            BindingsCommand.List.class,
            BindingsCommand.Create.class,
            BindingsCommand.Delete.class,
    };


    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return ExitCodes.USAGE;
    }

    /** Exactly one subject. */
    static final class SubjectOptions {
        @Option(names = "--user", paramLabel = "SUB", description = "A user, by token subject ('sub').")
        String user;

        @Option(names = "--group", paramLabel = "PATH", description = "A Keycloak group path, e.g. /payments.")
        String group;

        @Option(names = "--realm-role", paramLabel = "ROLE", description = "Everyone with this Keycloak realm role.")
        String realmRole;

        @Option(names = "--client-role", paramLabel = "CLIENT/ROLE", description = "Everyone with this client role.")
        String clientRole;

        @Option(names = "--client", paramLabel = "CLIENT", description = "An OAuth client (its service account and "
                + "every token issued to it).")
        String client;

        Subject toProto(java.util.function.Function<String, RuntimeException> invalid) {
            Subject.Builder s = Subject.newBuilder();
            if (user != null) {
                s.setUser(nonBlank(invalid, "--user", user));
            } else if (group != null) {
                if (!group.startsWith("/")) {
                    throw invalid.apply("--group takes a group path starting with '/', e.g. /payments; got '" + group + "'");
                }
                s.setGroup(group);
            } else if (realmRole != null) {
                s.setRealmRole(nonBlank(invalid, "--realm-role", realmRole));
            } else if (clientRole != null) {
                if (clientRole.indexOf('/') <= 0 || clientRole.endsWith("/")) {
                    throw invalid.apply("--client-role must be CLIENT/ROLE, got '" + clientRole + "'");
                }
                s.setClientRole(clientRole);
            } else if (client != null) {
                s.setClient(nonBlank(invalid, "--client", client));
            }
            return s.build();
        }

        private static String nonBlank(java.util.function.Function<String, RuntimeException> invalid, String option, String value) {
            if (value.isBlank()) {
                throw invalid.apply(option + " must not be empty");
            }
            return value;
        }
    }

    /** {@code admin}, {@code user}, ... any case. */
    static final class RoleConverter implements ITypeConverter<Role> {
        @Override
        public Role convert(String value) {
            try {
                Role r = Role.valueOf(value.toUpperCase(Locale.ROOT).replace('-', '_'));
                if (r != Role.ROLE_UNSPECIFIED && r != Role.UNRECOGNIZED) {
                    return r;
                }
            } catch (IllegalArgumentException e) {
                // below
            }
            throw new TypeConversionException("unknown role '" + value + "'; one of admin, user, duplicator, auditor, viewer, node");
        }
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "list", description = {
            "Role bindings, all or only those on exactly one resource or for one subject.",
            "--namespace ns shows the bindings on the namespace itself, not on its keys."})
    static final class List extends PolicyServiceCommand {
        @ArgGroup(exclusive = true, multiplicity = "0..1", heading = "Resource (default: any)%n")
        ResourceOptions resource;

        @ArgGroup(exclusive = true, multiplicity = "0..1", heading = "Subject (default: any)%n")
        SubjectOptions subject;

        @Option(names = "--include-deleted", description = "Also deleted bindings.")
        boolean includeDeleted;

        @ArgGroup(exclusive = false)
        PageOptions page = new PageOptions();

        @Override
        protected int run(Session s) throws Exception {
            if (page.pageSize < 0 || page.pageSize > MAX_PAGE) {
                throw usage("--page-size must be between 1 and " + MAX_PAGE);
            }
            ListRoleBindingsRequest.Builder request = ListRoleBindingsRequest.newBuilder()
                    .setIncludeDeleted(includeDeleted).setPageSize(page.pageSize);
            if (resource != null) {
                request.setResource(resource.toProto(this::usage));
            }
            if (subject != null) {
                request.setSubject(subject.toProto(this::usage));
            }
            if (page.pageToken != null) {
                request.setPageToken(page.pageToken);
            }
            ListRoleBindingsResponse.Builder result = ListRoleBindingsResponse.newBuilder();
            while (true) {
                ListRoleBindingsResponse r = s.policy().listRoleBindings(request.build());
                result.addAllBindings(r.getBindingsList()).setNextPageToken(r.getNextPageToken());
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
                PolicyViews.bindingTable(result.getBindingsList(), s.out(), includeDeleted);
                if (!result.getNextPageToken().isEmpty()) {
                    s.err().println("more bindings: --page-token " + result.getNextPageToken() + " (or --all)");
                }
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "create", description = {
            "Give a subject a role on a resource.",
            "  tpmkms bindings create --role user --group /payments --namespace payments",
            "  tpmkms bindings create --role admin --realm-role kms-admin --deployment"})
    static final class Create extends PolicyServiceCommand {
        @Option(names = "--role", required = true, paramLabel = "ROLE", converter = RoleConverter.class,
                description = "admin, user, duplicator, auditor, viewer or node (a node agent, ADR 0038).")
        Role role;

        @ArgGroup(exclusive = true, multiplicity = "1", heading = "Subject (one of)%n")
        SubjectOptions subject;

        @ArgGroup(exclusive = true, multiplicity = "1", heading = "Resource (one of)%n")
        ResourceOptions resource;

        @Option(names = "--description", paramLabel = "TEXT", description = "Why this binding exists.")
        String description = "";

        @Override
        protected int run(Session s) throws Exception {
            RoleBinding b = s.policy().createRoleBinding(CreateRoleBindingRequest.newBuilder()
                    .setSubject(subject.toProto(this::usage)).setRole(role).setResource(resource.toProto(this::usage))
                    .setDescription(description).build());
            if (s.json()) {
                s.printJson(b);
            } else {
                s.out().println("created binding " + AuditViews.escape(b.getId()) + ": role "
                        + PolicyViews.role(b.getRole()) + " for " + PolicyViews.subject(b.getSubject()) + " on "
                        + PolicyViews.resource(b.getResource()));
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "delete", description = "Delete a role binding (it stays listed with --include-deleted).")
    static final class Delete extends PolicyServiceCommand {
        @Parameters(index = "0", paramLabel = "ID", description = "Binding id (from 'bindings list').")
        String id;

        @Override
        protected int run(Session s) throws Exception {
            RoleBinding b = s.policy().deleteRoleBinding(DeleteRoleBindingRequest.newBuilder().setId(id).build());
            if (s.json()) {
                s.printJson(b);
            } else {
                s.out().println("deleted binding " + AuditViews.escape(b.getId()) + ": role "
                        + PolicyViews.role(b.getRole()) + " for " + PolicyViews.subject(b.getSubject()) + " on "
                        + PolicyViews.resource(b.getResource()));
            }
            return ExitCodes.OK;
        }
    }
}
