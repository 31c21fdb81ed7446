package io.tpmkms.cli.audit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.JsonFormat;
import io.grpc.Status;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.proto.audit.v1.*;
import java.io.ByteArrayOutputStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class AuditCommandTest extends CliHarness {

    static final Timestamp T2030 = Timestamp.newBuilder().setSeconds(1_895_486_400L).setNanos(123_456_789).build(); // 2030-01-24T12:00:00.123456789Z
    static final byte[] HASH = HexFormat.of().parseHex("6747aa43e9c87b0b5153e4b61a10871fbde8dbed1bc89cb7bedf1c38fb475450");
    static final byte[] NV = HexFormat.of().parseHex("b131cb2913be8900eeea52bb5995db4b7cd21b396673300e1f04c09e90a21574");
    static final String PEM = "-----BEGIN PUBLIC KEY-----\n"
            + "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtestkeytestkeytestkeytestkeyte\n"
            + "stkeytestkeytestkeytestkeytestkeytestkeytestkeytestkeyAAAAAAAAAA==\n"
            + "-----END PUBLIC KEY-----\n";

    static AuditRecord record(long sequence, String principal, String operation, String key, int version,
            String outcome, String reason, String requestId) {
        return AuditRecord.newBuilder()
                .setSequence(sequence)
                .setEvent(AuditEvent.newBuilder()
                        .setEventId("0b5c6a6e-3f3c-4d38-9a39-2f8e2b1b6a0" + sequence)
                        .setTime(T2030).setService("key-service").setPrincipal(principal).setClient("127.0.0.1:50412")
                        .setOperation(operation).setKey(key).setKeyVersion(version)
                        .setDecision(Decision.NOT_EVALUATED).setOutcome(outcome).setOutcomeReason(reason)
                        .setRequestId(requestId))
                .setAppendTime(T2030)
                .setPreviousHash(ByteString.copyFrom(new byte[32]))
                .setHash(ByteString.copyFrom(HASH))
                .build();
    }

    static AuditRecord record(long sequence) {
        return record(sequence, "alice", "tpmkms.key.v1.KeyService/Encrypt", "payments/orders", 3, "OK", "", "req-" + sequence);
    }

    static Checkpoint checkpoint(long sequence, String anchor) {
        return Checkpoint.newBuilder()
                .setSequence(sequence).setHeadHash(ByteString.copyFrom(HASH)).setTime(T2030)
                .setSignature(ByteString.copyFrom(new byte[] {0x30, 0x45, 0x02, 0x21}))
                .setSigningKeyPem(PEM).setAnchor(anchor)
                .setAnchorValue(anchor.equals("tpm-nv") ? ByteString.copyFrom(NV) : ByteString.EMPTY)
                .build();
    }

    static QueryRecordsResponse page(String next, AuditRecord... records) {
        return QueryRecordsResponse.newBuilder().addAllRecords(List.of(records)).setNextPageToken(next).build();
    }

    // ---------------------------------------------------------------------------------- query

    @Test
    void query_withEveryFilter_sendsTheRequestFields() {
        Result r = run("audit", "query", "--since", "2030-01-24T12:00:00Z", "--until", "2030-01-24T14:00:00+01:00",
                "--principal", "alice", "--key", "payments/orders", "--operation", "Encrypt", "--outcome", "not_found",
                "--page-size", "20");

        assertEquals(0, r.exitCode(), r::toString);
        QueryRecordsRequest req = audit.only(QueryRecordsRequest.class);
        assertEquals(1_895_486_400L, req.getStartTime().getSeconds());
        assertEquals(1_895_486_400L + 3_600, req.getEndTime().getSeconds());
        assertEquals("alice", req.getPrincipal());
        assertEquals("payments/orders", req.getKey());
        assertEquals("tpmkms.key.v1.KeyService/Encrypt", req.getOperation());
        assertEquals("NOT_FOUND", req.getOutcome());
        assertEquals(20, req.getPageSize());
        assertEquals("", req.getPageToken());
        assertTrue(service.requests().isEmpty(), "nothing goes to the key service");
    }

    @Test
    void query_withoutFilters_leavesThemUnset() {
        Result r = run("audit", "query");

        assertEquals(0, r.exitCode(), r::toString);
        QueryRecordsRequest req = audit.only(QueryRecordsRequest.class);
        assertEquals(QueryRecordsRequest.getDefaultInstance(), req);
        assertFalse(req.hasStartTime());
        assertFalse(req.hasEndTime());
    }

    @Test
    void query_shortOperationNames_areExpandedCaseInsensitively() {
        Result r = run("audit", "query", "--operation", "generatedatakey");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals("tpmkms.key.v1.KeyService/GenerateDataKey", audit.only(QueryRecordsRequest.class).getOperation());
    }

    @Test
    void query_fullOperationName_isSentAsIs() {
        Result r = run("audit", "query", "--operation", "scheduler/RotateKey");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals("scheduler/RotateKey", audit.only(QueryRecordsRequest.class).getOperation());
    }

    @Test
    void query_sinceAsDuration_isThatLongAgo() {
        Instant before = Instant.now();
        Result r = run("audit", "query", "--since", "1h", "--until", "30m");
        Instant after = Instant.now();

        assertEquals(0, r.exitCode(), r::toString);
        QueryRecordsRequest req = audit.only(QueryRecordsRequest.class);
        long start = req.getStartTime().getSeconds();
        assertTrue(start >= before.minus(Duration.ofHours(1)).getEpochSecond()
                && start <= after.minus(Duration.ofHours(1)).getEpochSecond(), req::toString);
        long end = req.getEndTime().getSeconds();
        assertTrue(end >= before.minus(Duration.ofMinutes(30)).getEpochSecond()
                && end <= after.minus(Duration.ofMinutes(30)).getEpochSecond(), req::toString);
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource(delimiter = '|', quoteCharacter = '"', value = {
            "--operation | Encrpyt   | unknown operation 'Encrpyt'",
            "--outcome   | FINE      | unknown outcome 'FINE'",
            "--since     | yesterday | 'yesterday' is neither an ISO-8601 time",
            "--until     | 2030-13-01T00:00:00Z | is neither an ISO-8601 time",
            "--key       | orders    | --key must be NAMESPACE/NAME",
            "--page-size | -1        | --page-size must not be negative",
            "--limit     | 0         | --limit must be at least 1",
    })
    void query_badOption_isUsageErrorAndSendsNothing(String option, String value, String message) {
        Result r = run("audit", "query", option, value);

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains(message), r::toString);
        assertTrue(audit.requests().isEmpty(), audit.requests()::toString);
    }

    @Test
    void query_unknownOperation_listsTheKeyServiceRpcs() {
        Result r = run("audit", "query", "--operation", "Encrpyt");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("Encrypt, Decrypt"), r::toString);
    }

    @Test
    void query_sinceAfterUntil_isUsageError() {
        Result r = run("audit", "query", "--since", "2030-02-01T00:00:00Z", "--until", "2030-01-01T00:00:00Z");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("is after --until"), r::toString);
        assertTrue(audit.requests().isEmpty());
    }

    @Test
    void query_printsAlignedTable_withShortOperationsAndDashesForEmpty() {
        audit.respond(page("",
                record(1, "alice", "tpmkms.key.v1.KeyService/Encrypt", "payments/orders", 3, "OK", "", "req-1"),
                record(2, "bob", "scheduler/RotateKey", "", 0, "NOT_FOUND", "KEY_NOT_FOUND", ""),
                record(3, "", "tpmkms.policy.v1.PolicyService/Evaluate", "a/b", 12, "PERMISSION_DENIED",
                        "POLICY_DENIED", "req-3")));

        Result r = run("audit", "query");

        assertEquals(0, r.exitCode(), r::toString);
        List<String> lines = r.stdout().lines().toList();
        assertEquals(4, lines.size(), r::toString);
        assertTrue(lines.get(0).matches(
                "SEQ +TIME +PRINCIPAL +OPERATION +KEY +VERSION +OUTCOME +REASON +REQUEST ID"), r::toString);
        assertTrue(lines.get(1).matches(
                "1 +2030-01-24T12:00:00Z +alice +Encrypt +payments/orders +3 +OK +- +req-1"), r::toString);
        assertTrue(lines.get(2).matches(
                "2 +2030-01-24T12:00:00Z +bob +scheduler/RotateKey +- +- +NOT_FOUND +KEY_NOT_FOUND +-"), r::toString);
        assertTrue(lines.get(3).matches(
                "3 +2030-01-24T12:00:00Z +- +tpmkms.policy.v1.PolicyService/Evaluate +a/b +12 +PERMISSION_DENIED"
                        + " +POLICY_DENIED +req-3"), r::toString);
        int column = lines.get(0).indexOf("OPERATION");
        for (String line : lines.subList(1, lines.size())) {
            assertTrue(Character.isWhitespace(line.charAt(column - 1)) && !Character.isWhitespace(line.charAt(column)),
                    "aligned:\n" + r.stdout());
        }
        assertEquals("", r.stderr());
    }

    @Test
    void query_table_escapesControlCharactersFromRecords() {
        audit.respond(page("", record(1, "eve\u001b[2J\nfake row", "tpmkms.key.v1.KeyService/Encrypt", "a/b", 1,
                "OK", "", "r\u202e1")));

        Result r = run("audit", "query");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(2, r.stdout().lines().count(), r::toString);
        assertFalse(r.stdout().contains("\u001b"), r::toString);
        assertFalse(r.stdout().contains("\u202e"), r::toString);
        assertTrue(r.stdout().contains("eve\\u001b[2J\\u000afake row"), r::toString);
        assertTrue(r.stdout().contains("r\\u202e1"), r::toString);
    }

    @Test
    void query_onePage_printsTheNextTokenOnStderr() {
        audit.respond(page("tok-2", record(1), record(2)), page("", record(3)));

        Result r = run("audit", "query", "--page-size", "2");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(1, audit.requests(QueryRecordsRequest.class).size());
        assertEquals(3, r.stdout().lines().count(), r::toString);
        assertEquals("more records: --page-token tok-2 (or --all)\n", r.stderr());
    }

    @Test
    void query_pageToken_isSent() {
        Result r = run("audit", "query", "--page-token", "tok-7");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals("tok-7", audit.only(QueryRecordsRequest.class).getPageToken());
    }

    @Test
    void query_all_followsTheTokens_keepingTheFilters() {
        audit.respond(page("tok-2", record(1), record(2)), page("tok-3", record(3), record(4)), page("", record(5)));

        Result r = run("audit", "query", "--all", "--principal", "alice", "--operation", "Sign", "--page-size", "2");

        assertEquals(0, r.exitCode(), r::toString);
        List<QueryRecordsRequest> reqs = audit.requests(QueryRecordsRequest.class);
        assertEquals(List.of("", "tok-2", "tok-3"), reqs.stream().map(QueryRecordsRequest::getPageToken).toList());
        for (QueryRecordsRequest q : reqs) {
            assertEquals("alice", q.getPrincipal());
            assertEquals("tpmkms.key.v1.KeyService/Sign", q.getOperation());
            assertEquals(2, q.getPageSize());
        }
        assertEquals(List.of("1", "2", "3", "4", "5"),
                r.stdout().lines().skip(1).map(l -> l.split(" +")[0]).toList(), r::toString);
        assertEquals("", r.stderr());
    }

    @Test
    void query_limit_stopsAfterNRecords_askingOnlyForWhatIsLeft() {
        audit.respond(page("tok-2", record(1), record(2)), page("tok-3", record(3)), page("", record(4)));

        Result r = run("audit", "query", "--limit", "3", "--page-size", "2");

        assertEquals(0, r.exitCode(), r::toString);
        List<QueryRecordsRequest> reqs = audit.requests(QueryRecordsRequest.class);
        assertEquals(List.of(2, 1), reqs.stream().map(QueryRecordsRequest::getPageSize).toList());
        assertEquals(List.of("", "tok-2"), reqs.stream().map(QueryRecordsRequest::getPageToken).toList());
        assertEquals(List.of("1", "2", "3"), r.stdout().lines().skip(1).map(l -> l.split(" +")[0]).toList(), r::toString);
        assertEquals("more records: --page-token tok-3 (or --all)\n", r.stderr());
    }

    @Test
    void query_limitWithoutPageSize_asksForTheLimit() {
        Result r = run("audit", "query", "--limit", "7");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(7, audit.only(QueryRecordsRequest.class).getPageSize());
    }

    @Test
    void query_limitWinsOverAll_andCutsAnOverlongPage() {
        audit.respond(page("tok-2", record(1), record(2), record(3)));

        Result r = run("audit", "query", "--limit", "2", "--all");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(1, audit.requests(QueryRecordsRequest.class).size());
        assertEquals(3, r.stdout().lines().count(), r::toString);
        // the cut page's token would skip record 3: not offered
        assertEquals("", r.stderr());
    }

    @Test
    void query_json_printsAllRecordsInOneResponse() throws Exception {
        audit.respond(page("tok-2", record(1)), page("", record(2)));

        Result r = run("audit", "query", "--all", "--json");

        assertEquals(0, r.exitCode(), r::toString);
        QueryRecordsResponse.Builder printed = QueryRecordsResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), printed);
        assertEquals(List.of(record(1), record(2)), printed.getRecordsList());
        assertEquals("", printed.getNextPageToken());
        assertTrue(r.stdout().contains("\"principal\": \"alice\""), r::toString);
        assertTrue(r.stdout().contains("\"operation\": \"tpmkms.key.v1.KeyService/Encrypt\""), r::toString);
    }

    // ---------------------------------------------------------------------------------- verify

    @Test
    void verify_validChain_printsSummary_exits0() {
        audit.respond(VerifyChainResponse.newBuilder().setValid(true).setRecordsChecked(1234).setCheckpointsChecked(12)
                .setHeadSequence(1234).setHeadHash(ByteString.copyFrom(HASH)).build());

        Result r = run("audit", "verify", "--from", "5", "--to", "1234");

        assertEquals(ExitCodes.OK, r.exitCode(), r::toString);
        VerifyChainRequest req = audit.only(VerifyChainRequest.class);
        assertEquals(5, req.getFromSequence());
        assertEquals(1234, req.getToSequence());
        assertEquals("""
                records checked:      1234
                checkpoints checked:  12
                head sequence:        1234
                head hash:            6747aa43e9c87b0b5153e4b61a10871fbde8dbed1bc89cb7bedf1c38fb475450
                chain valid
                """, r.stdout());
        assertEquals("", r.stderr());
    }

    @Test
    void verify_withoutRange_checksTheWholeChain() {
        audit.respond(VerifyChainResponse.newBuilder().setValid(true).build());

        Result r = run("audit", "verify");

        assertEquals(ExitCodes.OK, r.exitCode(), r::toString);
        assertEquals(VerifyChainRequest.getDefaultInstance(), audit.only(VerifyChainRequest.class));
    }

    @Test
    void verify_brokenChain_namesTheSequenceAndProblemOnStderr_exits1() {
        audit.respond(VerifyChainResponse.newBuilder().setValid(false).setRecordsChecked(17).setCheckpointsChecked(1)
                .setFirstBrokenSequence(17)
                .setProblem("record 17 was changed: its hash is not SHA-256(previous_hash | canonical record)")
                .setHeadSequence(40).setHeadHash(ByteString.copyFrom(HASH)).build());

        Result r = run("audit", "verify");

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertEquals("chain BROKEN at sequence 17: record 17 was changed: its hash is not "
                + "SHA-256(previous_hash | canonical record)\n", r.stderr());
        assertTrue(r.stdout().contains("records checked:      17\n"), r::toString);
        assertFalse(r.stdout().contains("valid"), r::toString);
    }

    @Test
    void verify_brokenWithoutSequence_saysBrokenAndTheProblem() {
        audit.respond(VerifyChainResponse.newBuilder().setValid(false).setProblem("the TPM NV index holds X").build());

        Result r = run("audit", "verify");

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertEquals("chain BROKEN: the TPM NV index holds X\n", r.stderr());
    }

    @Test
    void verify_json_printsTheResponse_andKeepsTheExitCode() throws Exception {
        VerifyChainResponse broken = VerifyChainResponse.newBuilder().setValid(false).setRecordsChecked(3)
                .setFirstBrokenSequence(2).setProblem("record 2 is missing (deleted): the chain has a gap")
                .setHeadSequence(3).setHeadHash(ByteString.copyFrom(HASH)).build();
        audit.respond(broken);

        Result r = run("audit", "verify", "--json");

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        VerifyChainResponse.Builder printed = VerifyChainResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), printed);
        assertEquals(broken, printed.build());
        assertEquals("chain BROKEN at sequence 2: record 2 is missing (deleted): the chain has a gap\n", r.stderr());
    }

    @Test
    void verify_jsonValid_exits0_withOnlyJsonOnStdout() throws Exception {
        audit.respond(VerifyChainResponse.newBuilder().setValid(true).setRecordsChecked(9).build());

        Result r = run("audit", "verify", "--json");

        assertEquals(ExitCodes.OK, r.exitCode(), r::toString);
        VerifyChainResponse.Builder printed = VerifyChainResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), printed);
        assertTrue(printed.getValid());
        assertEquals(9, printed.getRecordsChecked());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"'--from,10,--to,5', is after --to", "'--from,-1', must not be negative"})
    void verify_badRange_isUsageError(String args, String message) {
        List<String> all = new java.util.ArrayList<>(List.of("audit", "verify"));
        all.addAll(List.of(args.split(",")));

        Result r = run(all.toArray(String[]::new));

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains(message), r::toString);
        assertTrue(audit.requests().isEmpty());
    }

    // ---------------------------------------------------------------------------------- export

    /** Bytes that any text re-encoding, line-ending or trimming would change. */
    static byte[][] awkwardChunks() {
        return new byte[][] {
                "{\"sequence\":1,\"principal\":\"j\u00fcrgen\"}\n{\"sequence\":2}\r\n".getBytes(StandardCharsets.UTF_8),
                new byte[] {'{', (byte) 0xff, (byte) 0xfe, 0, '}', '\n'},
                "{\"sequence\":4}   \n".getBytes(StandardCharsets.UTF_8),
        };
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            all.writeBytes(p);
        }
        return all.toByteArray();
    }

    @Test
    void export_toStdout_writesExactlyTheChunkBytes() {
        audit.exportChunks(awkwardChunks());

        Result r = run("audit", "export", "--from", "1", "--to", "4");

        assertEquals(0, r.exitCode(), r::toString);
        assertArrayEquals(concat(awkwardChunks()), r.stdoutBytes());
        ExportRecordsRequest req = audit.only(ExportRecordsRequest.class);
        assertEquals(1, req.getFromSequence());
        assertEquals(4, req.getToSequence());
        assertEquals("", r.stderr());
    }

    @Test
    void export_toFile_writesExactlyTheChunkBytes_andCountsRecords(@TempDir Path dir) throws Exception {
        audit.exportChunks(awkwardChunks());
        Path out = dir.resolve("audit.jsonl");

        Result r = run("audit", "export", "--out", out.toString());

        assertEquals(0, r.exitCode(), r::toString);
        assertArrayEquals(concat(awkwardChunks()), Files.readAllBytes(out));
        assertEquals(ExportRecordsRequest.getDefaultInstance(), audit.only(ExportRecordsRequest.class));
        assertEquals("", r.stdout());
        assertEquals("exported 4 records to " + out + "\n", r.stderr());
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(out), files.toList());
        }
        if (Files.getFileStore(out).supportsFileAttributeView("posix")) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
        }
    }

    @Test
    void export_manyLargeChunks_arriveInOrder(@TempDir Path dir) throws Exception {
        byte[][] chunks = new byte[40][];
        for (int i = 0; i < chunks.length; i++) {
            String line = "{\"sequence\":" + (i + 1) + ",\"pad\":\"" + "x".repeat(64 * 1024) + "\"}\n";
            chunks[i] = line.getBytes(StandardCharsets.UTF_8);
        }
        audit.exportChunks(chunks);
        Path out = dir.resolve("big.jsonl");

        Result r = run("audit", "export", "--out", out.toString());

        assertEquals(0, r.exitCode(), r::toString);
        assertArrayEquals(concat(chunks), Files.readAllBytes(out));
    }

    @Test
    void export_failingMidStream_keepsTheOldFile_andLeavesNoPartialFile(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("audit.jsonl");
        Files.writeString(out, "previous export\n");
        audit.exportChunks(awkwardChunks());
        audit.fail(Status.Code.UNAVAILABLE, "the audit database is unavailable; retry later", "DATABASE_UNAVAILABLE");
        audit.failExportAfterChunks();

        Result r = run("audit", "export", "--out", out.toString());

        assertEquals(ExitCodes.UNREACHABLE, r.exitCode(), r::toString);
        assertEquals("error: the audit database is unavailable; retry later (UNAVAILABLE, reason DATABASE_UNAVAILABLE)\n",
                r.stderr());
        assertEquals("previous export\n", Files.readString(out));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(out), files.toList());
        }
    }

    @Test
    void export_badRange_isUsageError() {
        Result r = run("audit", "export", "--from", "9", "--to", "3");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(audit.requests().isEmpty());
    }

    // ---------------------------------------------------------------------------------- checkpoints

    @Test
    void checkpoints_printsTableWithShortenedHashes() {
        audit.respond(ListCheckpointsResponse.newBuilder()
                .addCheckpoints(checkpoint(1000, "tpm-nv")).addCheckpoints(checkpoint(2000, "software")).build());

        Result r = run("audit", "checkpoints", "--page-size", "10");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(10, audit.only(ListCheckpointsRequest.class).getPageSize());
        assertEquals("""
                SEQ   TIME                  ANCHOR    HEAD HASH
                1000  2030-01-24T12:00:00Z  tpm-nv    6747aa43e9c87b0b...
                2000  2030-01-24T12:00:00Z  software  6747aa43e9c87b0b...
                """, r.stdout());
        assertEquals("", r.stderr());
    }

    @Test
    void checkpoints_onePage_printsTheNextToken_all_followsThem() {
        audit.respond(ListCheckpointsResponse.newBuilder().addCheckpoints(checkpoint(1, "software")).setNextPageToken("c2").build());
        Result one = run("audit", "checkpoints");
        assertEquals(0, one.exitCode(), one::toString);
        assertEquals("more checkpoints: --page-token c2 (or --all)\n", one.stderr());
        assertEquals(1, audit.requests(ListCheckpointsRequest.class).size());

        audit.reset();
        audit.respond(
                ListCheckpointsResponse.newBuilder().addCheckpoints(checkpoint(1, "software")).setNextPageToken("c2").build(),
                ListCheckpointsResponse.newBuilder().addCheckpoints(checkpoint(2, "software")).setNextPageToken("c3").build(),
                ListCheckpointsResponse.newBuilder().addCheckpoints(checkpoint(3, "software")).build());
        Result all = run("audit", "checkpoints", "--all", "--page-size", "1");

        assertEquals(0, all.exitCode(), all::toString);
        List<ListCheckpointsRequest> reqs = audit.requests(ListCheckpointsRequest.class);
        assertEquals(List.of("", "c2", "c3"), reqs.stream().map(ListCheckpointsRequest::getPageToken).toList());
        assertTrue(reqs.stream().allMatch(q -> q.getPageSize() == 1), reqs::toString);
        assertEquals(List.of("1", "2", "3"), all.stdout().lines().skip(1).map(l -> l.split(" +")[0]).toList(), all::toString);
        assertEquals("", all.stderr());
    }

    @Test
    void checkpoints_json_printsTheFullCheckpoints() throws Exception {
        audit.respond(ListCheckpointsResponse.newBuilder().addCheckpoints(checkpoint(1000, "tpm-nv")).build());

        Result r = run("audit", "checkpoints", "--json");

        assertEquals(0, r.exitCode(), r::toString);
        ListCheckpointsResponse.Builder printed = ListCheckpointsResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), printed);
        assertEquals(List.of(checkpoint(1000, "tpm-nv")), printed.getCheckpointsList());
    }

    @Test
    void checkpoint_withoutSequence_asksForTheLatest_andShowsEverything() {
        audit.respond(GetCheckpointResponse.newBuilder().setCheckpoint(checkpoint(1000, "tpm-nv")).build());

        Result r = run("audit", "checkpoint");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(0, audit.only(GetCheckpointRequest.class).getSequence());
        assertEquals("""
                sequence:      1000
                time:          2030-01-24T12:00:00.123456789Z
                anchor:        tpm-nv
                head hash:     6747aa43e9c87b0b5153e4b61a10871fbde8dbed1bc89cb7bedf1c38fb475450
                anchor value:  b131cb2913be8900eeea52bb5995db4b7cd21b396673300e1f04c09e90a21574
                signature:     30450221
                signing key:
                """ + PEM, r.stdout());
    }

    @Test
    void checkpoint_bySequence_softwareAnchor_hasNoAnchorValue() {
        audit.respond(GetCheckpointResponse.newBuilder().setCheckpoint(checkpoint(42, "software")).build());

        Result r = run("audit", "checkpoint", "42");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(42, audit.only(GetCheckpointRequest.class).getSequence());
        assertTrue(r.stdout().contains("anchor value:  -\n"), r::toString);
        assertTrue(r.stdout().contains("anchor:        software\n"), r::toString);
    }

    @Test
    void checkpoint_json_printsTheResponse() throws Exception {
        GetCheckpointResponse response = GetCheckpointResponse.newBuilder().setCheckpoint(checkpoint(7, "tpm-nv")).build();
        audit.respond(response);

        Result r = run("audit", "checkpoint", "7", "--json");

        assertEquals(0, r.exitCode(), r::toString);
        GetCheckpointResponse.Builder printed = GetCheckpointResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), printed);
        assertEquals(response, printed.build());
    }

    @Test
    void checkpoint_notFound_exits4() {
        audit.fail(Status.Code.NOT_FOUND, "no checkpoint yet", "CHECKPOINT_NOT_FOUND");

        Result r = run("audit", "checkpoint");

        assertEquals(ExitCodes.NOT_FOUND, r.exitCode(), r::toString);
        assertEquals("error: no checkpoint yet (NOT_FOUND, reason CHECKPOINT_NOT_FOUND)\n", r.stderr());
        assertEquals("", r.stdout());
    }

    // ---------------------------------------------------------------------------------- errors, connection

    @ParameterizedTest(name = "{0} {1} -> exit {2}")
    @CsvSource({
            "query, PERMISSION_DENIED, 5",
            "query, UNAUTHENTICATED, 5",
            "query, INVALID_ARGUMENT, 1",
            "query, INTERNAL, 1",
            "query, UNAVAILABLE, 3",
            "verify, UNAVAILABLE, 3",
            "verify, INTERNAL, 1",
            "export, PERMISSION_DENIED, 5",
            "export, INVALID_ARGUMENT, 1",
            "checkpoints, INVALID_ARGUMENT, 1",
            "checkpoints, UNAVAILABLE, 3",
            "checkpoint, NOT_FOUND, 4",
    })
    void statusCode_mapsToDocumentedExitCode(String command, Status.Code code, int exit) {
        audit.fail(code, "refused", "SOME_REASON");

        Result r = run("audit", command);

        assertEquals(exit, r.exitCode(), r::toString);
        // UNAUTHENTICATED says what to do; the token of these tests comes from TPMKMS_TOKEN.
        String hint = code == Status.Code.UNAUTHENTICATED
                ? "; the token comes from TPMKMS_TOKEN: set a valid one, or unset it and run 'tpmkms login'"
                : code == Status.Code.PERMISSION_DENIED
                ? "; reading the audit trail needs the auditor role: ask an admin for a binding"
                        + " (tpmkms bindings create --role auditor --user <subject> --deployment)"
                        + " or the realm role tpmkms-auditor"
                : "";
        assertEquals("error: refused (" + code + ", reason SOME_REASON)" + hint + "\n", r.stderr());
    }

    @Test
    void query_permissionDenied_saysTheAuditorRoleIsNeeded_exits5() {
        audit.fail(Status.Code.PERMISSION_DENIED, "permission denied: reading the audit trail (QueryAuditRecords) needs"
                + " the auditor role; denied by default deny (no role binding or policy permits it)",
                "PERMISSION_DENIED");

        Result r = run("audit", "query", "--key", "demo/files");

        assertEquals(5, r.exitCode(), r::toString);
        assertTrue(r.stderr().startsWith("error: permission denied: reading the audit trail (QueryAuditRecords)"
                + " needs the auditor role"), r::toString);
        assertTrue(r.stderr().contains("(PERMISSION_DENIED, reason PERMISSION_DENIED); reading the audit trail"
                + " needs the auditor role: ask an admin"), r::toString);
    }

    @Test
    void auditServiceNotListening_namesTheAuditServiceAndItsAddress_exits3() throws Exception {
        int freePort;
        try (ServerSocket s = new ServerSocket(0)) {
            freePort = s.getLocalPort();
        }

        Result r = runAgainst(new byte[0], "audit", "verify", "--address", address,
                "--audit-address", "127.0.0.1:" + freePort);

        assertEquals(ExitCodes.UNREACHABLE, r.exitCode(), r::toString);
        assertTrue(r.stderr().startsWith("error: cannot reach the audit service at 127.0.0.1:" + freePort), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void slowAuditService_hitsTheDeadline_namingTheAuditAddress_exits3() {
        audit.delay(3_000);

        Result r = run("audit", "checkpoint", "--timeout", "1s");

        assertEquals(ExitCodes.UNREACHABLE, r.exitCode(), r::toString);
        assertTrue(r.stderr().startsWith("error: no answer from " + auditAddress + " within 1s"), r::toString);
    }

    @Test
    void auditAddress_canBeGivenBeforeTheCommand() {
        audit.respond(VerifyChainResponse.newBuilder().setValid(true).build());

        Result r = runAgainst(new byte[0], "--audit-address", auditAddress, "audit", "verify");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(1, audit.requests(VerifyChainRequest.class).size());
    }

    @Test
    void keyCommands_stillUseTheKeyServiceAddress() {
        Result r = run("keys", "get", "ns/x");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(audit.requests().isEmpty());
        assertEquals(1, service.requests().size());
    }

    @Test
    void auditWithoutSubcommand_printsUsage_exits2() {
        Result r = run("audit");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("checkpoints"), r::toString);
        assertTrue(audit.requests().isEmpty());
    }

    @Test
    void help_listsTheAuditCommandAndAddressOption() {
        Result r = run("--help");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("audit"), r::toString);
        assertTrue(r.stdout().contains("--audit-address"), r::toString);
        assertTrue(r.stdout().contains("TPMKMS_AUDIT_ADDRESS"), r::toString);
    }
}
