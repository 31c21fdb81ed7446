package io.tpmkms.cli.nodes;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.proto.key.v1.GetNodeRequest;
import io.tpmkms.proto.key.v1.GetNodeResponse;
import io.tpmkms.proto.key.v1.ListNodesRequest;
import io.tpmkms.proto.key.v1.ListNodesResponse;
import io.tpmkms.proto.key.v1.RevokeNodeRequest;
import io.tpmkms.proto.key.v1.RevokeNodeResponse;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code tpmkms nodes ...}: the administrator's view of enrolled nodes (ADR 0038). Enrolling,
 * attesting and releasing keys happen on the node itself, with {@code tpmkms agent}.
 */
@Command(name = "nodes", description = "List, inspect and revoke the nodes enrolled with their TPM "
        + "('tpmkms agent' enrolls and attests them).")
public final class NodesCommand implements Callable<Integer> {
    /**
     * The subcommands, in the order the help lists them. Registered by {@code TpmkmsCommand}, not in
     * {@code @Command(subcommands=...)}: a run builds picocli's model of only the one it executes (ADR 0018).
     */
    public static final Class<?>[] SUBCOMMANDS = {
            NodesCommand.List.class,
            NodesCommand.Get.class,
            NodesCommand.Revoke.class,
    };

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return ExitCodes.USAGE;
    }

    @Command(name = "list", description = "List the nodes, ordered by name.")
    static final class List extends KmsCommand {
        @Option(names = "--page-size", paramLabel = "N", description = "Nodes per page (service default).")
        int pageSize;

        @Option(names = "--page-token", paramLabel = "TOKEN", description = "Continue from a previous page.")
        String pageToken;

        @Option(names = "--all", description = "Follow the page tokens and list every node.")
        boolean all;

        @Override
        protected int run(Session s) throws Exception {
            if (pageSize < 0) {
                throw usage("--page-size must not be negative");
            }
            ListNodesRequest.Builder request = ListNodesRequest.newBuilder().setPageSize(pageSize);
            if (pageToken != null) {
                request.setPageToken(pageToken);
            }
            ListNodesResponse page = s.keys().listNodes(request.build());
            ListNodesResponse.Builder result = page.toBuilder();
            while (all && !page.getNextPageToken().isEmpty()) {
                page = s.keys().listNodes(request.setPageToken(page.getNextPageToken()).build());
                result.addAllNodes(page.getNodesList()).setNextPageToken(page.getNextPageToken());
            }
            if (s.json()) {
                s.printJson(result);
            } else {
                NodeViews.nodeTable(result.getNodesList(), s.out());
                if (!result.getNextPageToken().isEmpty()) {
                    s.err().println("more nodes: --page-token " + result.getNextPageToken() + " (or --all)");
                }
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "get", description = "Show a node: its state, EK certificate, TPM, AK, PCRs and golden values.")
    static final class Get extends KmsCommand {
        @Parameters(paramLabel = "NAME", description = "The node's name.")
        String name;

        @Override
        protected int run(Session s) throws Exception {
            GetNodeResponse response = s.keys().getNode(GetNodeRequest.newBuilder().setName(name).build());
            if (s.json()) {
                s.printJson(response);
            } else {
                NodeViews.node(response.getNode(), s.out());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "revoke", description = {"Revoke a node: no more attestations or key releases. Final: "
            + "a revoked node's name cannot be enrolled again."})
    static final class Revoke extends KmsCommand {
        @Parameters(paramLabel = "NAME", description = "The node's name.")
        String name;

        @Override
        protected int run(Session s) throws Exception {
            RevokeNodeResponse response = s.keys().revokeNode(RevokeNodeRequest.newBuilder().setName(name).build());
            if (s.json()) {
                s.printJson(response);
            } else {
                NodeViews.node(response.getNode(), s.out());
            }
            return ExitCodes.OK;
        }
    }
}
