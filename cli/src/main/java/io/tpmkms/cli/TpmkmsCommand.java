package io.tpmkms.cli;

import io.tpmkms.cli.attestation.AttestationCommand;
import io.tpmkms.cli.audit.AuditCommand;
import io.tpmkms.cli.connection.KmsConnection;
import io.tpmkms.cli.crypto.AsymmetricDecryptCommand;
import io.tpmkms.cli.crypto.DataKeyCommand;
import io.tpmkms.cli.crypto.DecryptCommand;
import io.tpmkms.cli.crypto.EncryptCommand;
import io.tpmkms.cli.crypto.MacCommand;
import io.tpmkms.cli.crypto.MacVerifyCommand;
import io.tpmkms.cli.crypto.PublicKeyCommand;
import io.tpmkms.cli.crypto.RandomCommand;
import io.tpmkms.cli.crypto.SignCommand;
import io.tpmkms.cli.crypto.VerifyCommand;
import io.tpmkms.cli.format.DurationText;
import io.tpmkms.cli.keys.KeysCommand;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;

/**
 * {@code tpmkms}: the command-line client of the key service and the audit service. The options here are global: they
 * may be given before or after any subcommand.
 *
 * <p>Build the command line with {@link #commandLine(Console)}, which installs the error
 * handling; a bare {@code new CommandLine(new TpmkmsCommand())} works too but reports errors the
 * picocli way.
 */
@Command(name = "tpmkms",
        scope = ScopeType.INHERIT,
        mixinStandardHelpOptions = true,
        version = "tpmkms-cli 0.1.0",
        usageHelpAutoWidth = true,
        description = "Command-line client of the tpmkms key service and audit service.",
        footer = {"%nExit codes: 0 ok, 1 failed, signature/MAC invalid or audit chain broken, 2 usage, 3 server unreachable, "
                + "4 not found, 5 unauthenticated or denied, 6 conflicts with the key's state (see docs/cli.md)."},
        subcommands = {
                KeysCommand.class,
                EncryptCommand.class,
                DecryptCommand.class,
                DataKeyCommand.class,
                SignCommand.class,
                VerifyCommand.class,
                AsymmetricDecryptCommand.class,
                PublicKeyCommand.class,
                MacCommand.class,
                MacVerifyCommand.class,
                RandomCommand.class,
                AttestationCommand.class,
                AuditCommand.class,
                CommandLine.HelpCommand.class,
        })
public final class TpmkmsCommand implements Callable<Integer> {

    @Option(names = "--address", scope = ScopeType.INHERIT, paramLabel = "HOST:PORT",
            defaultValue = "${env:TPMKMS_ADDRESS:-localhost:9090}",
            description = "Key service address (env TPMKMS_ADDRESS, default ${DEFAULT-VALUE}). Plaintext gRPC.")
    String address;

    @Option(names = "--audit-address", scope = ScopeType.INHERIT, paramLabel = "HOST:PORT",
            defaultValue = "${env:TPMKMS_AUDIT_ADDRESS:-localhost:9091}",
            description = "Audit service address, for 'audit' commands (env TPMKMS_AUDIT_ADDRESS, "
                    + "default ${DEFAULT-VALUE}). Plaintext gRPC.")
    String auditAddress;

    @Option(names = "--timeout", scope = ScopeType.INHERIT, paramLabel = "DURATION", defaultValue = "30s",
            converter = DurationText.Converter.class,
            description = "Deadline of each call, e.g. 30s, 2m (default ${DEFAULT-VALUE}).")
    Duration timeout;

    @Option(names = "--json", scope = ScopeType.INHERIT,
            description = "Print the service's response as JSON (protobuf JSON mapping; bytes in base64).")
    boolean json;

    @Option(names = {"-v", "--verbose"}, scope = ScopeType.INHERIT,
            description = "On errors, print the status details and the stack trace.")
    boolean verbose;

    @Spec
    CommandSpec spec;

    private final Console console;

    public TpmkmsCommand() {
        this(Console.system());
    }

    public TpmkmsCommand(Console console) {
        this.console = console;
    }

    public static void main(String[] args) {
        System.exit(commandLine(Console.system()).execute(args));
    }

    /** The command line with tpmkms's error reporting and exit codes, writing to {@code console}. */
    public static CommandLine commandLine(Console console) {
        TpmkmsCommand root = new TpmkmsCommand(console);
        ErrorReporter errors = new ErrorReporter(root);
        return new CommandLine(root)
                .setOut(new java.io.PrintWriter(console.out(), true))
                .setErr(new java.io.PrintWriter(console.err(), true))
                .setExecutionExceptionHandler(errors)
                .setParameterExceptionHandler(errors);
    }

    @Override
    public Integer call() {
        spec.commandLine().usage(console.err());
        return ExitCodes.USAGE;
    }

    public Console console() {
        return console;
    }

    public boolean json() {
        return json;
    }

    boolean verbose() {
        return verbose;
    }

    String address() {
        return address;
    }

    String auditAddress() {
        return auditAddress;
    }

    /** Where {@code service} is. */
    String address(KmsConnection.Service service) {
        return switch (service) {
            case KEY -> address;
            case AUDIT -> auditAddress;
        };
    }

    Duration timeout() {
        return timeout;
    }

    /** Opens a connection to the key service. */
    KmsConnection connect() {
        return connect(KmsConnection.Service.KEY);
    }

    /**
     * Opens the connection every command uses, to the key service or the audit service. Call
     * credentials (OIDC tokens from {@code tpmkms login}) are to be attached here, for both.
     */
    KmsConnection connect(KmsConnection.Service service) {
        if (timeout.isZero()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--timeout must be longer than 0s");
        }
        return KmsConnection.open(new KmsConnection.Settings(service, address(service), timeout, null));
    }
}
