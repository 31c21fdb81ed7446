package io.tpmkms.cli.internal;

import io.grpc.MethodDescriptor;
import io.grpc.ServiceDescriptor;
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
import java.util.List;

/**
 * The training run of the CLI's class-data sharing archive (ADR 0018): the {@code tpmkms} wrapper runs
 * it once with {@code -XX:DumpLoadedClassList}, then {@code -Xshare:dump}s those classes into a static archive
 * when the archive is missing or older than the jar, and
 * every later run maps the classes loaded here instead of reading, parsing and verifying them.
 *
 * <p>It loads what a typical command loads: picocli's model of common commands, every request and
 * response message of the three services, the gRPC transport, the call credentials and the error
 * reporting of a failed call, the token cache and the key table. The calls go to a closed port on
 * loopback (connection refused at once) with a dummy token from a token cache in a temporary directory
 * (deleted at the end); nothing is sent anywhere.
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
        OutputStream sink = new ByteArrayOutputStream();
        for (String[] command : COMMANDS) {
            String[] withAddresses = new String[command.length + 8];
            System.arraycopy(new String[] {"--address", NOWHERE, "--audit-address", NOWHERE,
                    "--policy-address", NOWHERE, "--timeout", "2s"}, 0, withAddresses, 0, 8);
            System.arraycopy(command, 0, withAddresses, 8, command.length);
            TpmkmsCommand.commandLine(Console.of(new ByteArrayInputStream(new byte[0]), sink, sink), training,
                    withAddresses).execute(withAddresses);
        }
        store.delete();
        Files.deleteIfExists(config);
    }
}
