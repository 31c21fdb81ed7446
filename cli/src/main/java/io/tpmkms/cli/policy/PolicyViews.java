package io.tpmkms.cli.policy;

import io.tpmkms.cli.format.AuditViews;
import io.tpmkms.cli.format.Table;
import io.tpmkms.cli.format.TimeText;
import io.tpmkms.proto.policy.v1.AuthorizeResponse;
import io.tpmkms.proto.policy.v1.Policy;
import io.tpmkms.proto.policy.v1.Principal;
import io.tpmkms.proto.policy.v1.Reason;
import io.tpmkms.proto.policy.v1.Resource;
import io.tpmkms.proto.policy.v1.Role;
import io.tpmkms.proto.policy.v1.RoleBinding;
import io.tpmkms.proto.policy.v1.Subject;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;

/**
 * Human output of the policy commands. Everything the service returns is shown through
 * {@link AuditViews#escape}: policy texts, descriptions and subjects are written by other people
 * and must not be able to move the cursor or rewrite the terminal.
 */
public final class PolicyViews {

    private PolicyViews() {
    }

    public static void principal(Principal p, PrintStream out) {
        out.println("subject:      " + AuditViews.escape(p.getSubject()));
        out.println("username:     " + dash(p.getUsername()));
        out.println("client:       " + dash(p.getClientId()));
        out.println("issuer:       " + dash(p.getIssuer()));
        out.println("realm roles:  " + list(p.getRealmRolesList()));
        out.println("client roles: " + list(p.getClientRolesList()));
        out.println("groups:       " + list(p.getGroupsList()));
    }

    static void policyTable(Iterable<Policy> policies, PrintStream out) {
        Table t = new Table("ID", "VERSION", "STATE", "CREATED", "CREATED BY", "DESCRIPTION");
        for (Policy p : policies) {
            t.row(AuditViews.escape(p.getId()), Long.toString(p.getVersion()), p.getDeleted() ? "deleted" : "active",
                    p.hasCreateTime() ? TimeText.show(p.getCreateTime()) : "-", dash(p.getCreatedBy()),
                    dash(p.getDescription()));
        }
        t.print(out);
    }

    static void policy(Policy p, PrintStream out) {
        out.println("id:          " + AuditViews.escape(p.getId()));
        out.println("version:     " + p.getVersion() + (p.getDeleted() ? " (deleted)" : ""));
        out.println("description: " + dash(p.getDescription()));
        out.println("created:     " + (p.hasCreateTime() ? TimeText.show(p.getCreateTime()) : "-")
                + " by " + dash(p.getCreatedBy()));
        if (!p.getText().isEmpty()) {
            out.println();
            // Keep the policy's own line breaks and tabs; escape anything else.
            for (String line : p.getText().split("\n", -1)) {
                out.println(AuditViews.escape(line.replace("\t", "    ")));
            }
        }
    }

    static void bindingTable(Iterable<RoleBinding> bindings, PrintStream out, boolean withDeleted) {
        Table t = withDeleted
                ? new Table("ID", "ROLE", "SUBJECT", "RESOURCE", "CREATED", "CREATED BY", "DELETED", "DESCRIPTION")
                : new Table("ID", "ROLE", "SUBJECT", "RESOURCE", "CREATED", "CREATED BY", "DESCRIPTION");
        for (RoleBinding b : bindings) {
            String created = b.hasCreateTime() ? TimeText.show(b.getCreateTime()) : "-";
            if (withDeleted) {
                String deleted = !b.getDeleted() ? "-"
                        : (b.hasDeleteTime() ? TimeText.show(b.getDeleteTime()) : "yes")
                                + (b.getDeletedBy().isEmpty() ? "" : " by " + AuditViews.escape(b.getDeletedBy()));
                t.row(AuditViews.escape(b.getId()), role(b.getRole()), subject(b.getSubject()), resource(b.getResource()),
                        created, dash(b.getCreatedBy()), deleted, dash(b.getDescription()));
            } else {
                t.row(AuditViews.escape(b.getId()), role(b.getRole()), subject(b.getSubject()), resource(b.getResource()),
                        created, dash(b.getCreatedBy()), dash(b.getDescription()));
            }
        }
        t.print(out);
    }

    static void binding(RoleBinding b, PrintStream out) {
        out.println("id:          " + AuditViews.escape(b.getId()));
        out.println("role:        " + role(b.getRole()));
        out.println("subject:     " + subject(b.getSubject()));
        out.println("resource:    " + resource(b.getResource()));
        out.println("description: " + dash(b.getDescription()));
        out.println("created:     " + (b.hasCreateTime() ? TimeText.show(b.getCreateTime()) : "-")
                + " by " + dash(b.getCreatedBy()));
        if (b.getDeleted()) {
            out.println("deleted:     " + (b.hasDeleteTime() ? TimeText.show(b.getDeleteTime()) : "yes")
                    + " by " + dash(b.getDeletedBy()));
        }
    }

    /** The decision first (the line scripts look at), then one line per reason. */
    static void decision(AuthorizeResponse r, PrintStream out) {
        out.println(r.getDecision().name());
        for (Reason reason : r.getReasonsList()) {
            out.println("  " + reason(reason));
        }
        for (String error : r.getErrorsList()) {
            out.println("  policy error: " + AuditViews.escape(error));
        }
        out.println("revision: " + r.getRevision());
    }

    static String reason(Reason r) {
        String what = switch (r.getKind()) {
            case ROLE_BINDING -> "role binding " + AuditViews.escape(r.getId());
            case POLICY -> "policy " + AuditViews.escape(r.getId()) + " v" + r.getVersion();
            case DEFAULT_DENY -> "default deny";
            default -> r.getKind().name().toLowerCase(Locale.ROOT) + (r.getId().isEmpty() ? "" : " " + AuditViews.escape(r.getId()));
        };
        return r.getDescription().isEmpty() ? what : what + ": " + AuditViews.escape(r.getDescription());
    }

    /** {@code user:SUB}, {@code group:/payments}, {@code realm-role:R}, {@code client-role:c/r}, {@code client:C}. */
    public static String subject(Subject s) {
        return switch (s.getKindCase()) {
            case USER -> "user:" + AuditViews.escape(s.getUser());
            case GROUP -> "group:" + AuditViews.escape(s.getGroup());
            case REALM_ROLE -> "realm-role:" + AuditViews.escape(s.getRealmRole());
            case CLIENT_ROLE -> "client-role:" + AuditViews.escape(s.getClientRole());
            case CLIENT -> "client:" + AuditViews.escape(s.getClient());
            case KIND_NOT_SET -> "-";
        };
    }

    /** {@code deployment}, {@code namespace:NS}, {@code key:NS/NAME}. */
    public static String resource(Resource r) {
        if (r.getNamespace().isEmpty() && r.getKeyName().isEmpty()) {
            return "deployment";
        }
        if (r.getKeyName().isEmpty()) {
            return "namespace:" + AuditViews.escape(r.getNamespace());
        }
        return "key:" + AuditViews.escape(r.getNamespace()) + "/" + AuditViews.escape(r.getKeyName());
    }

    static String role(Role r) {
        return r == Role.UNRECOGNIZED ? "?" : r.name().toLowerCase(Locale.ROOT);
    }

    private static String dash(String s) {
        return s == null || s.isEmpty() ? "-" : AuditViews.escape(s);
    }

    private static String list(List<String> items) {
        return items.isEmpty() ? "-" : String.join(", ", items.stream().map(AuditViews::escape).toList());
    }
}
