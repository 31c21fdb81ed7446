package io.tpmkms.cli;

import io.tpmkms.cli.attestation.AttestationCommand;
import io.tpmkms.cli.audit.AuditCommand;
import io.tpmkms.cli.auth.AuthenticationException;
import io.tpmkms.cli.auth.CredentialStore;
import io.tpmkms.cli.auth.LoginCommand;
import io.tpmkms.cli.auth.LogoutCommand;
import io.tpmkms.cli.auth.TokenCommand;
import io.tpmkms.cli.auth.TokenSource;
import io.tpmkms.cli.auth.WhoAmICommand;
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
import io.tpmkms.cli.imports.ImportJobsCommand;
import io.tpmkms.cli.keys.KeysCommand;
import io.tpmkms.cli.nodes.AgentCommand;
import io.tpmkms.cli.nodes.NodesCommand;
import io.tpmkms.cli.policy.BindingsCommand;
import io.tpmkms.cli.policy.PolicyCommand;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;

/**
 * {@code tpmkms}: the command-line client of the key service, the audit service and the policy
 * service. The options here are global: they may be given before or after any subcommand.
 *
 * <p>Build the command line with {@link #commandLine(Console, Platform)}, which registers the
 * subcommands and installs the error handling. The {@link Platform} gives the environment: the token of every call comes from
 * {@code TPMKMS_TOKEN} or the cache of {@code tpmkms login} (see {@link TokenSource}).
 */
@Command(name = "tpmkms",
        scope = ScopeType.INHERIT,
        mixinStandardHelpOptions = true,
        version = "tpmkms-cli 0.1.0",
        usageHelpAutoWidth = true,
        description = {"Command-line client of the tpmkms key service, audit service and policy service.",
                "Every call carries an OIDC token: run 'tpmkms login' first (or set TPMKMS_TOKEN)."},
        footer = {"%nExit codes: 0 ok, 1 failed, signature/MAC invalid or audit chain broken, 2 usage, 3 server unreachable, "
                + "4 not found, 5 not logged in, unauthenticated or denied, 6 conflicts with the key's state, "
                + "7 'policy check' decided DENY (see docs/cli.md)."}
)
public final class TpmkmsCommand implements Callable<Integer> {

    @Option(names = "--address", scope = ScopeType.INHERIT, paramLabel = "HOST:PORT",
            defaultValue = "${env:TPMKMS_ADDRESS:-localhost:9090}",
            description = "Key service address (env TPMKMS_ADDRESS, default ${DEFAULT-VALUE}).")
    String address;

    @Option(names = "--audit-address", scope = ScopeType.INHERIT, paramLabel = "HOST:PORT",
            defaultValue = "${env:TPMKMS_AUDIT_ADDRESS:-localhost:9091}",
            description = "Audit service address, for 'audit' commands (env TPMKMS_AUDIT_ADDRESS, "
                    + "default ${DEFAULT-VALUE}).")
    String auditAddress;

    @Option(names = "--policy-address", scope = ScopeType.INHERIT, paramLabel = "HOST:PORT",
            defaultValue = "${env:TPMKMS_POLICY_ADDRESS:-localhost:9092}",
            description = "Policy service address, for 'policy', 'bindings' and 'whoami' (env TPMKMS_POLICY_ADDRESS, "
                    + "default ${DEFAULT-VALUE}).")
    String policyAddress;

    @Option(names = "--ca-file", scope = ScopeType.INHERIT, paramLabel = "FILE",
            description = "TLS: the CA bundle (PEM) the services' certificates are verified against, with their host "
                    + "names (env TPMKMS_CA_FILE). Remembered for each address it is used with; without it and "
                    + "nothing remembered, plaintext (loopback only).")
    java.nio.file.Path caFile;

    @Option(names = "--client-cert", scope = ScopeType.INHERIT, paramLabel = "FILE",
            description = "Mutual TLS: the client certificate (PEM) to present (env TPMKMS_CLIENT_CERT).")
    java.nio.file.Path clientCert;

    @Option(names = "--client-key", scope = ScopeType.INHERIT, paramLabel = "FILE",
            description = "Its private key (PEM, unencrypted; env TPMKMS_CLIENT_KEY).")
    java.nio.file.Path clientKey;

    @Option(names = "--plaintext", scope = ScopeType.INHERIT,
            description = "Plaintext gRPC even where a CA is remembered for the address.")
    boolean plaintext;

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
    private final Platform platform;
    private TokenSource tokens;

    public TpmkmsCommand() {
        this(Console.system(), Platform.system());
    }

    public TpmkmsCommand(Console console, Platform platform) {
        this.console = console;
        this.platform = platform;
    }

