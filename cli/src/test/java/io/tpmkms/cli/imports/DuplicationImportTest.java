package io.tpmkms.cli.imports;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.attestation.SyntheticDuplicationJob;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.CreateImportJobRequest;
import io.tpmkms.proto.key.v1.CreateImportJobResponse;
import io.tpmkms.proto.key.v1.ExportPolicy;
import io.tpmkms.proto.key.v1.GetImportJobRequest;
import io.tpmkms.proto.key.v1.GetImportJobResponse;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ImportKeyVersionResponse;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.KeyVersion;
import io.tpmkms.proto.key.v1.KeyVersionState;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Import method tpm2-duplication in the CLI: {@code import-jobs create --method tpm2-duplication},
 * {@code import-jobs get --wrapping-public-out} and the job's storage key and attestation in its
 * view, and {@code keys import --duplication-*}, which sends the blob's files and the transfer auth
 * value (from its file only) in ImportKeyVersion, against the fake key service.
 */
class DuplicationImportTest extends CliHarness {

    static final String JOB = "ns/dup1";
    static final byte[] TRANSFER_AUTH = "transfer-auth-value-of-32-bytes!".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path dir;

    private SyntheticDuplicationJob dup;

    @BeforeAll
    void makeJob() throws Exception {
        dup = new SyntheticDuplicationJob(JOB);
    }

    private static byte[] random(int n) {
        byte[] b = new byte[n];
        new SecureRandom().nextBytes(b);
        return b;
    }

