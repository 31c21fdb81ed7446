package io.tpmkms.cli.audit;

import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.connection.KmsConnection;
import io.tpmkms.cli.format.AuditViews;
import io.tpmkms.cli.format.TimeText;
import io.tpmkms.proto.audit.v1.ExportRecordsChunk;
import io.tpmkms.proto.audit.v1.ExportRecordsRequest;
import io.tpmkms.proto.audit.v1.GetCheckpointRequest;
import io.tpmkms.proto.audit.v1.GetCheckpointResponse;
import io.tpmkms.proto.audit.v1.ListCheckpointsRequest;
import io.tpmkms.proto.audit.v1.ListCheckpointsResponse;
import io.tpmkms.proto.audit.v1.QueryRecordsRequest;
import io.tpmkms.proto.audit.v1.QueryRecordsResponse;
import io.tpmkms.proto.audit.v1.VerifyChainRequest;
import io.tpmkms.proto.audit.v1.VerifyChainResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.Iterator;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code tpmkms audit ...}: the audit service's records, chain verification, export and checkpoints. */
@Command(name = "audit", description = {
        "Query, verify and export the audit chain; show its signed checkpoints.",
        "Talks to the audit service at --audit-address (env TPMKMS_AUDIT_ADDRESS, default localhost:9091)."})
public final class AuditCommand implements Callable<Integer> {
    /**
     * The subcommands, in the order the help lists them. Registered by {@code TpmkmsCommand}, not in
     * {@code @Command(subcommands=...)}: a run builds picocli's model of only the one it executes (ADR 0018).
     */
    public static final Class<?>[] SUBCOMMANDS = {
            AuditCommand.Query.class,
            AuditCommand.Verify.class,
            AuditCommand.Export.class,
            AuditCommand.Checkpoints.class,
            AuditCommand.GetCheckpoint.class,
    };