    /**
     * The subcommands by name, in the order the help lists them. Registered programmatically, not in
     * {@code @Command(subcommands=...)}: building picocli's model of every command by reflection was
     * a third of the CLI's start-up, and a run needs only the one it executes (ADR 0018).
     */
    static final Map<String, Class<?>> SUBCOMMANDS = subcommands();

    /**
     * The commands that group others, with their subcommands (loaded only for the group a run names):
     * a run that names one of them and one of its subcommands builds the model of that one only.
     */
    static final Map<String, java.util.function.Supplier<Class<?>[]>> GROUPS = Map.of(
            "keys", () -> KeysCommand.SUBCOMMANDS,
            "import-jobs", () -> ImportJobsCommand.SUBCOMMANDS,
            "attestation", () -> AttestationCommand.SUBCOMMANDS,
            "nodes", () -> NodesCommand.SUBCOMMANDS,
            "agent", () -> AgentCommand.SUBCOMMANDS,
            "audit", () -> AuditCommand.SUBCOMMANDS,
            "policy", () -> PolicyCommand.SUBCOMMANDS,
            "bindings", () -> BindingsCommand.SUBCOMMANDS,
            "token", () -> TokenCommand.SUBCOMMANDS);

    /** Root options that take a value in the next argument (for finding the subcommand's name). */
    private static final Set<String> OPTIONS_WITH_VALUE = Set.of("--address", "--audit-address", "--policy-address",
            "--timeout", "--ca-file", "--client-cert", "--client-key");

    private static Map<String, Class<?>> subcommands() {
        Map<String, Class<?>> m = new LinkedHashMap<>();
        m.put("keys", KeysCommand.class);
        m.put("import-jobs", ImportJobsCommand.class);
        m.put("encrypt", EncryptCommand.class);
        m.put("decrypt", DecryptCommand.class);
        m.put("data-key", DataKeyCommand.class);
        m.put("sign", SignCommand.class);
        m.put("verify", VerifyCommand.class);
        m.put("asymmetric-decrypt", AsymmetricDecryptCommand.class);
        m.put("public-key", PublicKeyCommand.class);
        m.put("mac", MacCommand.class);
        m.put("mac-verify", MacVerifyCommand.class);
        m.put("random", RandomCommand.class);
        m.put("attestation", AttestationCommand.class);
        m.put("nodes", NodesCommand.class);
        m.put("agent", AgentCommand.class);
        m.put("audit", AuditCommand.class);
        m.put("policy", PolicyCommand.class);
        m.put("bindings", BindingsCommand.class);
        m.put("health", HealthCommand.class);
        m.put("login", LoginCommand.class);
        m.put("logout", LogoutCommand.class);
        m.put("whoami", WhoAmICommand.class);
        m.put("token", TokenCommand.class);
        m.put("help", CommandLine.HelpCommand.class);
        return m;
    }

    public static void main(String[] args) {
        System.exit(commandLine(Console.system(), Platform.system(), args).execute(args));
    }

    /** The command line of the real process (environment, clock, terminal), writing to {@code console}. */
    public static CommandLine commandLine(Console console) {
        return commandLine(console, Platform.system());
    }

    /** The command line with every subcommand, tpmkms's error reporting and exit codes, writing to {@code console}. */
    public static CommandLine commandLine(Console console, Platform platform) {
        return build(console, platform, SUBCOMMANDS.keySet(), null);
    }

    /**
     * The command line for executing {@code args}: only the subcommand they name is registered (all of
     * them when they name none or an unknown one, so that help, usage errors and suggestions are complete).
     */
    public static CommandLine commandLine(Console console, Platform platform, String[] args) {
        String name = subcommandOf(args);
        if (name == null || !SUBCOMMANDS.containsKey(name) || name.equals("help")) {
            return build(console, platform, SUBCOMMANDS.keySet(), null);
        }
        return build(console, platform, Set.of(name), secondOf(args, name));
    }

    /**
     * The word after the group's name when it is one (not an option); {@code null} otherwise. The group is
     * the word {@link #subcommandOf} finds, so a root option's value spelled like the group
     * ({@code --address keys keys list}) is not taken for it.
     */
    static String secondOf(String[] args, String group) {
        int i = subcommandIndex(args);
        if (i < 0 || i + 1 >= args.length || !args[i].equals(group)) {
            return null;
        }
        String next = args[i + 1];
        return next.startsWith("-") ? null : next;
    }

    /** The first argument that is neither a root option nor its value; {@code null} when there is none. */
    static String subcommandOf(String[] args) {
        int i = subcommandIndex(args);
        return i < 0 ? null : args[i];
    }

