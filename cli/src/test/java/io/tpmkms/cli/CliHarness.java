package io.tpmkms.cli;

import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInstance;

/**
 * Base of the CLI tests: real gRPC servers on loopback sockets, one serving {@link FakeKeyService}
 * and another (on its own port, so a command that dials the wrong address fails) serving
 * {@link FakeAuditService}, and the CLI run in-process against them with in-memory stdin, stdout
 * and stderr.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class CliHarness {

    /** What one CLI run produced. */
    record Result(int exitCode, byte[] stdoutBytes, String stderr) {
        String stdout() {
            return new String(stdoutBytes, StandardCharsets.UTF_8);
        }

        @Override
        public String toString() {
            return "exit " + exitCode + "\n--- stdout\n" + stdout() + "--- stderr\n" + stderr;
        }
    }

    final FakeKeyService service = new FakeKeyService();
    final FakeAuditService audit = new FakeAuditService();
    private Server server;
    private Server auditServer;
    String address;
    String auditAddress;

    @BeforeAll
    void startServer() throws Exception {
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(service)
                .build()
                .start();
        address = "127.0.0.1:" + server.getPort();
        auditServer = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(audit)
                .build()
                .start();
        auditAddress = "127.0.0.1:" + auditServer.getPort();
    }

    @AfterAll
    void stopServer() throws Exception {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        auditServer.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }

    @BeforeEach
    void resetService() {
        service.reset();
        audit.reset();
    }

    Result run(String... args) {
        return runWithStdin(new byte[0], args);
    }

    Result runWithStdin(byte[] stdin, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--address");
        all.add(address);
        all.add("--audit-address");
        all.add(auditAddress);
        return runAgainst(stdin, all.toArray(String[]::new));
    }

    /** Runs exactly {@code args}, without adding --address or --audit-address. */
    static Result runAgainst(byte[] stdin, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Console console = Console.of(new ByteArrayInputStream(stdin), out, err);
        int code = TpmkmsCommand.commandLine(console).execute(args);
        console.flush();
        return new Result(code, out.toByteArray(), err.toString(StandardCharsets.UTF_8));
    }
}
