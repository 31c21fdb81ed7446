package io.tpmkms.cli.keys;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.tpmkms.cli.CommandException;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.KmsCommand;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.attestation.ImportJobAttestation;
import io.tpmkms.cli.format.Vocabulary;
import io.tpmkms.proto.key.v1.DuplicationBlob;
import io.tpmkms.proto.key.v1.DuplicationTarget;
import io.tpmkms.proto.key.v1.ExportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ExportKeyVersionResponse;
import io.tpmkms.proto.key.v1.GetImportJobResponse;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.protection.ImportWrapping;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code tpmkms keys export KEY [VERSION] (--target-public F --target-attest F --target-signature F
 * --target-ak F [--qualifying-data-hex HEX] | --target-import-job F) [--transfer-auth-file F] --out-dir DIR}:
 * ExportKeyVersion of a DUPLICABLE TPM key version to a storage key of another TPM (ADR 0025).
 *
 * <p>The target is either the four files of tpm2-tools ({@code tpm2_create -u}, {@code tpm2_certify -o/-s},
 * {@code tpm2_createak -u}), sent as they are, or another tpmkms's TPM2_DUPLICATION import job as
 * {@code tpmkms import-jobs get NS/JOB --json} prints it: its attestation is verified offline first (as
 * {@code keys import --key-file} does, refused if it fails), then its {@code wrapping_public},
 * attestation statement, signature (DER ECDSA, converted to the TPMT_SIGNATURE the service reads), AK
 * public area and the job's qualifying data are sent. The blob is written to the files tpm2_import
 * reads, one file per policy branch for tpm2_policyor, and the commands to run on the target are
 * printed. The transfer auth value is read from a file only; it is sent, never printed or written.
 */
@Command(name = "export", description = {
        "Export a version of a duplicable TPM key to a storage key of another TPM (ExportKeyVersion; needs the "
                + "duplicator role). The private part leaves only wrapped, by the source TPM, for the target TPM.",
        "Target: the tpm2-tools files of a storage key and its TPM2_Certify (--target-public, --target-attest, "
                + "--target-signature, --target-ak), or another tpmkms's tpm2-duplication import job "
                + "(--target-import-job, the JSON of 'tpmkms import-jobs get NS/JOB --json'; its attestation is "
                + "verified offline first). The source deployment must trust the target's attestation key.",
        "Writes DIR/key.pub, DIR/key.dpriv, DIR/key.seed (tpm2_import -u/-i/-s), DIR/authority.name and "
                + "DIR/branch0..N (the key's policy branches, for tpm2_policyor -l), then prints what to run on "
                + "the target."})
public final class ExportKeyCommand extends KmsCommand {

    /** The file names in {@code --out-dir}. */
    static final String PUBLIC = "key.pub";
    static final String DUPLICATE = "key.dpriv";
    static final String SEED = "key.seed";
    static final String AUTHORITY = "authority.name";
    static final String BRANCH = "branch";
    /** The most transfer_auth ExportKeyVersion takes (a SHA-256 digest's size). */
    static final int MAX_TRANSFER_AUTH = 32;

    @Parameters(index = "0", paramLabel = "KEY", description = "NAMESPACE/NAME of a duplicable TPM key.")
    String key;

    @Parameters(index = "1", arity = "0..1", paramLabel = "VERSION",
            description = "Version number (1, 2, ...). Default: the primary.")
    Integer version;

    @Option(names = "--target-public", paramLabel = "FILE",
            description = "The target storage key's public area (TPM2B_PUBLIC, tpm2_create -u / tpm2_readpublic -o).")
    String targetPublic;

    @Option(names = "--target-attest", paramLabel = "FILE",
            description = "Its TPM2_Certify statement, TPMS_ATTEST (tpm2_certify -o).")
    String targetAttest;

    @Option(names = "--target-signature", paramLabel = "FILE",
            description = "The statement's signature, TPMT_SIGNATURE (tpm2_certify -s).")
    String targetSignature;

    @Option(names = "--target-ak", paramLabel = "FILE",
            description = "The attestation key's public area (tpm2_createak -u); the source must trust its name.")
    String targetAk;

    @Option(names = "--qualifying-data-hex", paramLabel = "HEX",
            description = "With the --target-* files: the statement's qualifying data must be these bytes "
                    + "(tpm2_certify 5.4 always uses 00ff55aa). Default: not checked.")
    String qualifyingDataHex;

