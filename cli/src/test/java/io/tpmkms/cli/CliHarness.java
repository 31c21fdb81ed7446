package io.tpmkms.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInstance;

/**
 * Base of the CLI tests: real gRPC servers on loopback sockets, one serving {@link FakeKeyService},
 * one {@link FakeAuditService} and one {@link FakePolicyService} (each on its own port, so a
 * command that dials the wrong address fails), and the CLI run in-process against them with
 * in-memory stdin, stdout and stderr and a {@link FakePlatform}.
 *
 * <p>Every server records the {@code authorization} header of every call it gets. The platform's
 * environment holds {@code TPMKMS_TOKEN=}{@link #TEST_TOKEN} and a config directory of its own,
 * and after each test every recorded call must have carried exactly the token the test expects
 * ({@link #expectedAuthorization}, {@code Bearer test-token} unless a test changes it): so every
 * command of every test also checks that its calls are authenticated.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class CliHarness {

    public static final String TEST_TOKEN = "test-token";

    /** What one CLI run produced. */
    public record Result(int exitCode, byte[] stdoutBytes, String stderr) {
        public String stdout() {
            return new String(stdoutBytes, StandardCharsets.UTF_8);
        }

        @Override
        public String toString() {
            return "exit " + exitCode + "\n--- stdout\n" + stdout() + "--- stderr\n" + stderr;
        }
    }

    /** One call a fake server received: the method and its authorization header ({@code null}: none). */
    public record Call(String method, String authorization) {
    }

    public static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

    public final FakeKeyService service = new FakeKeyService();
    public final FakeAuditService audit = new FakeAuditService();
    public final FakePolicyService policy = new FakePolicyService();
    private final List<Call> calls = new ArrayList<>();
    private Server server;
    private Server auditServer;
    private Server policyServer;
    public String address;
    public String auditAddress;
    public String policyAddress;
    public FakePlatform platform;
    public Path configDir;
    /** What every call of the test must carry; {@code null} skips the check. */
    public String expectedAuthorization;

    @BeforeAll
    public void startServer() throws Exception {
        ServerInterceptor recorder = new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                    ServerCallHandler<Q, R> next) {
                synchronized (calls) {
                    calls.add(new Call(call.getMethodDescriptor().getFullMethodName(), headers.get(AUTHORIZATION)));
                }
                return next.startCall(call, headers);
            }
        };
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(service, recorder))
                .build()
                .start();
        address = "127.0.0.1:" + server.getPort();
        auditServer = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(audit, recorder))
                .build()
                .start();
        auditAddress = "127.0.0.1:" + auditServer.getPort();
        policyServer = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(policy, recorder))
                .build()
                .start();
        policyAddress = "127.0.0.1:" + policyServer.getPort();
    }

    @AfterAll
    public void stopServer() throws Exception {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        auditServer.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        policyServer.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }

    @BeforeEach
    public void resetService() throws IOException {
        service.reset();
        audit.reset();
        policy.reset();
        synchronized (calls) {
            calls.clear();
        }
        configDir = Files.createTempDirectory("tpmkms-cli-test");
        platform = new FakePlatform();
        platform.env.put("TPMKMS_TOKEN", TEST_TOKEN);
        platform.env.put("TPMKMS_CONFIG_DIR", configDir.resolve("config").toString());
        expectedAuthorization = "Bearer " + TEST_TOKEN;
    }

    @AfterEach
    public void everyCallCarriedTheToken() throws IOException {
        if (expectedAuthorization != null) {
            for (Call c : calls()) {
                assertEquals(expectedAuthorization, c.authorization(), "authorization header of " + c.method());
            }
        }
        try (Stream<Path> files = Files.walk(configDir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    /** The calls the fake servers received so far, in order. */
    public List<Call> calls() {
        synchronized (calls) {
            return List.copyOf(calls);
        }
    }

    public Result run(String... args) {
        return runWithStdin(new byte[0], args);
    }

    public Result runWithStdin(byte[] stdin, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--address");
        all.add(address);
        all.add("--audit-address");
        all.add(auditAddress);
        all.add("--policy-address");
        all.add(policyAddress);
        return runAgainst(platform, stdin, all.toArray(String[]::new));
    }

    /** Runs exactly {@code args}, without adding any address, with {@link #TEST_TOKEN} in the environment. */
    public static Result runAgainst(byte[] stdin, String... args) {
        FakePlatform p = new FakePlatform();
        p.env.put("TPMKMS_TOKEN", TEST_TOKEN);
        return runAgainst(p, stdin, args);
    }

    public static Result runAgainst(Platform platform, byte[] stdin, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Console console = Console.of(new ByteArrayInputStream(stdin), out, err);
        int code = TpmkmsCommand.commandLine(console, platform).execute(args);
        console.flush();
        return new Result(code, out.toByteArray(), err.toString(StandardCharsets.UTF_8));
    }
}
