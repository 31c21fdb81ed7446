package io.tpmkms.cli.imports;

import com.google.protobuf.ByteString;
import io.tpmkms.cli.CommandException;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.attestation.AttestationFile;
import io.tpmkms.cli.attestation.ImportJobAttestation;
import io.tpmkms.cli.format.Views;
import io.tpmkms.cli.format.Vocabulary;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.GetImportJobRequest;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ImportKeyVersionResponse;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.protection.ImportWrapping;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code tpmkms keys import KEY --import-job JOB --algorithm A (--key-file F | --wrapped-key-file F)}:
 * a new key version from imported material (ImportKeyVersion).
 *
 * <p>With {@code --wrapped-key-file} the bytes are sent as they are. With {@code --key-file} the
 * CLI wraps locally, as {@code gcloud kms keys versions import --target-key-file} does, in this
 * order: read the material ({@link KeyMaterialFile}); GetImportJob; refuse unless the job is ACTIVE;
 * for a TPM job verify the wrapping key's attestation offline and refuse if it does not verify (there
 * is no way to skip this); wrap with {@link ImportWrapping#wrap}; zero the material; send. A refusal
 * sends nothing after GetImportJob. A SOFTWARE job's wrapping key has no attestation: a warning
 * says so on stderr.
 */
@Command(name = "import", description = {
        "Create a new version of KEY from key material, wrapped for an import job (ImportKeyVersion).",
        "--key-file: the CLI fetches the job, refuses unless it is active, verifies a TPM job's attestation "
                + "offline (refuses if it fails), wraps the material locally and sends only the wrapped blob.",
        "Material: 32 raw bytes for aes-256-gcm and hmac-sha256; PKCS#8 (PEM 'PRIVATE KEY' or DER) for EC and RSA.",
        "--wrapped-key-file: a blob already wrapped as the job's method says (e.g. with openssl), sent as it is."})
public final class ImportKeyCommand extends KmsCommand {
    // Own --version hides the inherited -h/--help/-V/--version mixin (picocli): declare help here.
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Parameters(paramLabel = "KEY", description = "NAMESPACE/NAME of an existing key.")
    String key;

    @Option(names = "--import-job", required = true, paramLabel = "NAMESPACE/JOB",
            description = "The import job (same namespace and protection level as the key).")
    String importJob;

    @Option(names = "--algorithm", required = true, paramLabel = "ALGORITHM",
            converter = Vocabulary.AlgorithmConverter.class, completionCandidates = Vocabulary.AlgorithmWords.class,
            description = "What the material is; one of: ${COMPLETION-CANDIDATES}.")
    Algorithm algorithm;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--key-file", paramLabel = "FILE",
                description = "Plaintext key material; wrapped here for the job (- for stdin).")
        String keyFile;

        @Option(names = "--wrapped-key-file", paramLabel = "FILE",
                description = "Material already wrapped for the job, sent unchanged (- for stdin).")
        String wrappedKeyFile;
    }

    @Option(names = "--version", paramLabel = "N",
            description = "Re-import destroyed version N (same material only). Default: a new version.")
    int version;

    @Option(names = "--make-primary", description = "Make the new version primary.")
    boolean makePrimary;

    @Override
    protected int run(Session s) throws Exception {
        if (version < 0) {
            throw usage("--version must be a positive number, got " + version);
        }
        byte[] wrapped = source.wrappedKeyFile != null ? s.read(source.wrappedKeyFile) : wrapLocally(s);
        if (wrapped.length == 0) {
            throw usage("the wrapped key is empty");
        }
        ImportKeyVersionResponse response = s.keys().importKeyVersion(ImportKeyVersionRequest.newBuilder()
                .setKey(key)
                .setImportJob(importJob)
                .setAlgorithm(algorithm)
                .setWrappedKey(ByteString.copyFrom(wrapped))
                .setVersion(version)
                .setMakePrimary(makePrimary)
                .build());
        if (s.json()) {
            s.printJson(response);
        } else {
            Views.version(response.getVersion(), s.out());
        }
        return ExitCodes.OK;
    }

    private byte[] wrapLocally(Session s) throws Exception {
        byte[] material;
        try {
            material = KeyMaterialFile.read(source.keyFile, s.read(source.keyFile), algorithm);
        } catch (KeyMaterialFile.RefusedException e) {
            throw usage(e.getMessage());
        }
        try {
            ImportJob job = s.keys().getImportJob(GetImportJobRequest.newBuilder().setImportJob(importJob).build())
                    .getImportJob();
            if (job.getState() != ImportJobState.ACTIVE) {
                String why = job.getState() == ImportJobState.PENDING_GENERATION
                        ? "its wrapping key is not generated yet; 'tpmkms import-jobs get " + importJob + "' shows when it is"
                        : job.getState() == ImportJobState.EXPIRED
                                ? "its wrapping key is destroyed; create a new job" : "it cannot be used";
                throw new CommandException(ExitCodes.CONFLICT, "import job " + importJob + " is "
                        + Vocabulary.state(job.getState()) + ", not active: " + why + ". Nothing was sent.");
            }
            ImportWrapping.Method method = method(job.getImportMethod());
            if (job.getProtectionLevel() == ProtectionLevel.TPM) {
                ImportJobAttestation.Result attested = ImportJobAttestation.verify(job, importJob);
                if (!attested.verified()) {
                    throw new CommandException(ExitCodes.FAILED, "the attestation of import job " + importJob
                            + "'s wrapping key does not verify (" + attested.detail()
                            + "): the key material was not wrapped and nothing was sent");
                }
            } else {
                s.err().println("warning: import job " + importJob + " is "
                        + Vocabulary.PROTECTION.show(job.getProtectionLevel())
                        + ": its wrapping key is not attested, so only the service vouches that it holds it");
            }
            PublicKey wrappingKey = wrappingKey(job);
            try {
                return ImportWrapping.wrap(method, wrappingKey, material);
            } catch (IllegalArgumentException e) {
                throw new CommandException(ExitCodes.USAGE, "cannot wrap for import job " + importJob + ": "
                        + e.getMessage());
            }
        } finally {
            Arrays.fill(material, (byte) 0);
        }
    }

    private ImportWrapping.Method method(ImportMethod m) {
        try {
            return ImportWrapping.Method.valueOf(m.name());
        } catch (IllegalArgumentException e) {
            throw new CommandException(ExitCodes.FAILED, "import job " + importJob + " has an import method this CLI "
                    + "does not know (" + m + "); update the CLI or use --wrapped-key-file");
        }
    }

    private PublicKey wrappingKey(ImportJob job) {
        try {
            byte[] der = AttestationFile.pemToDer(job.getPublicKeyPem());
            return KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(der));
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            throw new CommandException(ExitCodes.FAILED, "import job " + importJob
                    + " has no usable RSA wrapping key in public_key_pem");
        }
    }

}
