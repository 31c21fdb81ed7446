package io.tpmkms.cli.internal;

import io.grpc.HandlerRegistry;
import io.grpc.InsecureServerCredentials;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.okhttp.OkHttpServerBuilder;
import io.grpc.stub.ServerCalls;
import io.tpmkms.cli.Console;
import io.tpmkms.cli.Platform;
import io.tpmkms.cli.TpmkmsCommand;
import io.tpmkms.cli.auth.CredentialStore;
import io.tpmkms.cli.auth.Credentials;
import io.tpmkms.cli.format.Views;
import io.tpmkms.proto.key.v1.Key;
import io.tpmkms.proto.audit.v1.AuditServiceGrpc;
import io.tpmkms.proto.key.v1.KeyServiceGrpc;
import io.tpmkms.proto.policy.v1.PolicyServiceGrpc;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The training run of the CLI's class-data sharing archive (ADR 0018): the {@code tpmkms} wrapper runs
 * it once with {@code -XX:DumpLoadedClassList}, then {@code -Xshare:dump}s those classes into a static archive
 * when the archive is missing or older than the jar, and
 * every later run maps the classes loaded here instead of reading, parsing and verifying them.
 *
 * <p>It loads what a typical command loads: picocli's model of common commands, every request and
 * response message of the three services, the gRPC transport, the call credentials and the error
 * reporting of a failed call, the token cache and the key table. The commands run twice with a dummy
 * token from a token cache in a temporary directory (deleted at the end): first against a server of
 * this process on loopback that answers every method with an empty response, so that a whole call —
 * connection, HTTP/2 frames, message framing and parsing — is trained (without it, the ~120 classes
 * of a call's data path were loaded and verified from the jar on every run); then against a closed
 * port (connection refused at once), for the error reporting. Nothing is sent anywhere else.
 */
public final class CdsTraining {
    private static final String NOWHERE = "127.0.0.1:1";
    private static final List<String[]> COMMANDS = List.of(
            new String[] {"keys", "list", "--namespace", "demo"},
            new String[] {"keys", "get", "demo/x"},
            new String[] {"--json", "keys", "versions", "demo/x"},
            new String[] {"encrypt", "demo/x", "--in", "/dev/null"},
            new String[] {"sign", "demo/x", "--in", "/dev/null"},
            new String[] {"audit", "query", "--key", "demo/x"},
            new String[] {"policy", "list"},
            new String[] {"whoami"});

    private CdsTraining() {}

    public static void main(String[] args) throws Exception {
        train();
    }

    /** Runs the training; returns how many calls the loopback server answered. */
    static int train() throws Exception {
        // the token cache as a logged-in user has it (a dummy token, in a directory of its own)
        Path config = Files.createTempDirectory("tpmkms-cds-training");
        CredentialStore store = new CredentialStore(config.resolve("credentials.json"));
        store.write(new Credentials("http://127.0.0.1:1/realms/training", "tpmkms-cli", Credentials.PASSWORD,
                URI.create("http://127.0.0.1:1/token"), null, "training.not.a-token",
                Instant.now().plus(Duration.ofHours(1)), null, null, null));
        // the output of the common commands
        Views.keyTable(List.of(Key.getDefaultInstance()), new PrintStream(new ByteArrayOutputStream(), true,
                StandardCharsets.UTF_8));
        for (ServiceDescriptor service : List.of(KeyServiceGrpc.getServiceDescriptor(),
                AuditServiceGrpc.getServiceDescriptor(), PolicyServiceGrpc.getServiceDescriptor())) {
            for (MethodDescriptor<?, ?> method : service.getMethods()) {
                method.parseRequest(new ByteArrayInputStream(new byte[0]));
                method.parseResponse(new ByteArrayInputStream(new byte[0]));
            }
        }
        Platform real = Platform.system();
        Platform training = new Platform() {
            @Override
            public String getenv(String name) {
                return switch (name) {
                    case "TPMKMS_CONFIG_DIR" -> config.toString();
                    case "TPMKMS_ADDRESS", "TPMKMS_AUDIT_ADDRESS", "TPMKMS_POLICY_ADDRESS" -> NOWHERE;
                    default -> real.getenv(name);
                };
            }

            @Override
            public Instant now() {
                return real.now();
            }

            @Override
            public void sleep(Duration duration) {
            }

            @Override
            public char[] readPassword(String prompt) {
                return null;
            }
        };
        EmptyAnswers answers = new EmptyAnswers();
        Server server = OkHttpServerBuilder.forPort(0, InsecureServerCredentials.create())
                .fallbackHandlerRegistry(answers)
                .build()
                .start();
        try {
            run(training, "127.0.0.1:" + server.getPort());
        } finally {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        run(training, NOWHERE);
        store.delete();
        Files.deleteIfExists(config);
        return answers.answered.get();
    }

    private static void run(Platform platform, String address) {
        OutputStream sink = new ByteArrayOutputStream();
        for (String[] command : COMMANDS) {
            String[] withAddresses = new String[command.length + 8];
            System.arraycopy(new String[] {"--address", address, "--audit-address", address,
                    "--policy-address", address, "--timeout", "2s"}, 0, withAddresses, 0, 8);
            System.arraycopy(command, 0, withAddresses, 8, command.length);
            TpmkmsCommand.commandLine(Console.of(new ByteArrayInputStream(new byte[0]), sink, sink), platform,
                    withAddresses).execute(withAddresses);
        }
    }

    /** Every method of the three services answered with its empty response (a stream: one empty chunk). */
    private static final class EmptyAnswers extends HandlerRegistry {
        private final Map<String, ServerMethodDefinition<?, ?>> methods = new HashMap<>();
        private final AtomicInteger answered = new AtomicInteger();

        EmptyAnswers() {
            for (ServiceDescriptor service : List.of(KeyServiceGrpc.getServiceDescriptor(),
                    AuditServiceGrpc.getServiceDescriptor(), PolicyServiceGrpc.getServiceDescriptor())) {
                for (MethodDescriptor<?, ?> method : service.getMethods()) {
                    methods.put(method.getFullMethodName(), definition(method, answered));
                }
            }
        }

        private static <Q, R> ServerMethodDefinition<Q, R> definition(MethodDescriptor<Q, R> method,
                AtomicInteger answered) {
            R empty = method.parseResponse(new ByteArrayInputStream(new byte[0]));
            ServerCallHandler<Q, R> handler = switch (method.getType()) {
                case UNARY -> ServerCalls.asyncUnaryCall((request, response) -> {
                    answered.incrementAndGet();
                    response.onNext(empty);
                    response.onCompleted();
                });
                case SERVER_STREAMING -> ServerCalls.asyncServerStreamingCall((request, response) -> {
                    answered.incrementAndGet();
                    response.onNext(empty);
                    response.onCompleted();
                });
                default -> ServerCalls.asyncUnaryCall((request, response) ->
                        response.onError(Status.UNIMPLEMENTED.asRuntimeException()));
            };
            return ServerMethodDefinition.create(method, handler);
        }

        @Override
        public ServerMethodDefinition<?, ?> lookupMethod(String methodName, String authority) {
            return methods.get(methodName);
        }
    }
}