    /** The service's largest page. */
    static final int MAX_PAGE = 1000;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return ExitCodes.USAGE;
    }

    /** A command of the audit service. */
    abstract static class AuditServiceCommand extends KmsCommand {
        @Override
        protected final KmsConnection.Service service() {
            return KmsConnection.Service.AUDIT;
        }

        void checkRange(long from, long to) {
            if (from < 0 || to < 0) {
                throw usage("--from and --to must not be negative");
            }
            if (to != 0 && from > to) {
                throw usage("--from " + from + " is after --to " + to);
            }
        }
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "query", description = {
            "Audit records matching the filters, in ascending sequence.",
            "Shows one page (service default 100) unless --all or --limit is given."})
    static final class Query extends AuditServiceCommand {
        @Option(names = "--since", paramLabel = "ISO8601|DURATION", converter = AuditOptions.TimeOrAgoConverter.class,
                description = "Events at or after this time, or this long ago (1h, 30m, 7d).")
        Instant since;

        @Option(names = "--until", paramLabel = "ISO8601|DURATION", converter = AuditOptions.TimeOrAgoConverter.class,
                description = "Events before this time (or this long ago).")
        Instant until;

        @Option(names = "--principal", paramLabel = "P", description = "Only this principal.")
        String principal;

        @Option(names = "--key", paramLabel = "NAMESPACE/NAME", description = "Only operations on this key.")
        String key;

        @Option(names = "--operation", paramLabel = "NAME", converter = AuditOptions.OperationConverter.class,
                description = "Only this operation: a key service RPC (Encrypt, CreateKey, ...: "
                        + "tpmkms.key.v1.KeyService/NAME) or a full name like scheduler/RotateKey.")
        String operation;

        @Option(names = "--outcome", paramLabel = "CODE", converter = AuditOptions.OutcomeConverter.class,
                description = "Only this outcome: a gRPC status code, OK, NOT_FOUND, PERMISSION_DENIED, ...")
        String outcome;

        @Option(names = "--page-size", paramLabel = "N", description = "Records per page (service default 100, at most 1000).")
        int pageSize;

        @Option(names = "--page-token", paramLabel = "TOKEN", description = "Continue from a previous page.")
        String pageToken;

        @Option(names = "--all", description = "Follow the page tokens to the last matching record.")
        boolean all;

        @Option(names = "--limit", paramLabel = "N", description = "Follow the page tokens until N records are shown.")
        Integer limit;

        @Override
        protected int run(Session s) throws Exception {
            if (pageSize < 0) {
                throw usage("--page-size must not be negative");
            }
            if (limit != null && limit <= 0) {
                throw usage("--limit must be at least 1");
            }
            if (since != null && until != null && since.isAfter(until)) {
                throw usage("--since " + since + " is after --until " + until);
            }
            if (key != null && !validKey(key)) {
                throw usage("--key must be NAMESPACE/NAME, got '" + key + "'");
            }
            QueryRecordsRequest.Builder request = QueryRecordsRequest.newBuilder();
            if (since != null) {
                request.setStartTime(TimeText.toProto(since));
            }
            if (until != null) {
                request.setEndTime(TimeText.toProto(until));
            }
            if (principal != null) {
                request.setPrincipal(principal);
            }
            if (key != null) {
                request.setKey(key);
            }
            if (operation != null) {
                request.setOperation(operation);
            }
            if (outcome != null) {
                request.setOutcome(outcome);
            }
            if (pageToken != null) {
                request.setPageToken(pageToken);
            }
            QueryRecordsResponse.Builder result = QueryRecordsResponse.newBuilder();
            while (true) {
                int size = pageSize;
                if (limit != null) {
                    int remaining = limit - result.getRecordsCount();
                    size = Math.min(pageSize == 0 ? MAX_PAGE : pageSize, remaining);
                }
                QueryRecordsResponse page = s.audit().queryRecords(request.setPageSize(size).build());
                int take = page.getRecordsCount();
                if (limit != null) {
                    take = Math.min(take, limit - result.getRecordsCount());
                }
                result.addAllRecords(page.getRecordsList().subList(0, take));
                // A page cut short (more records than asked for) has no token for the rest.
                result.setNextPageToken(take < page.getRecordsCount() ? "" : page.getNextPageToken());
                String next = result.getNextPageToken();
                boolean wantMore = all || (limit != null && result.getRecordsCount() < limit);
                if (next.isEmpty() || !wantMore) {
                    break;
                }
                if (next.equals(request.getPageToken())) {
                    throw new IllegalStateException("the audit service returned the same page token twice: " + next);
                }
                request.setPageToken(next);
            }
            if (s.json()) {
                s.printJson(result);
            } else {
                AuditViews.recordTable(result.getRecordsList(), s.out());
                if (!result.getNextPageToken().isEmpty()) {
                    s.err().println("more records: --page-token " + result.getNextPageToken() + " (or --all)");
                }
            }
            return ExitCodes.OK;
        }

        private static boolean validKey(String key) {
            int slash = key.indexOf('/');
            return slash > 0 && slash < key.length() - 1 && key.indexOf('/', slash + 1) < 0;
        }
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "verify", description = {
            "Have the audit service recompute the hash chain and check the checkpoints (and the TPM NV index).",
            "Exit 0 and 'chain valid' when intact; exit 1 and 'chain BROKEN at sequence N: ...' on stderr when not."})
    static final class Verify extends AuditServiceCommand {
        @Option(names = "--from", paramLabel = "N", description = "First sequence to check (default: 1).")
        long from;

        @Option(names = "--to", paramLabel = "N", description = "Last sequence to check (default: the head).")
        long to;

        @Override
        protected int run(Session s) throws Exception {
            checkRange(from, to);
            VerifyChainResponse v = s.audit().verifyChain(
                    VerifyChainRequest.newBuilder().setFromSequence(from).setToSequence(to).build());
            if (s.json()) {
                s.printJson(v);
            } else {
                AuditViews.verification(v, s.out());
            }
            if (v.getValid()) {
                if (!s.json()) {
                    s.out().println("chain valid");
                }
                return ExitCodes.OK;
            }
            s.out().flush();
            String problem = v.getProblem().isBlank() ? "(no detail given)" : AuditViews.escape(v.getProblem());
            s.err().println(v.getFirstBrokenSequence() == 0
                    ? "chain BROKEN: " + problem
                    : "chain BROKEN at sequence " + Long.toUnsignedString(v.getFirstBrokenSequence()) + ": " + problem);
            return ExitCodes.FAILED;
        }
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "export", description = {
            "Write the records of a range as JSON Lines (one record per line, docs/audit.md), exactly as the "
                    + "audit service sends them.",
            "A file is written under a temporary name and renamed when complete. --timeout covers the whole export."})
    static final class Export extends AuditServiceCommand {
        @Option(names = "--from", paramLabel = "N", description = "First sequence (default: 1).")
        long from;

        @Option(names = "--to", paramLabel = "N", description = "Last sequence (default: the head).")
        long to;

        @Option(names = "--out", paramLabel = "FILE", description = "Output file, or - for stdout (default).")
        String out;

        @Override
        protected int run(Session s) throws Exception {
            checkRange(from, to);
            ExportRecordsRequest request = ExportRecordsRequest.newBuilder()
                    .setFromSequence(from).setToSequence(to).build();
            if (Session.isStdio(out)) {
                OutputStream stdout = s.stdout();
                copy(s.audit().exportRecords(request), stdout);
                stdout.flush();
                return ExitCodes.OK;
            }
            Path target = Path.of(out).toAbsolutePath();
            Path temp = Files.createTempFile(target.getParent(), "." + target.getFileName() + ".", ".part");
            long lines;
            try {
                try (OutputStream file = Files.newOutputStream(temp)) {
                    lines = copy(s.audit().exportRecords(request), file);
                }
                try {
                    Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(temp);
            }
            s.err().println("exported " + lines + (lines == 1 ? " record" : " records") + " to " + out);
            return ExitCodes.OK;
        }

        /** Writes every chunk as received; returns the number of lines (records). */
        private static long copy(Iterator<ExportRecordsChunk> chunks, OutputStream to) throws IOException {
            long lines = 0;
            while (chunks.hasNext()) {
                ExportRecordsChunk chunk = chunks.next();
                chunk.getJsonl().writeTo(to);
                for (int i = 0; i < chunk.getJsonl().size(); i++) {
                    if (chunk.getJsonl().byteAt(i) == '\n') {
                        lines++;
                    }
                }
            }
            return lines;
        }
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "checkpoints", description = "List the signed checkpoints of the chain head.")
    static final class Checkpoints extends AuditServiceCommand {
        @Option(names = "--page-size", paramLabel = "N", description = "Checkpoints per page (service default 100, at most 1000).")
        int pageSize;

        @Option(names = "--page-token", paramLabel = "TOKEN", description = "Continue from a previous page.")
        String pageToken;

        @Option(names = "--all", description = "Follow the page tokens and list every checkpoint.")
        boolean all;

        @Override
        protected int run(Session s) throws Exception {
            if (pageSize < 0) {
                throw usage("--page-size must not be negative");
            }
            ListCheckpointsRequest.Builder request = ListCheckpointsRequest.newBuilder().setPageSize(pageSize);
            if (pageToken != null) {
                request.setPageToken(pageToken);
            }
            ListCheckpointsResponse page = s.audit().listCheckpoints(request.build());
            ListCheckpointsResponse.Builder result = page.toBuilder();
            while (all && !page.getNextPageToken().isEmpty()) {
                if (page.getNextPageToken().equals(request.getPageToken())) {
                    throw new IllegalStateException("the audit service returned the same page token twice: "
                            + page.getNextPageToken());
                }
                page = s.audit().listCheckpoints(request.setPageToken(page.getNextPageToken()).build());
                result.addAllCheckpoints(page.getCheckpointsList()).setNextPageToken(page.getNextPageToken());
            }
            if (s.json()) {
                s.printJson(result);
            } else {
                AuditViews.checkpointTable(result.getCheckpointsList(), s.out());
                if (!result.getNextPageToken().isEmpty()) {
                    s.err().println("more checkpoints: --page-token " + result.getNextPageToken() + " (or --all)");
                }
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "checkpoint", description = "Show one checkpoint in full, with the signing key (PEM) and the anchor value.")
    static final class GetCheckpoint extends AuditServiceCommand {
        @Parameters(paramLabel = "SEQ", arity = "0..1", defaultValue = "0",
                description = "The checkpoint's sequence; 0 or absent: the latest.")
        long sequence;

        @Override
        protected int run(Session s) throws Exception {
            if (sequence < 0) {
                throw usage("SEQ must not be negative");
            }
            GetCheckpointResponse response = s.audit().getCheckpoint(
                    GetCheckpointRequest.newBuilder().setSequence(sequence).build());
            if (s.json()) {
                s.printJson(response);
            } else {
                AuditViews.checkpoint(response.getCheckpoint(), s.out());
            }
            return ExitCodes.OK;
        }
    }
}
