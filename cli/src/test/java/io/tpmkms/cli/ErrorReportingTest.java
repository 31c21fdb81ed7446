package io.tpmkms.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.net.ServerSocket;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ErrorReportingTest extends CliHarness {

    @Test
    void notFound_printsOneLineWithCodeAndReason_exits4() {
        service.fail(Status.Code.NOT_FOUND, "key \"ns/x\" not found", "KEY_NOT_FOUND");

        Result r = run("keys", "get", "ns/x");

        assertEquals(ExitCodes.NOT_FOUND, r.exitCode(), r::toString);
        assertEquals("error: key \"ns/x\" not found (NOT_FOUND, reason KEY_NOT_FOUND)\n", r.stderr());
        assertEquals("", r.stdout());
    }

    @Test
    void verbose_addsErrorInfoAndStackTrace() {
        service.fail(Status.Code.NOT_FOUND, "key \"ns/x\" not found", "KEY_NOT_FOUND");

        Result r = run("keys", "get", "ns/x", "--verbose");

        assertEquals(ExitCodes.NOT_FOUND, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("domain: tpmkms.io"), r::toString);
        assertTrue(r.stderr().contains("key: ns/x"), r::toString);
        assertTrue(r.stderr().contains("\tat io.grpc."), r::toString);
    }

    @Test
    void withoutVerbose_noStackTrace() {
        service.fail(Status.Code.INTERNAL, "backend failure", "BACKEND_FAILED");

        Result r = run("encrypt", "ns/x");

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertFalse(r.stderr().contains("\tat "), r::toString);
        assertEquals(1, r.stderr().lines().count(), r::toString);
    }

    @ParameterizedTest(name = "{0} -> exit {1}")
    @CsvSource({
            "PERMISSION_DENIED, 5",
            "UNAUTHENTICATED, 5",
            "ALREADY_EXISTS, 6",
            "FAILED_PRECONDITION, 6",
            "ABORTED, 6",
            "INVALID_ARGUMENT, 1",
            "RESOURCE_EXHAUSTED, 1",
            "INTERNAL, 1",
            "UNAVAILABLE, 3",
    })
    void statusCode_mapsToDocumentedExitCode(Status.Code code, int exit) {
        service.fail(code, "refused", "SOME_REASON");

        Result r = run("keys", "rotate", "ns/x");

        assertEquals(exit, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("(" + code + ", reason SOME_REASON)"), r::toString);
    }

    @Test
    void serverNotListening_isUnreachable_exits3() throws Exception {
        int freePort;
        try (ServerSocket s = new ServerSocket(0)) {
            freePort = s.getLocalPort();
        }

        Result r = runAgainst(new byte[0], "keys", "list", "--address", "127.0.0.1:" + freePort);

        assertEquals(ExitCodes.UNREACHABLE, r.exitCode(), r::toString);
        assertTrue(r.stderr().startsWith("error: cannot reach the key service at 127.0.0.1:" + freePort), r::toString);
        assertTrue(r.stderr().contains("(UNAVAILABLE)"), r::toString);
    }

    @Test
    void unavailableFromTheService_showsItsMessage_exits3() {
        service.fail(Status.Code.UNAVAILABLE, "the key database is unavailable; retry later", "DATABASE_UNAVAILABLE");

        Result r = run("keys", "get", "ns/x");

        assertEquals(ExitCodes.UNREACHABLE, r.exitCode(), r::toString);
        assertEquals("error: the key database is unavailable; retry later (UNAVAILABLE, reason DATABASE_UNAVAILABLE)\n",
                r.stderr());
    }

    @Test
    void slowServer_hitsTheDeadline_exits3() {
        service.delay(3_000);

        Result r = run("keys", "get", "ns/x", "--timeout", "1s");

        assertEquals(ExitCodes.UNREACHABLE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("within 1s"), r::toString);
        assertTrue(r.stderr().contains("(DEADLINE_EXCEEDED)"), r::toString);
    }

    @Test
    void zeroTimeout_isUsageError_exits2() {
        Result r = run("keys", "get", "ns/x", "--timeout", "0s");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("--timeout"), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void unknownOption_isUsageError_exits2() {
        Result r = run("keys", "list", "--colour");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().startsWith("error: Unknown option: '--colour'"), r::toString);
        assertTrue(r.stderr().contains("tpmkms keys list --help"), r::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void missingRequiredOption_isUsageError_exits2() {
        Result r = run("verify", "ns/x", "--signature", "sig.bin");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("--version"), r::toString);
    }

    @Test
    void noSubcommand_printsUsage_exits2() {
        Result r = run("keys");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("schedule-destroy"), r::toString);
    }

    @Test
    void help_exits0() {
        Result r = run("--help");

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("asymmetric-decrypt"), r::toString);
    }

    @Test
    void missingInputFile_isReportedWithoutStackTrace() {
        Result r = run("encrypt", "ns/x", "--in", "/nonexistent/plain.txt");

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertEquals("error: no such file: /nonexistent/plain.txt\n", r.stderr());
        assertTrue(service.requests().isEmpty());
    }
}