    /** The index of {@link #subcommandOf}'s word; -1 when there is none. */
    private static int subcommandIndex(String[] args) {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--")) {
                return i + 1 < args.length ? i + 1 : -1;
            }
            if (a.startsWith("-")) {
                if (OPTIONS_WITH_VALUE.contains(a)) {
                    i++;
                }
                continue;
            }
            return i;
        }
        return -1;
    }

    /**
     * @param second the subcommand of a group to register alone; {@code null} (or a name the group does
     *     not have, so that usage errors and suggestions are complete) registers all of the group's
     */
    private static CommandLine build(Console console, Platform platform, Iterable<String> names, String second) {
        TpmkmsCommand root = new TpmkmsCommand(console, platform);
        ErrorReporter errors = new ErrorReporter(root);
        CommandLine line = new CommandLine(root);
        for (String name : names) {
            line.addSubcommand(name, SUBCOMMANDS.get(name));
            var group = GROUPS.get(name);
            if (group != null) {
                CommandLine g = line.getSubcommands().get(name);
                Class<?>[] all = group.get();
                Class<?> only = null;
                for (Class<?> c : all) {
                    if (second != null && c.getAnnotation(CommandLine.Command.class).name().equals(second)) only = c;
                }
                for (Class<?> c : only != null ? new Class<?>[] {only} : all) g.addSubcommand(c);
            }
        }
        // after the subcommands: picocli applies these to the commands registered at this point
        return line
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

    public Platform platform() {
        return platform;
    }

    public boolean json() {
        return json;
    }

    public boolean verbose() {
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
            case POLICY -> policyAddress;
        };
    }

    public Duration timeout() {
        return timeout;
    }

    /** The token cache of this environment. */
    public CredentialStore credentialStore() {
        return CredentialStore.of(platform);
    }

    /** The token source of this run: one per run, so a token renewed once is reused by later calls. */
    public synchronized TokenSource tokens() {
        if (tokens == null) {
            tokens = new TokenSource(platform, credentialStore(), timeout);
        }
        return tokens;
    }

    /** Opens a connection to the key service. */
    KmsConnection connect() throws AuthenticationException {
        return connect(KmsConnection.Service.KEY);
    }

    /**
     * Opens the connection every command uses, to the key, audit or policy service; every call on
     * it carries the bearer token of {@link #tokens()}.
     */
    KmsConnection connect(KmsConnection.Service service) throws AuthenticationException {
        checkTimeout();
        // Fetch the token first: gRPC applies call credentials only once connected, so without this
        // "not logged in" would hide behind "cannot reach" whenever the service is down too.
        tokens().token();
        return KmsConnection.open(new KmsConnection.Settings(service, address(service), timeout, tokens(),
                clientTls(service)));
    }

    /**
     * How the CLI reaches {@code service}: plaintext with {@code --plaintext}; TLS with the CA of
     * {@code --ca-file} (remembered for the address) or TPMKMS_CA_FILE; TLS with the
     * CA remembered for the address; plaintext otherwise. A client certificate is presented when given.
     */
    public io.tpmkms.tls.ClientTls clientTls(KmsConnection.Service service) {
        java.nio.file.Path envCa = envPath("TPMKMS_CA_FILE");
        java.nio.file.Path clientCert = this.clientCert != null ? this.clientCert : envPath("TPMKMS_CLIENT_CERT");
        java.nio.file.Path clientKey = this.clientKey != null ? this.clientKey : envPath("TPMKMS_CLIENT_KEY");
        if ((clientCert == null) != (clientKey == null)) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--client-cert and --client-key go together (TPMKMS_CLIENT_CERT, TPMKMS_CLIENT_KEY)");
        }
        if (plaintext) {
            if (caFile != null || this.clientCert != null) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "--plaintext takes no --ca-file or client certificate (unset TPMKMS_CA_FILE etc.)");
            }
            return io.tpmkms.tls.ClientTls.plaintext();
        }
        String where = address(service);
        var known = new io.tpmkms.cli.connection.KnownEndpoints(
                CredentialStore.directory(platform).resolve(io.tpmkms.cli.connection.KnownEndpoints.FILE_NAME));
        java.util.Optional<java.nio.file.Path> ca = java.util.Optional.ofNullable(caFile);
        if (ca.isPresent()) {
            // named on the command line: remembered (a CA from the environment is the environment's)
            known.remember(where, ca.get());
        } else if (envCa != null) {
            ca = java.util.Optional.of(envCa);
        } else {
            ca = known.caFile(where);
        }
        if (ca.isEmpty() && clientCert == null) return io.tpmkms.tls.ClientTls.plaintext();
        return new io.tpmkms.tls.ClientTls(true, ca, java.util.Optional.ofNullable(clientCert),
                java.util.Optional.ofNullable(clientKey));
    }

    private java.nio.file.Path envPath(String name) {
        String v = platform.getenv(name);
        return v == null || v.isBlank() ? null : java.nio.file.Path.of(v);
    }

    /** A zero timeout would fail every call at once: a usage error instead. */
    public void checkTimeout() {
        if (timeout.isZero()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--timeout must be longer than 0s");
        }
    }
}
