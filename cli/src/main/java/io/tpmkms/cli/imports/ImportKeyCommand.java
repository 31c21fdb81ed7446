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
import io.tpmkms.proto.key.v1.DuplicationBlob;
import io.tpmkms.proto.key.v1.GetImportJobRequest;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ImportKeyVersionResponse;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.protection.ImportWrapping;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.cert.X509Certificate;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.List;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code tpmkms keys import KEY --import-job JOB --algorithm A (--key-file F | --wrapped-key-file F |
 * --duplication-public F --duplication-private F --duplication-seed F [--authority-name-file F]
 * [--transfer-auth-file F])}: a new key version from imported material (ImportKeyVersion).
 *
 * <p>With the {@code --duplication-*} files (a tpm2-duplication job: tpm2_duplicate, or another
 * tpmkms's {@code keys export}) the blob goes in ImportKeyVersion's {@code duplication} as it is, with
 * the transfer auth value from its file; the TPM checks and imports it.
 *
 * <p>With {@code --wrapped-key-file} the bytes are sent as they are. With {@code --key-file} the
 * CLI wraps locally, as {@code gcloud kms keys versions import --target-key-file} does, in this
 * order: read the material ({@link KeyMaterialFile}); GetImportJob; refuse unless the job is ACTIVE;
 * for a TPM job verify the wrapping key's attestation offline and refuse if it does not verify (there
 * is no way to skip this), and against what the user trusts: the pinned attestation key name
 * ({@code --attestation-key-name}) and the EK certificate's CA ({@code --ek-ca}); wrap with
 * {@link ImportWrapping#wrap}; zero the material; send. A refusal sends nothing after GetImportJob.
 * Without a pin, a note on stderr prints the AK's name to pin. A SOFTWARE job's wrapping key has no
 * attestation: a warning says so on stderr, and with a pin or an EK CA the import is refused.
 */
@Command(name = "import", description = {
        "Create a new version of KEY from key material, wrapped for an import job (ImportKeyVersion).",
        "--key-file: the CLI fetches the job, refuses unless it is active, verifies a TPM job's attestation "
                + "offline (refuses if it fails), wraps the material locally and sends only the wrapped blob.",
        "--attestation-key-name pins the attestation key: the TPM job's statement must be signed by the AK of "
                + "that name (as 'import-jobs get' prints it); --ek-ca requires its EK certificate to be issued "
                + "by one of the given CA certificates. Neither binds the AK to the EK (no credential activation).",
        "Material: 32 raw bytes for aes-256-gcm and hmac-sha256; PKCS#8 (PEM 'PRIVATE KEY' or DER) for EC and RSA.",
        "--wrapped-key-file: a blob already wrapped as the job's method says (e.g. with openssl), sent as it is.",
        "--duplication-public/-private/-seed: a duplication blob for a tpm2-duplication job's storage key (the files "
                + "of tpm2_duplicate, or of 'tpmkms keys export' on another tpmkms), sent as they are; the TPM "
                + "imports it (TPM2_Import)."})
public final class ImportKeyCommand extends KmsCommand {
    /** The most transfer_auth ImportKeyVersion takes. */
    static final int MAX_TRANSFER_AUTH = 32;

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

        @Option(names = "--duplication-public", paramLabel = "FILE",
                description = "A duplication blob (tpm2-duplication jobs): the key's public area, TPM2B_PUBLIC "
                        + "(tpm2_import -u; key.pub of 'keys export'). Needs --duplication-private and --duplication-seed.")
        String duplicationPublic;
    }

    @Option(names = "--duplication-private", paramLabel = "FILE",
            description = "With --duplication-public: the duplicate, TPM2B_PRIVATE (tpm2_import -i; key.dpriv).")
    String duplicationPrivate;

    @Option(names = "--duplication-seed", paramLabel = "FILE",
            description = "With --duplication-public: the encrypted seed (tpm2_import -s; key.seed).")
    String duplicationSeed;

    @Option(names = "--authority-name-file", paramLabel = "FILE",
            description = "With --duplication-public: a tpmkms key's duplication authority name (authority.name of "
                    + "'keys export'). Default: none (objects made by tpm2-tools).")
    String authorityNameFile;

    @Option(names = "--transfer-auth-file", paramLabel = "FILE",
            description = "With --duplication-public: the auth value the duplicate carries, the exporter's "
                    + "--transfer-auth-file (raw bytes, at most 32). Default: empty (tpm2-tools' default).")
    String transferAuthFile;

    @Option(names = "--version", paramLabel = "N",
            description = "Re-import destroyed version N (same material only). Default: a new version.")
    int version;

    @Option(names = "--make-primary", description = "Make the new version primary.")
    boolean makePrimary;

    @Option(names = "--attestation-key-name", paramLabel = "HEX",
            description = "With --key-file: the TPM name of the attestation key you trust (hex, as 'import-jobs get' "
                    + "and 'attestation verify' print it). The TPM job's statement must be signed by that AK, "
                    + "else nothing is sent.")
    String attestationKeyName;

    @Option(names = "--ek-ca", paramLabel = "PEMFILE",
            description = "With --key-file: the TPM job's EK certificate must be issued by one of the CA "
                    + "certificates in this file (PEM or DER), else nothing is sent.")
    Path ekCa;

    @Override
    protected int run(Session s) throws Exception {
        if (version < 0) {
            throw usage("--version must be a positive number, got " + version);
        }
        checkDuplicationOptions();
        ImportJobAttestation.Trust trust = trust();
        if (source.duplicationPublic != null) {
            return importDuplication(s);
        }
        byte[] wrapped = source.wrappedKeyFile != null ? s.read(source.wrappedKeyFile) : wrapLocally(s, trust);
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

    /**
     * ImportKeyVersion with a duplication blob, sent as the files hold it: the blob was made for the
     * job's storage key already, so there is nothing to check or wrap here; the TPM checks it on import.
     * The transfer auth value comes from its file only and is never printed.
     */
    private int importDuplication(Session s) throws Exception {
        DuplicationBlob.Builder blob = DuplicationBlob.newBuilder()
                .setPublicArea(ByteString.copyFrom(readNonEmptyInput(s, "--duplication-public", source.duplicationPublic)))
                .setDuplicate(ByteString.copyFrom(readNonEmptyInput(s, "--duplication-private", duplicationPrivate)))
                .setEncryptedSeed(ByteString.copyFrom(readNonEmptyInput(s, "--duplication-seed", duplicationSeed)));
        if (authorityNameFile != null) {
            blob.setAuthorityName(ByteString.copyFrom(readNonEmptyInput(s, "--authority-name-file", authorityNameFile)));
        }
        byte[] transferAuth = new byte[0];
        if (transferAuthFile != null) {
            transferAuth = readInput(s, "--transfer-auth-file", transferAuthFile);
            if (transferAuth.length > MAX_TRANSFER_AUTH) {
                int n = transferAuth.length;
                Arrays.fill(transferAuth, (byte) 0);
                throw usage("--transfer-auth-file " + transferAuthFile + ": " + n + " bytes; a transfer auth value "
                        + "is at most " + MAX_TRANSFER_AUTH + " bytes");
            }
        }
        ImportKeyVersionResponse response;
        try {
            response = s.keys().importKeyVersion(ImportKeyVersionRequest.newBuilder()
                    .setKey(key)
                    .setImportJob(importJob)
                    .setAlgorithm(algorithm)
                    .setDuplication(blob)
                    .setTransferAuth(ByteString.copyFrom(transferAuth))
                    .setVersion(version)
                    .setMakePrimary(makePrimary)
                    .build());
        } finally {
            Arrays.fill(transferAuth, (byte) 0);
        }
        if (s.json()) {
            s.printJson(response);
        } else {
            Views.version(response.getVersion(), s.out());
        }
        return ExitCodes.OK;
    }

    /**
     * A duplication blob is three files: --duplication-public needs --duplication-private and
     * --duplication-seed, and those (and the authority name and transfer auth) go only with it.
     */
    private void checkDuplicationOptions() {
        if (source.duplicationPublic != null) {
            List<String> missing = new java.util.ArrayList<>();
            if (duplicationPrivate == null) {
                missing.add("--duplication-private");
            }
            if (duplicationSeed == null) {
                missing.add("--duplication-seed");
            }
            if (!missing.isEmpty()) {
                throw usage("missing " + String.join(" and ", missing) + ": a duplication blob is --duplication-public, "
                        + "--duplication-private and --duplication-seed (tpm2_import -u, -i, -s)");
            }
            return;
        }
        String[][] blobOnly = {{"--duplication-private", duplicationPrivate}, {"--duplication-seed", duplicationSeed},
                {"--authority-name-file", authorityNameFile}, {"--transfer-auth-file", transferAuthFile}};
        for (String[] o : blobOnly) {
            if (o[1] != null) {
                throw usage(o[0] + " goes with a duplication blob (--duplication-public, --duplication-private, "
                        + "--duplication-seed), not with " + (source.keyFile != null ? "--key-file" : "--wrapped-key-file"));
            }
        }
    }

    /** What the user trusts in a TPM job's attestation; a usage error for options that cannot apply. */
    private ImportJobAttestation.Trust trust() throws IOException {
        if (attestationKeyName == null && ekCa == null) {
            return ImportJobAttestation.Trust.ANY;
        }
        if (source.keyFile == null) {
            throw usage((attestationKeyName != null ? "--attestation-key-name" : "--ek-ca")
                    + " checks the job's attestation before wrapping: it needs --key-file (with --wrapped-key-file "
                    + "or a duplication blob nothing is checked locally)");
        }
        String pin;
        try {
            pin = attestationKeyName == null ? null : ImportJobAttestation.parseAkName(attestationKeyName);
        } catch (IllegalArgumentException e) {
            throw usage("--attestation-key-name: " + e.getMessage());
        }
        List<X509Certificate> cas = null;
        if (ekCa != null) {
            try {
                cas = ImportJobAttestation.readCertificates(Files.readAllBytes(ekCa));
            } catch (NoSuchFileException e) {
                throw usage("--ek-ca " + ekCa + ": no such file");
            } catch (IllegalArgumentException e) {
                throw usage("--ek-ca " + ekCa + ": " + e.getMessage());
            }
        }
        return new ImportJobAttestation.Trust(pin, cas);
    }

    private byte[] wrapLocally(Session s, ImportJobAttestation.Trust trust) throws Exception {
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
            if (job.getImportMethod() == ImportMethod.TPM2_DUPLICATION) {
                throw new CommandException(ExitCodes.USAGE, "import job " + importJob + " takes duplication blobs "
                        + "(method tpm2-duplication), not key material: give --duplication-public, "
                        + "--duplication-private and --duplication-seed (from tpm2_duplicate, or 'tpmkms keys export' "
                        + "on the source). Nothing was sent.");
            }
            ImportWrapping.Method method = method(job.getImportMethod());
            if (job.getProtectionLevel() == ProtectionLevel.TPM) {
                ImportJobAttestation.Result attested = ImportJobAttestation.verify(job, importJob, trust);
                if (!attested.verified()) {
                    throw new CommandException(ExitCodes.FAILED, "the attestation of import job " + importJob
                            + "'s wrapping key does not verify (" + attested.detail()
                            + "): the key material was not wrapped and nothing was sent");
                }
                if (!trust.pinned()) {
                    s.err().println("note: attestation key not pinned (--attestation-key-name); its name is "
                            + attested.attestationKeyName());
                }
            } else if (!trust.any()) {
                throw new CommandException(ExitCodes.FAILED, "import job " + importJob + " is "
                        + Vocabulary.PROTECTION.show(job.getProtectionLevel()) + ": its wrapping key has no attestation "
                        + "to check " + (trust.pinned() ? "--attestation-key-name" : "--ek-ca")
                        + " against: the key material was not wrapped and nothing was sent");
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
