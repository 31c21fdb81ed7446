package io.tpmkms.cli.imports;

import io.tpmkms.cli.CommandException;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Platform;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.TpmkmsCommand;
import io.tpmkms.cli.attestation.AttestationFile;
import io.tpmkms.cli.attestation.ImportJobAttestation;
import io.tpmkms.cli.format.DurationText;
import io.tpmkms.cli.format.Vocabulary;
import io.tpmkms.proto.key.v1.CreateImportJobRequest;
import io.tpmkms.proto.key.v1.CreateImportJobResponse;
import io.tpmkms.proto.key.v1.GetImportJobRequest;
import io.tpmkms.proto.key.v1.GetImportJobResponse;
import io.tpmkms.proto.key.v1.GetKeyAttestationResponse;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.ListImportJobsRequest;
import io.tpmkms.proto.key.v1.ListImportJobsResponse;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code tpmkms import-jobs ...}: import jobs, whose RSA wrapping key (made in the TPM, or in
 * software) receives key material for {@code tpmkms keys import}. For TPM jobs every view also
 * verifies the job's attestation offline (see {@link io.tpmkms.cli.attestation.ImportJobAttestation}).
 */
@Command(name = "import-jobs", description = "Create, show and list import jobs (wrapping keys for 'keys import').")
public final class ImportJobsCommand implements Callable<Integer> {
    /**
     * The subcommands, in the order the help lists them. Registered by {@code TpmkmsCommand}, not in
     * {@code @Command(subcommands=...)}: a run builds picocli's model of only the one it executes (ADR 0018).
     */
    public static final Class<?>[] SUBCOMMANDS = {
            ImportJobsCommand.Create.class,
            ImportJobsCommand.Get.class,
            ImportJobsCommand.List.class,
    };