    @Option(names = "--target-import-job", paramLabel = "FILE",
            description = "Instead of the --target-* files: another tpmkms's tpm2-duplication import job, as "
                    + "'tpmkms import-jobs get NS/JOB --json' prints it.")
    String targetImportJob;

    @Option(names = "--wrapping-key-pem", paramLabel = "FILE",
            description = "SOFTWARE keys: the RSA public key (PEM) to wrap the key for, e.g. the public_key_pem of "
                    + "the importing side's import job. Writes DIR/" + "wrapped.key" + ".")
    String wrappingKeyPem;

    @Option(names = "--method", paramLabel = "METHOD", converter = Vocabulary.ImportMethodConverter.class,
            completionCandidates = Vocabulary.ImportMethodWords.class,
            description = "SOFTWARE keys with --wrapping-key-pem: the wrapping method (an rsa-oaep-* method; "
                    + "default rsa-oaep-3072-sha256-aes-256). With --target-import-job: the job's own.")
    ImportMethod method;

    @Option(names = "--transfer-auth-file", paramLabel = "FILE",
            description = "The auth value the exported key carries (raw bytes, at most 32; - for stdin). The "
                    + "importer needs the same file. Default: empty (tpm2-tools' default).")
    String transferAuthFile;

    @Option(names = "--out-dir", required = true, paramLabel = "DIR",
            description = "Where to write the files (created if missing; existing files of these names are replaced).")
    String outDir;

    /**
     * The target and where it came from: a TPM storage key ({@code target}), or for SOFTWARE keys an
     * RSA wrapping key ({@code wrappingPem} with {@code method}).
     */
    private record Target(DuplicationTarget target, ImportJob job, String wrappingPem, ImportMethod method) {
        Target(DuplicationTarget target, ImportJob job) {
            this(target, job, null, null);
        }
    }

    static final String WRAPPED = "wrapped.key";

    @Override
    protected int run(Session s) throws Exception {
        if (version != null && version <= 0) {
            throw usage("VERSION must be a positive number, got " + version);
        }
        Target target = wrappingKeyPem != null ? fromPem(s)
                : targetImportJob != null ? fromImportJob(s) : fromFiles(s);
        if (method != null && target.wrappingPem() == null) {
            throw usage("--method applies to SOFTWARE keys exported with --wrapping-key-pem only");
        }
        byte[] transferAuth = transferAuth(s);
        Path dir = outputDirectory();
        ExportKeyVersionResponse response;
        try {
            ExportKeyVersionRequest.Builder request = ExportKeyVersionRequest.newBuilder()
                    .setKey(key)
                    .setVersion(version == null ? 0 : version);
            if (target.wrappingPem() != null) {
                if (transferAuth.length > 0) {
                    throw usage("--transfer-auth-file applies to TPM keys (duplication), not to --wrapping-key-pem");
                }
                request.setWrappingPublicKeyPem(target.wrappingPem()).setImportMethod(target.method());
            } else {
                request.setTarget(target.target()).setTransferAuth(ByteString.copyFrom(transferAuth));
            }
            response = s.keys().exportKeyVersion(request.build());
        } finally {
            Arrays.fill(transferAuth, (byte) 0);
        }
        if (target.wrappingPem() != null) {
            if (response.getWrappedKey().isEmpty()) {
                throw new CommandException(ExitCodes.FAILED, "the service answered without a wrapped key: nothing "
                        + "written to " + outDir);
            }
            String file = write(s, dir, WRAPPED, response.getWrappedKey(), true);
            if (s.json()) {
                s.printJson(response);
            } else {
                s.out().println("exported " + key + " version " + Integer.toUnsignedString(response.getVersion())
                        + " wrapped (" + Vocabulary.IMPORT_METHOD.show(target.method()) + ") for the given RSA key");
                s.out().println("  " + file);
                s.out().println("on the importing side: tpmkms keys import KEY --import-job "
                        + (target.job() != null ? target.job().getName() : "NS/JOB") + " --algorithm ALGORITHM"
                        + " --wrapped-key-file " + file);
            }
            return ExitCodes.OK;
        }
        DuplicationBlob blob = response.getDuplication();
        if (blob.getPublicArea().isEmpty() || blob.getDuplicate().isEmpty() || blob.getEncryptedSeed().isEmpty()) {
            throw new CommandException(ExitCodes.FAILED, "the service answered without a complete duplication blob "
                    + "(public_area, duplicate, encrypted_seed): nothing written to " + outDir);
        }
        List<String> written = write(s, dir, response);
        if (s.json()) {
            s.printJson(response);
        } else {
            printNext(s.out(), dir, response, target, written);
        }
        return ExitCodes.OK;
    }

