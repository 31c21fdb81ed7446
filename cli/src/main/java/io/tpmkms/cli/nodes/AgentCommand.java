package io.tpmkms.cli.nodes;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.CommandException;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.protection.BackendException;
import io.tpmkms.protection.tpm.TpmConfig;
import io.tpmkms.protection.tpm.TpmConnection;
import io.tpmkms.protection.tpm.attest.CredentialActivation;
import io.tpmkms.protection.tpm.attest.EventLog;
import io.tpmkms.protection.tpm.attest.EventLogWriter;
import io.tpmkms.protection.tpm.attest.TpmAttestation;
import io.tpmkms.protection.tpm.attest.TpmAttestation.EkType;
import io.tpmkms.proto.key.v1.ActivateNodeRequest;
import io.tpmkms.proto.key.v1.ActivateNodeResponse;
import io.tpmkms.proto.key.v1.AttestNodeRequest;
import io.tpmkms.proto.key.v1.AttestNodeResponse;
import io.tpmkms.proto.key.v1.EnrollNodeRequest;
import io.tpmkms.proto.key.v1.EnrollNodeResponse;
import io.tpmkms.proto.key.v1.GetAttestationChallengeRequest;
import io.tpmkms.proto.key.v1.GetAttestationChallengeResponse;
import io.tpmkms.proto.key.v1.ReleaseKeyRequest;
import io.tpmkms.proto.key.v1.ReleaseKeyResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;

/**
 * {@code tpmkms agent ...}: the node agent (ADR 0038), run on the node next to its TPM. It does the
 * node's half of what the key service checks: it proves its AK is in the TPM of its certified EK
 * (enroll), quotes its PCRs over the service's fresh nonce with the event log (attest), and receives
 * data keys as credentials only this TPM can activate (release). The TPM is reached directly, not
 * through the key service.
 */
@Command(name = "agent", description = {"The node agent: enroll this node's TPM, attest it, receive data keys.",
        "Runs on the node; --tpm names its TPM."})
public final class AgentCommand implements Callable<Integer> {
    /**
     * The subcommands, in the order the help lists them. Registered by {@code TpmkmsCommand}, not in
     * {@code @Command(subcommands=...)}: a run builds picocli's model of only the one it executes (ADR 0018).
     */
    public static final Class<?>[] SUBCOMMANDS = {
            AgentCommand.Enroll.class,
            AgentCommand.Attest.class,
            AgentCommand.Release.class,
            AgentCommand.Measure.class,
    };

    /**
     * tpm-adapter's logger (JUL, the CLI has no log manager): its INFO lines ("TPM connection open")
     * are for services, not for a command's stderr, unless --verbose. Held here: JUL keeps loggers weakly.
     */
    static final java.util.logging.Logger TPM_LOG = java.util.logging.Logger.getLogger("io.tpmkms.protection");

    /** The agent's own JSON results (release, measure): not protobuf messages. */
    static final com.google.gson.Gson JSON = new com.google.gson.GsonBuilder().setPrettyPrinting().disableHtmlEscaping()
            .create();

    /** Where Linux exposes the firmware's event log (root only). */
    static final Path BIOS_MEASUREMENTS = Path.of("/sys/kernel/security/tpm0/binary_bios_measurements");