    /** The longest wait CreateImportJob accepts (its {@code wait} field). */
    static final Duration MAX_SERVER_WAIT = Duration.ofSeconds(60);
    /** Between two GetImportJob calls while the job is PENDING_GENERATION. */
    static final Duration POLL_INTERVAL = Duration.ofSeconds(1);

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return ExitCodes.USAGE;
    }

    @Command(name = "create", description = {
            "Create an import job: the service generates a fresh RSA wrapping key (in the TPM for --protection tpm); "
                    + "for --method tpm2-duplication (tpm only) the wrapping key is the TPM's storage root key, which "
                    + "receives duplication blobs.",
            "Waits until the key exists (up to --wait-timeout), then shows the job; for a TPM job the attestation "
                    + "of the wrapping key is verified offline."})
    static final class Create extends KmsCommand {
        @Parameters(paramLabel = "NAMESPACE/JOB", description = "Name of the new job (job id: letters, digits, . _ -).")
        String job;

        @Option(names = "--method", paramLabel = "METHOD", defaultValue = "rsa-oaep-3072-sha256-aes-256",
                converter = Vocabulary.ImportMethodConverter.class,
                completionCandidates = Vocabulary.ImportMethodWords.class,
                description = "One of: ${COMPLETION-CANDIDATES}. Default: ${DEFAULT-VALUE}. The plain rsa-oaep-* "
                        + "methods carry symmetric keys only; tpm2-duplication (tpm jobs) takes duplication blobs "
                        + "('keys import --duplication-*').")
        ImportMethod method;

        @Option(names = "--protection", paramLabel = "LEVEL",
                converter = Vocabulary.ProtectionConverter.class, completionCandidates = Vocabulary.ProtectionWords.class,
                description = "One of: ${COMPLETION-CANDIDATES}; must be the protection level of the keys to import "
                        + "into. Default: the service's.")
        ProtectionLevel protection;

        @Option(names = "--no-wait", description = "Return at once, even while the job is pending-generation.")
        boolean noWait;

        @Option(names = "--wait-timeout", paramLabel = "DURATION", defaultValue = "60s",
                converter = DurationText.Converter.class,
                description = "How long to wait for the wrapping key (default ${DEFAULT-VALUE}).")
        Duration waitTimeout;

        @Override
        protected int run(Session s) throws Exception {
            String[] name = split(job);
            if (name == null) {
                throw usage("job name must be NAMESPACE/JOB, got '" + job + "'");
            }
            TpmkmsCommand root = (TpmkmsCommand) spec.root().userObject();
            Platform platform = root.platform();
            Duration waitFor = noWait ? Duration.ZERO : waitTimeout;
            Instant until = platform.now().plus(waitFor);
            CreateImportJobRequest.Builder request = CreateImportJobRequest.newBuilder()
                    .setNamespace(name[0]).setJobId(name[1]).setImportMethod(method);
            if (protection != null) {
                request.setProtectionLevel(protection);
            }
            if (!waitFor.isZero()) {
                // The service waits in the call; keep that inside the call's own deadline (--timeout).
                Duration inCall = min(min(waitFor, MAX_SERVER_WAIT), root.timeout().multipliedBy(3).dividedBy(4));
                request.setWait(DurationText.toProto(inCall));
            }
            ImportJob created = s.keys().createImportJob(request.build()).getImportJob();
            ImportJob current = created;
            while (current.getState() == ImportJobState.PENDING_GENERATION && platform.now().isBefore(until)) {
                platform.sleep(min(POLL_INTERVAL, Duration.between(platform.now(), until)));
                String jobName = current.getName().isEmpty() ? job : current.getName();
                current = s.keys().getImportJob(GetImportJobRequest.newBuilder().setImportJob(jobName).build())
                        .getImportJob();
            }
            if (s.json()) {
                s.printJson(CreateImportJobResponse.newBuilder().setImportJob(current));
            } else {
                ImportJobViews.job(current, s.out());
            }
            if (current.getState() == ImportJobState.PENDING_GENERATION && !waitFor.isZero()) {
                s.err().println("import job " + job + " is still pending-generation after "
                        + DurationText.show(DurationText.toProto(waitFor)) + "; 'tpmkms import-jobs get " + job
                        + "' shows when it is active");
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "get", description = {
            "Show an import job; for a TPM job the attestation of its wrapping key is verified offline.",
            "--public-key-out writes the wrapping key (PEM), --attestation-out its attestation as 'attestation get' "
                    + "writes one (verify it with 'tpmkms attestation verify --in FILE --public-key PEMFILE --nonce HEX', "
                    + "HEX = SHA-256(\"tpmkms/import-job/v1\" 0x00 \"NAMESPACE/JOB\"): "
                    + "printf 'tpmkms/import-job/v1\\0%%s' NAMESPACE/JOB | sha256sum | cut -c1-64).",
            "--attestation-key-name HEX judges the attestation against the AK you trust: 'verified offline' only "
                    + "when the statement is signed by the AK of that name, else 'NOT VERIFIED'.",
            "--wrapping-public-out (tpm2-duplication jobs) writes the storage key's TPM2B_PUBLIC, what "
                    + "'tpm2_loadexternal -C o -u FILE' and 'tpm2_duplicate -U FILE' read."})
    static final class Get extends KmsCommand {
        @Parameters(paramLabel = "NAMESPACE/JOB", description = "The job.")
        String job;

        @Option(names = "--public-key-out", paramLabel = "FILE", description = "Write the wrapping key (PEM) here.")
        String publicKeyOut;

        @Option(names = "--attestation-out", paramLabel = "FILE",
                description = "Write the wrapping key's attestation (JSON) here; TPM jobs only.")
        String attestationOut;

        @Option(names = "--wrapping-public-out", paramLabel = "FILE",
                description = "Write the storage key's public area (TPM2B_PUBLIC) here; tpm2-duplication jobs only.")
        String wrappingPublicOut;

        @Option(names = "--attestation-key-name", paramLabel = "HEX",
                description = "The TPM name of the attestation key you trust (hex, as the attestation line prints it): "
                        + "the attestation line says verified only when the statement is signed by that AK.")
        String attestationKeyName;

        @Override
        protected int run(Session s) throws Exception {
            ImportJobAttestation.Trust trust;
            try {
                trust = attestationKeyName == null ? ImportJobAttestation.Trust.ANY
                        : new ImportJobAttestation.Trust(ImportJobAttestation.parseAkName(attestationKeyName), null);
            } catch (IllegalArgumentException e) {
                throw usage("--attestation-key-name: " + e.getMessage());
            }
            GetImportJobResponse response = s.keys().getImportJob(
                    GetImportJobRequest.newBuilder().setImportJob(job).build());
            ImportJob j = response.getImportJob();
            if (s.json()) {
                s.printJson(response);
            } else {
                ImportJobViews.job(j, trust, s.out());
            }
            if (publicKeyOut != null) {
                if (j.getPublicKeyPem().isEmpty()) {
                    throw new CommandException(ExitCodes.CONFLICT, "import job " + job + " has no wrapping key ("
                            + Vocabulary.state(j.getState()) + "): nothing written to " + publicKeyOut);
                }
                s.write(publicKeyOut, j.getPublicKeyPem().getBytes(StandardCharsets.US_ASCII));
            }
            if (attestationOut != null) {
                if (j.getProtectionLevel() != ProtectionLevel.TPM) {
                    throw new CommandException(ExitCodes.USAGE, "import job " + job + " is "
                            + Vocabulary.PROTECTION.show(j.getProtectionLevel()) + ": it has no attestation");
                }
                if (!j.hasAttestation() || j.getAttestation().getAttest().isEmpty()) {
                    throw new CommandException(ExitCodes.CONFLICT, "import job " + job + " has no attestation yet ("
                            + Vocabulary.state(j.getState()) + "): nothing written to " + attestationOut);
                }
                s.write(attestationOut, AttestationFile.write(GetKeyAttestationResponse.newBuilder()
                        .setAttestation(j.getAttestation()).build()).getBytes(StandardCharsets.UTF_8));
            }
            if (wrappingPublicOut != null) {
                if (j.getImportMethod() != ImportMethod.TPM2_DUPLICATION) {
                    throw new CommandException(ExitCodes.USAGE, "import job " + job + " has method "
                            + Vocabulary.IMPORT_METHOD.show(j.getImportMethod())
                            + ": only tpm2-duplication jobs have a storage key (wrapping_public)");
                }
                if (j.getWrappingPublic().isEmpty()) {
                    throw new CommandException(ExitCodes.CONFLICT, "import job " + job + " shows no storage key ("
                            + Vocabulary.state(j.getState()) + "; only an active job does): nothing written to "
                            + wrappingPublicOut);
                }
                s.write(wrappingPublicOut, j.getWrappingPublic().toByteArray());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "list", description = "List the import jobs of a namespace, ordered by id.")
    static final class List extends KmsCommand {
        @Option(names = "--namespace", required = true, paramLabel = "NAMESPACE", description = "The namespace.")
        String namespace;

        @Option(names = "--page-size", paramLabel = "N", description = "Jobs per page (service default 100, at most 1000).")
        int pageSize;

        @Option(names = "--page-token", paramLabel = "TOKEN", description = "Continue from a previous page.")
        String pageToken;

        @Option(names = "--all", description = "Follow the page tokens and list every job.")
        boolean all;

        @Override
        protected int run(Session s) throws Exception {
            if (pageSize < 0) {
                throw usage("--page-size must not be negative");
            }
            ListImportJobsRequest.Builder request = ListImportJobsRequest.newBuilder()
                    .setNamespace(namespace).setPageSize(pageSize);
            if (pageToken != null) {
                request.setPageToken(pageToken);
            }
            ListImportJobsResponse page = s.keys().listImportJobs(request.build());
            ListImportJobsResponse.Builder result = page.toBuilder();
            while (all && !page.getNextPageToken().isEmpty()) {
                page = s.keys().listImportJobs(request.setPageToken(page.getNextPageToken()).build());
                result.addAllImportJobs(page.getImportJobsList()).setNextPageToken(page.getNextPageToken());
            }
            if (s.json()) {
                s.printJson(result);
            } else {
                ImportJobViews.table(result.getImportJobsList(), s.out());
                if (!result.getNextPageToken().isEmpty()) {
                    s.err().println("more import jobs: --page-token " + result.getNextPageToken() + " (or --all)");
                }
            }
            return ExitCodes.OK;
        }
    }

    /** NAMESPACE/ID as its two parts; null when it is not of that form. */
    static String[] split(String name) {
        int slash = name.indexOf('/');
        if (slash <= 0 || slash == name.length() - 1 || name.indexOf('/', slash + 1) >= 0) {
            return null;
        }
        return new String[] {name.substring(0, slash), name.substring(slash + 1)};
    }

    private static Duration min(Duration a, Duration b) {
        return a.compareTo(b) <= 0 ? a : b;
    }
}