    // --- the target ------------------------------------------------------------------------------

    /** SOFTWARE keys: an RSA public key in PEM and the method (default rsa-oaep-3072-sha256-aes-256). */
    private Target fromPem(Session s) {
        for (String[] f : new String[][] {{"--target-public", targetPublic}, {"--target-attest", targetAttest},
                {"--target-signature", targetSignature}, {"--target-ak", targetAk},
                {"--qualifying-data-hex", qualifyingDataHex}, {"--target-import-job", targetImportJob}}) {
            if (f[1] != null) {
                throw usage("--wrapping-key-pem (SOFTWARE keys) and " + f[0] + " (TPM duplication) cannot be combined");
            }
        }
        String pem = new String(readNonEmptyInput(s, "--wrapping-key-pem", wrappingKeyPem), StandardCharsets.UTF_8);
        if (!pem.contains("-----BEGIN PUBLIC KEY-----")) {
            throw usage("--wrapping-key-pem " + wrappingKeyPem + ": not a PEM public key (\"-----BEGIN PUBLIC KEY-----\")");
        }
        ImportMethod m = method == null ? ImportMethod.RSA_OAEP_3072_SHA256_AES_256 : method;
        if (m == ImportMethod.TPM2_DUPLICATION) {
            throw usage("--method tpm2-duplication is for TPM targets; SOFTWARE keys leave wrapped with an rsa-oaep-* method");
        }
        return new Target(null, null, pem, m);
    }

    private Target fromFiles(Session s) {
        String[][] files = {{"--target-public", targetPublic}, {"--target-attest", targetAttest},
                {"--target-signature", targetSignature}, {"--target-ak", targetAk}};
        List<String> missing = new ArrayList<>();
        for (String[] f : files) {
            if (f[1] == null) {
                missing.add(f[0]);
            }
        }
        if (missing.size() == files.length) {
            throw usage("no duplication target: give --target-import-job FILE, or --target-public, --target-attest, "
                    + "--target-signature and --target-ak");
        }
        if (!missing.isEmpty()) {
            throw usage("missing " + String.join(", ", missing) + ": the target needs --target-public, "
                    + "--target-attest, --target-signature and --target-ak (or --target-import-job alone)");
        }
        DuplicationTarget.Builder t = DuplicationTarget.newBuilder()
                .setPublicArea(ByteString.copyFrom(readNonEmptyInput(s, "--target-public", targetPublic)))
                .setAttest(ByteString.copyFrom(readNonEmptyInput(s, "--target-attest", targetAttest)))
                .setSignature(ByteString.copyFrom(readNonEmptyInput(s, "--target-signature", targetSignature)))
                .setAttestationKeyPublic(ByteString.copyFrom(readNonEmptyInput(s, "--target-ak", targetAk)));
        if (qualifyingDataHex != null) {
            t.setQualifyingData(ByteString.copyFrom(hex("--qualifying-data-hex", qualifyingDataHex)));
        }
        return new Target(t.build(), null);
    }

