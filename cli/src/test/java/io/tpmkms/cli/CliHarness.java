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
 * Base of the CLI tests: a real gRPC server on a loopback socket serving {@link FakeKeyService},
 * and the CLI run in-process against it with in-memory stdin, stdout and stderr.
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
    private Server server;
    String address;

    @BeforeAll
    void startServer() throws Exception {
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(service)
                .build()
                .start();
        address = "127.0.0.1:" + server.getPort();
    }

    @AfterAll
    void stopServer() throws Exception {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }

    @BeforeEach
    void resetService() {
        service.reset();
    }

    Result run(String... args) {
        return runWithStdin(new byte[0], args);
    }

    Result runWithStdin(byte[] stdin, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--address");
        all.add(address);
        return runAgainst(stdin, all.toArray(String[]::new));
    }

    /** Runs exactly {@code args}, without adding --address. */
    static Result runAgainst(byte[] stdin, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Console console = Console.of(new ByteArrayInputStream(stdin), out, err);
        int code = TpmkmsCommand.commandLine(console).execute(args);
        console.flush();
        return new Result(code, out.toByteArray(), err.toString(StandardCharsets.UTF_8));
    }
}