    private ImportKeyVersionResponse imported() {
        return ImportKeyVersionResponse.newBuilder().setVersion(KeyVersion.newBuilder().setKey("ns/k").setVersion(1)
                .setState(KeyVersionState.ENABLED).setPrimary(true).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256)
                .setProtectionLevel(ProtectionLevel.TPM).setImported(true).setDuplicated(true).setImportJob(JOB)
                .setExportPolicy(ExportPolicy.DUPLICABLE).setPolicyDigest(ByteString.copyFrom(new byte[32]))).build();
    }

    /** The three files of tpm2_import, and the authority name: {--duplication-public, F, ...}. */
    private List<String> blobFiles() throws Exception {
        return new ArrayList<>(List.of(
                "--duplication-public", Files.write(dir.resolve("key.pub"), random(90)).toString(),
                "--duplication-private", Files.write(dir.resolve("key.dpriv"), random(130)).toString(),
                "--duplication-seed", Files.write(dir.resolve("key.seed"), random(68)).toString()));
    }

    private Result importBlob(List<String> options) {
        List<String> args = new ArrayList<>(List.of("keys", "import", "ns/k", "--import-job", JOB,
                "--algorithm", "ec-p256-sha256"));
        args.addAll(options);
        return run(args.toArray(String[]::new));
    }

    // --- keys import --duplication-* ---------------------------------------------------------------

    @Test
    void import_duplicationBlob_sendsTheFilesAndTheTransferAuth_withoutFetchingTheJob() throws Exception {
        List<String> options = blobFiles();
        Path authority = Files.write(dir.resolve("authority.name"), random(34));
        Path auth = Files.write(dir.resolve("transfer.auth"), TRANSFER_AUTH);
        options.addAll(List.of("--authority-name-file", authority.toString(), "--transfer-auth-file", auth.toString(),
                "--version", "4", "--make-primary"));
        service.respond(imported());

        Result r = importBlob(options);

        assertEquals(0, r.exitCode(), r::toString);
        ImportKeyVersionRequest req = service.only(ImportKeyVersionRequest.class);
        assertEquals("ns/k", req.getKey());
        assertEquals(JOB, req.getImportJob());
        assertEquals(Algorithm.EC_SIGN_P256_SHA256, req.getAlgorithm());
        assertArrayEquals(Files.readAllBytes(dir.resolve("key.pub")), req.getDuplication().getPublicArea().toByteArray());
        assertArrayEquals(Files.readAllBytes(dir.resolve("key.dpriv")), req.getDuplication().getDuplicate().toByteArray());
        assertArrayEquals(Files.readAllBytes(dir.resolve("key.seed")),
                req.getDuplication().getEncryptedSeed().toByteArray());
        assertArrayEquals(Files.readAllBytes(authority), req.getDuplication().getAuthorityName().toByteArray());
        assertArrayEquals(TRANSFER_AUTH, req.getTransferAuth().toByteArray());
        assertTrue(req.getWrappedKey().isEmpty(), "no wrapped_key with a duplication blob");
        assertEquals(4, req.getVersion());
        assertTrue(req.getMakePrimary());
        assertTrue(service.requests(GetImportJobRequest.class).isEmpty(), "the blob is sent as it is");
        for (String line : new String[] {"origin:", "imported by duplication (TPM2_Import of a duplication blob) with "
                + "import job " + JOB, "export policy:", "duplicable", "policy digest:", "0".repeat(64)}) {
            assertTrue(r.stdout().contains(line), () -> line + "\n" + r);
        }
        String secret = new String(TRANSFER_AUTH, StandardCharsets.US_ASCII);
        assertFalse(r.stdout().contains(secret) || r.stderr().contains(secret), r::toString);
    }

    @Test
    void import_tpm2ToolsBlob_withoutAuthorityOrTransferAuth_sendsThemEmpty() throws Exception {
        service.respond(imported());

        Result r = importBlob(blobFiles());

        assertEquals(0, r.exitCode(), r::toString);
        ImportKeyVersionRequest req = service.only(ImportKeyVersionRequest.class);
        assertTrue(req.getDuplication().getAuthorityName().isEmpty());
        assertTrue(req.getTransferAuth().isEmpty(), "tpm2-tools' default: an empty auth value");
        assertEquals(0, req.getVersion());
        assertFalse(req.getMakePrimary());
    }

    @Test
    void import_duplication_isExclusiveWithKeyFiles_andNeedsAllThreeFiles() throws Exception {
        List<String> files = blobFiles();
        Path keyFile = Files.write(dir.resolve("aes.bin"), random(32));
        List<String> withKeyFile = new ArrayList<>(files);
        withKeyFile.addAll(List.of("--key-file", keyFile.toString()));
        List<String> noSeed = new ArrayList<>(files.subList(0, 4));
        List<String> authOnly = List.of("--transfer-auth-file", keyFile.toString(), "--key-file", keyFile.toString());

        Result both = importBlob(withKeyFile);
        Result missingSeed = importBlob(noSeed);
        Result authWithKeyFile = importBlob(authOnly);

        assertEquals(ExitCodes.USAGE, both.exitCode(), both::toString);
        assertTrue(both.stderr().contains("--key-file=FILE, --duplication-public=FILE are mutually exclusive")
                || both.stderr().contains("--duplication-public=FILE, --key-file=FILE are mutually exclusive"),
                both::toString);
        assertEquals(ExitCodes.USAGE, missingSeed.exitCode(), missingSeed::toString);
        assertTrue(missingSeed.stderr().contains("error: missing --duplication-seed: a duplication blob is "
                + "--duplication-public, --duplication-private and --duplication-seed"), missingSeed::toString);
        assertEquals(ExitCodes.USAGE, authWithKeyFile.exitCode(), authWithKeyFile::toString);
        assertTrue(authWithKeyFile.stderr().contains("--transfer-auth-file goes with a duplication blob"),
                authWithKeyFile::toString);
        assertTrue(service.requests().isEmpty(), "nothing was called");
    }

    @Test
    void import_duplication_badFiles_areUsageErrorsNamingThem_andNothingIsSent() throws Exception {
        List<String> missing = blobFiles();
        missing.set(3, dir.resolve("nope.dpriv").toString());
        List<String> empty = blobFiles();
        empty.set(5, Files.write(dir.resolve("empty.seed"), new byte[0]).toString());
        List<String> longAuth = blobFiles();
        longAuth.addAll(List.of("--transfer-auth-file", Files.write(dir.resolve("long.auth"), random(33)).toString()));
        List<String> pinned = blobFiles();
        pinned.addAll(List.of("--attestation-key-name", "000b" + "00".repeat(32)));

        Result rMissing = importBlob(missing);
        Result rEmpty = importBlob(empty);
        Result rLong = importBlob(longAuth);
        Result rPinned = importBlob(pinned);

        assertEquals(ExitCodes.USAGE, rMissing.exitCode(), rMissing::toString);
        assertTrue(rMissing.stderr().contains("error: --duplication-private " + dir.resolve("nope.dpriv")
                + ": no such file"), rMissing::toString);
        assertEquals(ExitCodes.USAGE, rEmpty.exitCode(), rEmpty::toString);
        assertTrue(rEmpty.stderr().contains("--duplication-seed " + dir.resolve("empty.seed") + ": the file is empty"),
                rEmpty::toString);
        assertEquals(ExitCodes.USAGE, rLong.exitCode(), rLong::toString);
        assertTrue(rLong.stderr().contains("33 bytes; a transfer auth value is at most 32 bytes"), rLong::toString);
        assertEquals(ExitCodes.USAGE, rPinned.exitCode(), rPinned::toString);
        assertTrue(rPinned.stderr().contains("it needs --key-file (with --wrapped-key-file or a duplication blob"),
                rPinned::toString);
        assertTrue(service.requests().isEmpty(), "nothing was called");
    }

    @Test
    void import_serviceRefusesTheBlob_exits1WithTheReason() throws Exception {
        service.fail(Status.Code.INVALID_ARGUMENT, "the TPM refused the duplication blob", "DUPLICATION_BLOB_INVALID");

        Result r = importBlob(blobFiles());

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("(INVALID_ARGUMENT, reason DUPLICATION_BLOB_INVALID)"), r::toString);
    }

    @Test
    void import_keyFile_intoADuplicationJob_isRefusedWithWhatToGive() throws Exception {
        Path keyFile = Files.write(dir.resolve("aes.bin"), random(32));
        service.respond(GetImportJobResponse.newBuilder().setImportJob(dup.job).build());

        Result r = run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "aes-256-gcm",
                "--key-file", keyFile.toString());

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("import job " + JOB + " takes duplication blobs (method tpm2-duplication), not "
                + "key material: give --duplication-public, --duplication-private and --duplication-seed"), r::toString);
        assertTrue(service.requests(ImportKeyVersionRequest.class).isEmpty());
    }

    // --- import-jobs create / get -------------------------------------------------------------------

    @Test
    void createJob_methodTpm2Duplication_isSent_andTheJobShowsItsStorageKey() throws Exception {
        service.respond(CreateImportJobResponse.newBuilder().setImportJob(dup.job).build());

        Result r = run("import-jobs", "create", JOB, "--method", "tpm2-duplication", "--protection", "tpm");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(ImportMethod.TPM2_DUPLICATION, service.only(CreateImportJobRequest.class).getImportMethod());
        String name = "000b" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(dup.storagePublic));
        for (String line : new String[] {"method:", "tpm2-duplication", "storage key:", "TPM name " + name,
                "verified offline: TPM2_Certify of the wrapping key: fixedTPM fixedParent sensitiveDataOrigin",
                " restricted decrypt; public key = the job's; wrapping_public = the certified storage key;"}) {
            assertTrue(r.stdout().contains(line), () -> line + "\n" + r);
        }
    }

    @Test
    void getJob_wrappingPublicOut_writesTheTpm2bPublic() throws Exception {
        service.respond(GetImportJobResponse.newBuilder().setImportJob(dup.job).build());
        Path out = dir.resolve("srk.pub");

        Result r = run("import-jobs", "get", JOB, "--wrapping-public-out", out.toString());

        assertEquals(0, r.exitCode(), r::toString);
        byte[] written = Files.readAllBytes(out);
        assertArrayEquals(dup.job.getWrappingPublic().toByteArray(), written);
        assertEquals(dup.storagePublic.length, (written[0] & 0xff) << 8 | written[1] & 0xff, "TPM2B: size, then TPMT_PUBLIC");
    }

    @Test
    void getJob_wrappingPublicOut_ofAnRsaJob_orAnInactiveOne_writesNothing() throws Exception {
        ImportJob rsa = dup.job.toBuilder().setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256)
                .clearWrappingPublic().build();
        ImportJob expired = dup.job.toBuilder().setState(ImportJobState.EXPIRED).clearWrappingPublic().build();
        Path out = dir.resolve("srk.pub");

        service.respond(GetImportJobResponse.newBuilder().setImportJob(rsa).build());
        Result rRsa = run("import-jobs", "get", JOB, "--wrapping-public-out", out.toString());
        service.respond(GetImportJobResponse.newBuilder().setImportJob(expired).build());
        Result rExpired = run("import-jobs", "get", JOB, "--wrapping-public-out", out.toString());

        assertEquals(ExitCodes.USAGE, rRsa.exitCode(), rRsa::toString);
        assertTrue(rRsa.stderr().contains("only tpm2-duplication jobs have a storage key"), rRsa::toString);
        assertEquals(ExitCodes.CONFLICT, rExpired.exitCode(), rExpired::toString);
        assertTrue(rExpired.stderr().contains("shows no storage key (expired; only an active job does): nothing written"),
                rExpired::toString);
        assertFalse(Files.exists(out));
    }

    @Test
    void getJob_wrappingPublicThatIsNotTheCertifiedKey_isNotVerified() throws Exception {
        SyntheticDuplicationJob other = new SyntheticDuplicationJob(JOB);
        ImportJob swapped = dup.job.toBuilder().setWrappingPublic(other.job.getWrappingPublic()).build();
        service.respond(GetImportJobResponse.newBuilder().setImportJob(swapped).build());

        Result r = run("import-jobs", "get", JOB);

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("NOT VERIFIED: wrapping_public is not the certified public area"), r::toString);
    }
}