    private Target fromImportJob(Session s) {
        for (String[] f : new String[][] {{"--target-public", targetPublic}, {"--target-attest", targetAttest},
                {"--target-signature", targetSignature}, {"--target-ak", targetAk},
                {"--qualifying-data-hex", qualifyingDataHex}}) {
            if (f[1] != null) {
                throw usage("--target-import-job and " + f[0] + " cannot be combined: the import job carries the "
                        + "target's public area, statement, signature, attestation key and qualifying data");
            }
        }
        String file = targetImportJob;
        ImportJob job = readImportJob(readNonEmptyInput(s, "--target-import-job", file));
        String name = job.getName();
        if (job.getImportMethod() != ImportMethod.TPM2_DUPLICATION) {
            // an RSA job: the way SOFTWARE keys leave (the service refuses it for TPM keys)
            if (job.getPublicKeyPem().isEmpty()) {
                throw usage("--target-import-job " + file + ": import job " + name + " shows no public key ("
                        + Vocabulary.state(job.getState()) + "): only an active job can receive a key");
            }
            return new Target(null, job, job.getPublicKeyPem(), job.getImportMethod());
        }
        if (job.getWrappingPublic().isEmpty()) {
            throw usage("--target-import-job " + file + ": import job " + name + " has no wrapping_public ("
                    + Vocabulary.state(job.getState()) + "): only an active job shows its storage key");
        }
        ImportJobAttestation.Result attested = ImportJobAttestation.verify(job, name);
        if (!attested.verified()) {
            throw new CommandException(ExitCodes.FAILED, "the attestation of import job " + name + " in " + file
                    + " does not verify (" + attested.detail() + "): nothing was exported");
        }
        byte[] signature;
        try {
            signature = TpmStructures.ecdsaP256Signature(job.getAttestation().getSignature().toByteArray());
        } catch (IllegalArgumentException e) {
            throw new CommandException(ExitCodes.FAILED, "import job " + name + " in " + file
                    + ": its attestation signature cannot be sent as a TPMT_SIGNATURE (" + e.getMessage() + ")");
        }
        byte[] akPublic = TpmStructures.tpmtPublic(job.getAttestation().getAttestationKeyPublic().toByteArray());
        DuplicationTarget t = DuplicationTarget.newBuilder()
                .setPublicArea(job.getWrappingPublic())
                .setAttest(job.getAttestation().getAttest())
                .setSignature(ByteString.copyFrom(signature))
                .setAttestationKeyPublic(ByteString.copyFrom(TpmStructures.tpm2b(akPublic)))
                .setQualifyingData(ByteString.copyFrom(ImportWrapping.jobAttestationNonce(name)))
                .build();
        return new Target(t, job);
    }

    /** An import job as {@code import-jobs get|create --json} prints it, or a bare ImportJob object. */
    private ImportJob readImportJob(byte[] text) {
        String json = new String(text, StandardCharsets.UTF_8);
        JsonFormat.Parser parser = JsonFormat.parser().ignoringUnknownFields();
        String why;
        try {
            GetImportJobResponse.Builder response = GetImportJobResponse.newBuilder();
            parser.merge(json, response);
            if (response.hasImportJob() && !response.getImportJob().getName().isEmpty()) {
                return response.getImportJob();
            }
            ImportJob.Builder job = ImportJob.newBuilder();
            parser.merge(json, job);
            if (!job.getName().isEmpty()) {
                return job.build();
            }
            why = "no import job in it";
        } catch (InvalidProtocolBufferException e) {
            why = e.getMessage();
        }
        throw usage("--target-import-job " + targetImportJob + ": not an import job as 'tpmkms import-jobs get NS/JOB "
                + "--json' prints it (" + why + ")");
    }

    private byte[] hex(String option, String text) {
        String h = text.strip();
        if (h.startsWith("0x") || h.startsWith("0X")) {
            h = h.substring(2);
        }
        try {
            return HexFormat.of().parseHex(h);
        } catch (IllegalArgumentException e) {
            throw usage(option + ": not hex (an even number of 0-9a-f): " + text);
        }
    }

    /** The secret, from its file only; empty without the option. Never printed. */
    private byte[] transferAuth(Session s) {
        if (transferAuthFile == null) {
            return new byte[0];
        }
        byte[] auth = readInput(s, "--transfer-auth-file", transferAuthFile);
        if (auth.length > MAX_TRANSFER_AUTH) {
            int n = auth.length;
            Arrays.fill(auth, (byte) 0);
            throw usage("--transfer-auth-file " + transferAuthFile + ": " + n + " bytes; a transfer auth value is at "
                    + "most " + MAX_TRANSFER_AUTH + " bytes (e.g. openssl rand -out " + transferAuthFile + " 32)");
        }
        return auth;
    }

    // --- the output ------------------------------------------------------------------------------