    @Option(names = "--tpm", scope = ScopeType.INHERIT, paramLabel = "TPM", defaultValue = "/dev/tpmrm0",
            description = "The node's TPM: a device path (default ${DEFAULT-VALUE}), unix:SOCKET (swtpm's data socket) "
                    + "or tcp:HOST:PORT (swtpm's data port).")
    String tpm;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return ExitCodes.USAGE;
    }

    /** The TpmConfig that {@code --tpm} names; a usage error (exit 2) when it names none. */
    static TpmConfig tpmConfig(String tpm, CommandSpec spec) {
        String option = "--tpm " + tpm + ": ";
        try {
            if (tpm.startsWith("unix:")) {
                return TpmConfig.unixSocket(tpm.substring(5));
            }
            if (tpm.startsWith("tcp:")) {
                String hostPort = tpm.substring(4);
                int colon = hostPort.lastIndexOf(':');
                if (colon <= 0) {
                    throw new ParameterException(spec.commandLine(), option + "give tcp:HOST:PORT");
                }
                int port;
                try {
                    port = Integer.parseInt(hostPort.substring(colon + 1));
                } catch (NumberFormatException e) {
                    throw new ParameterException(spec.commandLine(), option + "the port is not a number");
                }
                return TpmConfig.tcp(hostPort.substring(0, colon), port);
            }
            if (tpm.startsWith("/")) {
                return TpmConfig.device(tpm);
            }
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), option + e.getMessage());
        }
        throw new ParameterException(spec.commandLine(), option + "give a device path like /dev/tpmrm0, "
                + "unix:SOCKET or tcp:HOST:PORT");
    }

    /**
     * The node's TPM, open for one command. TPM failures become one-line errors naming the TPM: exit 3
     * when it cannot be reached, 1 otherwise.
     */
    static final class NodeTpm implements AutoCloseable {
        final String where;
        final TpmConnection connection;
        final TpmAttestation node;

        private NodeTpm(String where, TpmConnection connection) {
            this.where = where;
            this.connection = connection;
            this.node = TpmAttestation.forNode(connection);
        }

        static NodeTpm open(String where, TpmConfig config) {
            try {
                return new NodeTpm(where, TpmConnection.open(config));
            } catch (BackendException e) {
                throw failure(where, e);
            }
        }

        <T> T run(java.util.function.Function<TpmAttestation, T> work) {
            try {
                return work.apply(node);
            } catch (BackendException e) {
                throw failure(where, e);
            }
        }

        /**
         * TPM2_ActivateCredential of a tpm2-tools credential file. The EK it was made for is told by
         * its encrypted seed: 256 bytes for the RSA-2048 EK (OAEP), an ECC point otherwise.
         */
        byte[] activate(byte[] credentialFile) {
            CredentialActivation.Credential c;
            try {
                c = CredentialActivation.Credential.fromTpm2ToolsFile(credentialFile);
            } catch (IllegalArgumentException e) {
                throw new CommandException(ExitCodes.FAILED, "the service's credential is malformed: " + e.getMessage());
            }
            EkType type = c.encryptedSecret().length == 256 ? EkType.RSA_2048 : EkType.ECC_P256;
            try {
                return node.activateCredential(type, c);
            } catch (CredentialActivation.ActivationException e) {
                throw new CommandException(ExitCodes.FAILED, "the TPM at " + where + " refused the credential ("
                        + e.refusal() + "): it was not made for this TPM's EK and the node AK: " + e.getMessage());
            } catch (BackendException e) {
                throw failure(where, e);
            }
        }

        private static CommandException failure(String where, BackendException e) {
            return new CommandException(e.kind() == BackendException.Kind.UNAVAILABLE ? ExitCodes.UNREACHABLE
                    : ExitCodes.FAILED, "TPM " + where + ": " + e.getMessage());
        }

        @Override
        public void close() {
            connection.close();
        }
    }

    /** What every agent subcommand shares: the parent's {@code --tpm}. */
    abstract static class AgentSubcommand extends KmsCommand {
        @ParentCommand
        AgentCommand agent;

        /** Parses {@code --tpm}: call before any request, so that a bad one sends nothing. */
        TpmConfig tpmConfig() {
            return AgentCommand.tpmConfig(agent.tpm, spec);
        }

        NodeTpm openTpm(TpmConfig config) {
            if (!((io.tpmkms.cli.TpmkmsCommand) spec.root().userObject()).verbose()) {
                TPM_LOG.setLevel(java.util.logging.Level.WARNING);
            }
            return NodeTpm.open(agent.tpm, config);
        }
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "enroll", description = {
            "Enroll this node: send its EK with the EK certificate from the TPM's NV (RSA-2048, else ECC P-256) and its "
                    + "node AK (EnrollNode), answer the service's credential with the TPM, and send back the secret "
                    + "(ActivateNode). The node ends ENROLLED; 'agent attest' makes it TRUSTED.",
            "A TPM without an EK certificate cannot be enrolled (exit 1)."})
    static final class Enroll extends AgentSubcommand {
        @Parameters(paramLabel = "NAME", description = "The node's name: [a-z0-9][a-z0-9._-]{0,62}.")
        String name;

        @Option(names = "--pcrs", paramLabel = "PCRS", split = ",",
                description = "The SHA-256 PCRs every quote covers, ascending, e.g. 0,1,7 (default the service's: 0-7).")
        List<Integer> pcrs;

        @Option(names = "--golden-values", paramLabel = "HEX", split = ",",
                description = "Expected values, 64 hex digits each, one per PCR in the order of --pcrs, or 'current': "
                        + "the values the PCRs hold now (trust on first use; needs --pcrs). Without golden values the node "
                        + "attests but is released no keys.")
        List<String> goldenValues;

        @Override
        protected int run(Session s) throws Exception {
            TpmConfig config = tpmConfig();
            EnrollNodeRequest.Builder request = EnrollNodeRequest.newBuilder().setName(name);
            if (pcrs != null) {
                request.addAllPcrs(pcrs);
            }
            boolean current = goldenValues != null && goldenValues.size() == 1
                    && goldenValues.get(0).trim().equalsIgnoreCase("current");
            if (current && (pcrs == null || pcrs.isEmpty())) {
                throw usage("--golden-values current needs --pcrs");
            }
            if (goldenValues != null && !goldenValues.isEmpty() && !current) {
                if (pcrs == null || pcrs.size() != goldenValues.size()) {
                    throw usage("--golden-values needs --pcrs, one value per PCR");
                }
                for (String hex : goldenValues) {
                    byte[] v;
                    try {
                        v = HexFormat.of().parseHex(hex.trim());
                    } catch (IllegalArgumentException e) {
                        throw usage("--golden-values: '" + hex + "' is not hex");
                    }
                    if (v.length != 32) {
                        throw usage("--golden-values: '" + hex + "' is not a SHA-256 value (64 hex digits)");
                    }
                    request.addGoldenValues(ByteString.copyFrom(v));
                }
            }
            try (NodeTpm tpm = openTpm(config)) {
                TpmAttestation.EndorsementKey ek = tpm.run(n -> n.endorsementKey(EkType.RSA_2048));
                if (ek.certificate() == null) {
                    ek = tpm.run(n -> n.endorsementKey(EkType.ECC_P256));
                }
                if (ek.certificate() == null) {
                    throw new CommandException(ExitCodes.FAILED, "the TPM at " + agent.tpm + " has no EK certificate "
                            + "in its NV (RSA index 0x01c00002, ECC 0x01c0000a): the service cannot tell it is a genuine "
                            + "TPM, so it cannot be enrolled (on swtpm: swtpm_setup --create-ek-cert)");
                }
                TpmAttestation.AttestationKey ak = tpm.run(TpmAttestation::attestationKey);
                if (current) {
                    int[] selection = pcrs.stream().mapToInt(Integer::intValue).toArray();
                    for (byte[] v : tpm.run(n -> n.readPcrs(selection))) {
                        request.addGoldenValues(ByteString.copyFrom(v));
                    }
                }
                EnrollNodeResponse enrolled = s.keys().enrollNode(request
                        .setEkPublic(ByteString.copyFrom(ek.tpmtPublic()))
                        .setEkCertificate(ByteString.copyFrom(ek.certificate()))
                        .setAkPublic(ByteString.copyFrom(ak.tpmtPublic())).build());
                byte[] secret = tpm.activate(enrolled.getCredential().toByteArray());
                ActivateNodeResponse activated;
                try {
                    activated = s.keys().activateNode(ActivateNodeRequest.newBuilder().setName(name)
                            .setSecret(ByteString.copyFrom(secret)).build());
                } finally {
                    Arrays.fill(secret, (byte) 0);
                }
                if (s.json()) {
                    s.printJson(activated);
                } else {
                    NodeViews.node(activated.getNode(), s.out());
                }
            }
            return ExitCodes.OK;
        }
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "attest", description = {
            "Attest this node: get a fresh challenge (GetAttestationChallenge), quote its PCRs with the challenge's "
                    + "nonce by the node AK, and send the quote with the event log (AttestNode).",
            "Exit 0 when the service answers TRUSTED; 1 when UNTRUSTED (the reason on stderr)."})
    static final class Attest extends AgentSubcommand {
        @Parameters(paramLabel = "NAME", description = "The node's name.")
        String name;

        @Option(names = "--event-log", paramLabel = "FILE",
                description = "The TCG crypto-agile event log whose replay gives the quoted PCRs; 'none' for no log "
                        + "(the node's golden values decide). Default: " + "/sys/kernel/security/tpm0/"
                        + "binary_bios_measurements if readable, else none.")
        String eventLog;

        @Override
        protected int run(Session s) throws Exception {
            TpmConfig config = tpmConfig();
            byte[] log;
            if (eventLog == null) {
                log = Files.isReadable(BIOS_MEASUREMENTS) ? Files.readAllBytes(BIOS_MEASUREMENTS) : new byte[0];
            } else if (eventLog.equals("none")) {
                log = new byte[0];
            } else {
                log = readNonEmptyInput(s, "--event-log", eventLog);
            }
            if (log.length > EventLog.MAX_BYTES) {
                throw usage("--event-log: larger than 16 MiB");
            }
            try (NodeTpm tpm = openTpm(config)) {
                GetAttestationChallengeResponse challenge = s.keys().getAttestationChallenge(
                        GetAttestationChallengeRequest.newBuilder().setName(name).build());
                int[] pcrs = challenge.getPcrsList().stream().mapToInt(Integer::intValue).toArray();
                byte[] nonce = challenge.getNonce().toByteArray();
                TpmAttestation.Quote quote;
                try {
                    quote = tpm.run(n -> n.quote(pcrs, nonce));
                } catch (IllegalArgumentException e) {
                    throw new CommandException(ExitCodes.FAILED, "the service's challenge cannot be quoted: "
                            + e.getMessage());
                }
                AttestNodeResponse response = s.keys().attestNode(AttestNodeRequest.newBuilder().setName(name)
                        .setNonce(challenge.getNonce()).setQuote(ByteString.copyFrom(quote.attest()))
                        .setSignature(ByteString.copyFrom(quote.signature())).setEventLog(ByteString.copyFrom(log))
                        .build());
                if (s.json()) {
                    s.printJson(response);
                } else {
                    s.out().println("node " + name + ": " + (response.getTrusted() ? "TRUSTED" : "UNTRUSTED")
                            + (response.getTrusted() ? "" : " (" + response.getReason() + ")"));
                }
                if (!response.getTrusted()) {
                    s.err().println("attestation FAILED: node " + name + " is UNTRUSTED: " + response.getReason());
                    return ExitCodes.FAILED;
                }
            }
            return ExitCodes.OK;
        }
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "release", description = {
            "Receive a fresh data key of KEY (ReleaseKey): the service sends it as a credential only this node's TPM "
                    + "can activate. The 32-byte data key is written to --out (created with mode 0600), the copy "
                    + "wrapped under KEY to FILE.wrapped ('tpmkms decrypt KEY' gives the data key back).",
            "Only a TRUSTED node with a fresh attestation gets keys. The data key is never printed."})
    static final class Release extends AgentSubcommand {
        @Parameters(index = "0", paramLabel = "NAME", description = "The node's name.")
        String name;

        @Parameters(index = "1", paramLabel = "KEY", description = "NAMESPACE/NAME of an encrypt-decrypt key.")
        String key;

        @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the data key.")
        Path out;

        @Option(names = "--aad", paramLabel = "TEXT",
                description = "Additional authenticated data the wrapped copy is bound to (give it to decrypt).")
        String aad;

        @Option(names = "--force", description = "Replace --out (and FILE.wrapped) if they exist.")
        boolean force;

        @Override
        protected int run(Session s) throws Exception {
            TpmConfig config = tpmConfig();
            Path wrappedFile = out.resolveSibling(out.getFileName() + ".wrapped");
            if (!force) {
                for (Path p : s.json() ? List.of(out) : List.of(out, wrappedFile)) {
                    if (Files.exists(p)) {
                        throw usage("--out: " + p + " exists; --force replaces it");
                    }
                }
            }
            ReleaseKeyRequest.Builder request = ReleaseKeyRequest.newBuilder().setNode(name).setKey(key);
            if (aad != null) {
                request.setAdditionalAuthenticatedData(ByteString.copyFrom(aad, StandardCharsets.UTF_8));
            }
            try (NodeTpm tpm = openTpm(config)) {
                ReleaseKeyResponse response = s.keys().releaseKey(request.build());
                byte[] dataKey = tpm.activate(response.getCredential().toByteArray());
                try {
                    if (dataKey.length != 32) {
                        throw new CommandException(ExitCodes.FAILED, "the credential carried " + dataKey.length
                                + " bytes, not a 32-byte data key");
                    }
                    writeSecret(out, dataKey);
                } finally {
                    Arrays.fill(dataKey, (byte) 0);
                }
                String version = Integer.toUnsignedString(response.getVersion());
                if (s.json()) {
                    com.google.gson.JsonObject json = new com.google.gson.JsonObject();
                    json.addProperty("node", name);
                    json.addProperty("key", key);
                    json.addProperty("version", Integer.toUnsignedLong(response.getVersion()));
                    json.addProperty("out", out.toString());
                    json.addProperty("wrappedDataKey",
                            Base64.getEncoder().encodeToString(response.getWrappedDataKey().toByteArray()));
                    s.out().println(JSON.toJson(json));
                } else {
                    Files.write(wrappedFile, response.getWrappedDataKey().toByteArray());
                    s.out().println("data key of " + key + " version " + version + " written to " + out
                            + " (32 bytes, mode 0600); wrapped copy in " + wrappedFile);
                }
            }
            return ExitCodes.OK;
        }

        /** A new file readable by its owner only (an existing one, with --force, is replaced, not reused). */
        private void writeSecret(Path file, byte[] data) throws IOException {
            if (force) {
                Files.deleteIfExists(file);
            }
            try {
                Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            } catch (UnsupportedOperationException e) {
                Files.createFile(file);
            } catch (FileAlreadyExistsException e) {
                throw new CommandException(ExitCodes.FAILED, file + " appeared while the key was released; not replaced");
            }
            Files.write(file, data, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
        }
    }

    // ------------------------------------------------------------------------------------------

    @Command(name = "measure", description = {
            "Measure TEXT into a PCR, as a measuring agent does: extend the SHA-256 bank with SHA-256(TEXT) and append "
                    + "the matching EV_IPL event to the event log, so that 'agent attest --event-log FILE' replays to "
                    + "the quoted PCR. For swtpm and tests: a real platform's firmware measures PCRs 0-7.",
            "Needs no key service."})
    static final class Measure extends AgentSubcommand {
        @Parameters(paramLabel = "TEXT", description = "What to measure (its UTF-8 bytes are the event's data).")
        String text;

        @Option(names = "--pcr", paramLabel = "N", defaultValue = "16",
                description = "The PCR, 0..23 (default ${DEFAULT-VALUE}, the debug PCR).")
        int pcr;

        @Option(names = "--event-log", required = true, paramLabel = "FILE",
                description = "The SHA-256 event log to append to (created if missing or empty).")
        Path eventLog;

        @Option(names = "--reset", description = "First reset the PCR (TPM2_PCR_Reset: PCRs 16 and 23 only) and start "
                + "the log anew.")
        boolean reset;

        @Override
        protected boolean offline() {
            return true;
        }

        @Override
        protected int run(Session s) throws Exception {
            TpmConfig config = tpmConfig();
            if (pcr < 0 || pcr > 23) {
                throw usage("--pcr must be 0..23");
            }
            if (reset && pcr != 16 && pcr != 23) {
                throw usage("--reset: only PCRs 16 and 23 can be reset");
            }
            boolean append = !reset && Files.exists(eventLog) && Files.size(eventLog) > 0;
            if (append) {
                EventLog existing;
                try {
                    existing = EventLog.parse(Files.readAllBytes(eventLog));
                } catch (EventLog.EventLogException e) {
                    throw usage("--event-log " + eventLog + ": not an event log (" + e.getMessage() + ")");
                }
                // the appended event carries a SHA-256 digest only: a log with other banks would not parse
                if (!existing.specId().digestSizes().keySet().equals(java.util.Set.of(EventLog.ALG_SHA256))) {
                    throw usage("--event-log " + eventLog + ": not a SHA-256-only log (one this command wrote); "
                            + "--reset starts a new one");
                }
            }
            EventLogWriter writer = new EventLogWriter();
            int header = writer.toBytes().length;
            byte[] digest;
            try (NodeTpm tpm = openTpm(config)) {
                if (reset) {
                    tpm.run(n -> {
                        n.resetPcr(pcr);
                        return null;
                    });
                }
                digest = tpm.run(n -> writer.measure(n, pcr, EventLog.EV_IPL, text.getBytes(StandardCharsets.UTF_8)));
            }
            byte[] all = writer.toBytes();
            if (append) {
                Files.write(eventLog, Arrays.copyOfRange(all, header, all.length), StandardOpenOption.APPEND);
            } else {
                Files.write(eventLog, all);
            }
            if (!s.json()) {
                s.out().println("PCR " + pcr + " extended with sha256:" + HexFormat.of().formatHex(digest)
                        + "; event appended to " + eventLog);
            } else {
                com.google.gson.JsonObject json = new com.google.gson.JsonObject();
                json.addProperty("pcr", pcr);
                json.addProperty("digest", HexFormat.of().formatHex(digest));
                json.addProperty("eventLog", eventLog.toString());
                s.out().println(JSON.toJson(json));
            }
            return ExitCodes.OK;
        }
    }
}