    private Path outputDirectory() {
        Path dir = Path.of(outDir);
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw usage("--out-dir " + outDir + ": not a directory");
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw usage("--out-dir " + outDir + ": cannot create it (" + e + ")");
        }
        if (!Files.isWritable(dir)) {
            throw usage("--out-dir " + outDir + ": not writable");
        }
        return dir;
    }

    /** Writes the blob's files; the duplicate and the seed as secrets (a new file is readable by its owner only). */
    private static List<String> write(Session s, Path dir, ExportKeyVersionResponse response) throws IOException {
        DuplicationBlob blob = response.getDuplication();
        List<String> written = new ArrayList<>();
        written.add(write(s, dir, PUBLIC, blob.getPublicArea(), false));
        written.add(write(s, dir, DUPLICATE, blob.getDuplicate(), true));
        written.add(write(s, dir, SEED, blob.getEncryptedSeed(), true));
        if (!blob.getAuthorityName().isEmpty()) {
            written.add(write(s, dir, AUTHORITY, blob.getAuthorityName(), false));
        }
        for (int i = 0; i < response.getPolicyBranchesCount(); i++) {
            written.add(write(s, dir, BRANCH + i, response.getPolicyBranches(i), false));
        }
        return written;
    }

    private static String write(Session s, Path dir, String name, ByteString data, boolean secret) throws IOException {
        String file = dir.resolve(name).toString();
        if (secret) {
            s.writeSecret(file, data.toByteArray());
        } else {
            s.write(file, data.toByteArray());
        }
        return file;
    }

    /** What was exported, the files, and what to run on the target (tpm2-tools, or the other tpmkms). */
    private void printNext(PrintStream out, Path dir, ExportKeyVersionResponse r, Target target, List<String> written) {
        String to = HexFormat.of().formatHex(r.getTargetName().toByteArray());
        out.println("exported " + key + " version " + Integer.toUnsignedString(r.getVersion()) + " to "
                + (target.job() != null ? "the storage key of import job " + target.job().getName() + ", TPM name " + to
                        : "the storage key with TPM name " + to));
        out.println("wrote " + String.join(" ", written));
        String pub = dir.resolve(PUBLIC).toString();
        String dpriv = dir.resolve(DUPLICATE).toString();
        String seed = dir.resolve(SEED).toString();
        if (target.job() != null) {
            out.println("import it into the target tpmkms (its import job " + target.job().getName() + "):");
            out.println("  tpmkms keys import NAMESPACE/NAME --import-job " + target.job().getName() + " --algorithm "
                    + algorithmWord(r) + " --duplication-public " + pub + " --duplication-private " + dpriv
                    + " --duplication-seed " + seed
                    + (r.getDuplication().getAuthorityName().isEmpty() ? "" : " --authority-name-file "
                            + dir.resolve(AUTHORITY))
                    + (transferAuthFile == null ? "" : " --transfer-auth-file " + transferAuthFile));
            return;
        }
        out.println("on the target (tpm2-tools; parent.ctx = the target storage key, loaded):");
        String priv = dir.resolve("key.priv").toString();
        out.println("  tpm2_import -C parent.ctx -u " + pub + " -i " + dpriv + " -s " + seed + " -r " + priv);
        out.println("  tpm2_load -C parent.ctx -u " + pub + " -r " + priv + " -c key.ctx");
        Use use = use(r);
        if (use == null) {
            return;
        }
        List<String> branches = new ArrayList<>();
        for (int i = 0; i < r.getPolicyBranchesCount(); i++) {
            branches.add(dir.resolve(BRANCH + i).toString());
        }
        String auth = transferAuthFile == null ? "session:session.ctx"
                : "\"session:session.ctx+hex:$(xxd -p -c 64 "
                        + (Session.isStdio(transferAuthFile) ? "TRANSFER_AUTH_FILE" : transferAuthFile) + ")\"";
        out.println("then, for each use, a policy session through the key's " + use.what + " branch:");
        out.println("  tpm2_startauthsession --policy-session -S session.ctx");
        out.println("  tpm2_policycommandcode -S session.ctx " + use.commandCode);
        out.println("  tpm2_policyauthvalue -S session.ctx");
        out.println("  tpm2_policyor -S session.ctx -l sha256:" + String.join(",", branches));
        out.println("  " + use.command.replace("AUTH", auth));
        out.println("  tpm2_flushcontext session.ctx");
        if (use.check != null) {
            out.println("check it with the key's public key:");
            out.println("  tpmkms public-key " + key + " --version " + Integer.toUnsignedString(r.getVersion())
                    + " --out key.pem");
            out.println("  " + use.check);
        }
    }

    /** A USER branch of the key's policy and the tpm2-tools command it authorizes. */
    private record Use(String what, String commandCode, String command, String check) {
    }

    /**
     * The use the exported key's policy allows a tpm2-tools user, found by comparing the policy
     * branches with PolicyCommandCode(cc) → PolicyAuthValue; null when none is for tpm2-tools (no
     * policy, or an AEAD key, whose ciphertexts only tpmkms reads).
     */
    private static Use use(ExportKeyVersionResponse r) {
        List<byte[]> branches = r.getPolicyBranchesList().stream().map(ByteString::toByteArray).toList();
        if (branches.isEmpty() || TpmStructures.contains(branches, TpmStructures.AEAD_POLICY_MARKER)) {
            return null;
        }
        TpmStructures.PublicArea p = publicArea(r);
        if (TpmStructures.contains(branches, TpmStructures.authValueBranch(TpmStructures.CC_SIGN))) {
            String hash = p == null ? null : TpmStructures.hashWord(p.schemeHash());
            String h = hash == null ? "sha256" : hash;
            boolean pss = p != null && p.scheme() == TpmStructures.ALG_RSAPSS;
            return new Use("Sign", "TPM2_CC_Sign", "tpm2_sign -c key.ctx -p AUTH -g " + h + (pss ? " -s rsapss" : "")
                    + " -f plain -o data.sig data.txt",
                    "openssl dgst -" + h + " -verify key.pem -signature data.sig"
                            + (pss ? " -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32" : "") + " data.txt");
        }
        if (TpmStructures.contains(branches, TpmStructures.authValueBranch(TpmStructures.CC_RSA_DECRYPT))) {
            return new Use("RSA_Decrypt", "TPM2_CC_RSA_Decrypt",
                    "tpm2_rsadecrypt -c key.ctx -p AUTH -s null -o plain.bin cipher.bin", null);
        }
        if (TpmStructures.contains(branches, TpmStructures.authValueBranch(TpmStructures.CC_HMAC))) {
            return new Use("HMAC", "TPM2_CC_HMAC", "tpm2_hmac -c key.ctx -p AUTH -o data.mac data.txt", null);
        }
        return null;
    }

    private static TpmStructures.PublicArea publicArea(ExportKeyVersionResponse r) {
        try {
            return TpmStructures.readPublic(r.getDuplication().getPublicArea().toByteArray());
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** The CLI's word for the exported key's algorithm, read from its public area; ALGORITHM when unsure. */
    static String algorithmWord(ExportKeyVersionResponse r) {
        TpmStructures.PublicArea p = publicArea(r);
        if (p == null) {
            return "ALGORITHM";
        }
        boolean sha256 = p.schemeHash() == TpmStructures.ALG_SHA256;
        if (p.type() == TpmStructures.ALG_ECC && p.scheme() == TpmStructures.ALG_ECDSA) {
            if (p.size() == TpmStructures.ECC_NIST_P256 && sha256) {
                return "ec-p256-sha256";
            }
            if (p.size() == TpmStructures.ECC_NIST_P384 && p.schemeHash() == TpmStructures.ALG_SHA384) {
                return "ec-p384-sha384";
            }
        }
        if (p.type() == TpmStructures.ALG_RSA && sha256 && (p.size() == 2048 || p.size() == 3072 || p.size() == 4096)) {
            switch (p.scheme()) {
                case TpmStructures.ALG_RSASSA -> {
                    return "rsa-pkcs1-" + p.size() + "-sha256";
                }
                case TpmStructures.ALG_RSAPSS -> {
                    return "rsa-pss-" + p.size() + "-sha256";
                }
                case TpmStructures.ALG_OAEP -> {
                    return "rsa-oaep-" + p.size() + "-sha256";
                }
                default -> {
                }
            }
        }
        if (p.type() == TpmStructures.ALG_KEYEDHASH && p.scheme() == TpmStructures.ALG_HMAC && sha256) {
            boolean aead = TpmStructures.contains(r.getPolicyBranchesList().stream().map(ByteString::toByteArray)
                    .toList(), TpmStructures.AEAD_POLICY_MARKER);
            return aead ? "aes-256-gcm" : "hmac-sha256";
        }
        return "ALGORITHM";
    }
}
