package io.tpmkms.cli.imports;

import static io.tpmkms.cli.imports.ImportFixtures.job;
import static io.tpmkms.cli.imports.ImportFixtures.pem;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.util.JsonFormat;
import io.grpc.Status;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.CreateImportJobRequest;
import io.tpmkms.proto.key.v1.CreateImportJobResponse;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.CreateKeyResponse;
import io.tpmkms.proto.key.v1.GetImportJobRequest;
import io.tpmkms.proto.key.v1.GetImportJobResponse;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ImportKeyVersionResponse;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.Key;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyVersion;
import io.tpmkms.proto.key.v1.KeyVersionState;
import io.tpmkms.proto.key.v1.ListImportJobsRequest;
import io.tpmkms.proto.key.v1.ListImportJobsResponse;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tpmkms import-jobs create|get|list} and {@code tpmkms keys import} against the fake key
 * service. The fake's import job holds a JCA RSA-3072 key pair: what the CLI wraps must unwrap with
 * plain JCA (RSA-OAEP SHA-256/MGF1-SHA-256, then AES-KWP) back to the original bytes. TPM jobs with
 * real attestations: {@link ImportTpmJobTest}.
 */
class ImportCommandsTest extends CliHarness {

    static final String JOB = "ns/job1";
    private KeyPair jobKey;
    private ImportJob active;

    @TempDir
    Path dir;

    @BeforeAll
    void makeJobKey() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(3072);
        jobKey = g.generateKeyPair();
        active = job(JOB, ImportJobState.ACTIVE, ProtectionLevel.SOFTWARE, ImportMethod.RSA_OAEP_3072_SHA256_AES_256,
                jobKey.getPublic().getEncoded());
    }

    private ImportKeyVersionResponse imported(int version) {
        return ImportKeyVersionResponse.newBuilder().setVersion(KeyVersion.newBuilder()
                .setKey("ns/k").setVersion(version).setState(KeyVersionState.ENABLED).setPrimary(true)
                .setAlgorithm(Algorithm.AES_256_GCM).setProtectionLevel(ProtectionLevel.SOFTWARE)
                .setImported(true).setImportJob(JOB)).build();
    }

    private String fingerprint() throws Exception {
        return "sha256:" + HexFormat.of().formatHex(
                MessageDigest.getInstance("SHA-256").digest(jobKey.getPublic().getEncoded()));
    }

    private static byte[] random(int n) {
        byte[] b = new byte[n];
        new SecureRandom().nextBytes(b);
        return b;
    }

    // --- import-jobs create ----------------------------------------------------------------------

    @Test
    void create_sendsNameMethodProtectionAndAWait_andShowsTheActiveJob() throws Exception {
        service.respond(CreateImportJobResponse.newBuilder().setImportJob(active).build());

        Result r = run("import-jobs", "create", JOB, "--protection", "software");

        assertEquals(0, r.exitCode(), r::toString);
        CreateImportJobRequest req = service.only(CreateImportJobRequest.class);
        assertEquals("ns", req.getNamespace());
        assertEquals("job1", req.getJobId());
        assertEquals(ImportMethod.RSA_OAEP_3072_SHA256_AES_256, req.getImportMethod(), "the default method");
        assertEquals(ProtectionLevel.SOFTWARE, req.getProtectionLevel());
        assertTrue(req.hasWait(), "waits in the call");
        assertTrue(req.getWait().getSeconds() > 0 && req.getWait().getSeconds() < 30,
                "within the call's 30 s deadline: " + req.getWait());
        assertTrue(service.requests(GetImportJobRequest.class).isEmpty(), "active at once: no polling");
        for (String line : new String[] {"name:", JOB, "state:", "active", "method:", "rsa-oaep-3072-sha256-aes-256",
                "protection:", "software", "expires:", "2030-03-20", "public key:", fingerprint(),
                "none: software job, the wrapping key is not attested"}) {
            assertTrue(r.stdout().contains(line), () -> line + "\n" + r);
        }
    }

    @Test
    void create_methodAndTpm_areSent() {
        service.respond(CreateImportJobResponse.newBuilder().setImportJob(active).build());

        Result r = run("import-jobs", "create", JOB, "--method", "rsa-oaep-4096-sha256", "--protection", "tpm", "--no-wait");

        assertEquals(0, r.exitCode(), r::toString);
        CreateImportJobRequest req = service.only(CreateImportJobRequest.class);
        assertEquals(ImportMethod.RSA_OAEP_4096_SHA256, req.getImportMethod());
        assertEquals(ProtectionLevel.TPM, req.getProtectionLevel());
        assertFalse(req.hasWait(), "--no-wait: returns at once");
    }

    @Test
    void create_badNameOrMethod_isUsageError_andSendsNothing() {
        assertEquals(ExitCodes.USAGE, run("import-jobs", "create", "nojob").exitCode());
        assertEquals(ExitCodes.USAGE, run("import-jobs", "create", JOB, "--method", "rsa-pkcs1").exitCode());
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void create_pending_pollsGetImportJobUntilActive() {
        ImportJob pending = job(JOB, ImportJobState.PENDING_GENERATION, ProtectionLevel.SOFTWARE,
                ImportMethod.RSA_OAEP_3072_SHA256_AES_256, null);
        service.respond(CreateImportJobResponse.newBuilder().setImportJob(pending).build(),
                GetImportJobResponse.newBuilder().setImportJob(pending).build(),
                GetImportJobResponse.newBuilder().setImportJob(active).build());

        Result r = run("import-jobs", "create", JOB);

        assertEquals(0, r.exitCode(), r::toString);
        List<GetImportJobRequest> polls = service.requests(GetImportJobRequest.class);
        assertEquals(2, polls.size(), r::toString);
        assertEquals(JOB, polls.get(0).getImportJob());
        assertEquals(List.of(Duration.ofSeconds(1), Duration.ofSeconds(1)), platform.sleeps);
        assertTrue(r.stdout().contains("active"), r::toString);
        assertEquals("", r.stderr());
    }

    @Test
    void create_stillPendingAtTheWaitTimeout_showsTheJob_andSaysSo() {
        ImportJob pending = job(JOB, ImportJobState.PENDING_GENERATION, ProtectionLevel.TPM,
                ImportMethod.RSA_OAEP_3072_SHA256_AES_256, null);
        service.respond(CreateImportJobResponse.newBuilder().setImportJob(pending).build());
        for (int i = 0; i < 10; i++) {
            service.respond(GetImportJobResponse.newBuilder().setImportJob(pending).build());
        }

        Result r = run("import-jobs", "create", JOB, "--wait-timeout", "3s");

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(3, service.requests(GetImportJobRequest.class).size(), "one poll a second for 3 s");
        assertEquals(3, service.only(CreateImportJobRequest.class).getWait().getSeconds());
        assertTrue(r.stdout().contains("pending-generation"), r::toString);
        assertTrue(r.stdout().contains("- (no wrapping key yet)"), r::toString);
        assertTrue(r.stderr().contains("still pending-generation after 3s"), r::toString);
    }

    @Test
    void create_json_printsTheJob() throws Exception {
        service.respond(CreateImportJobResponse.newBuilder().setImportJob(active).build());

        Result r = run("import-jobs", "create", JOB, "--json");

        assertEquals(0, r.exitCode(), r::toString);
        CreateImportJobResponse.Builder back = CreateImportJobResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), back);
        assertEquals(active, back.getImportJob());
        assertTrue(r.stdout().contains("\"state\": \"ACTIVE\""), r::toString);
    }

    @Test
    void create_serviceRefuses_mapsTheReason() {
        service.fail(Status.Code.ALREADY_EXISTS, "import job ns/job1 exists", "IMPORT_JOB_ALREADY_EXISTS");

        Result r = run("import-jobs", "create", JOB);

        assertEquals(ExitCodes.CONFLICT, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("(ALREADY_EXISTS, reason IMPORT_JOB_ALREADY_EXISTS)"), r::toString);
    }

    // --- import-jobs get / list ------------------------------------------------------------------

    @Test
    void get_showsTheJob_andWritesThePublicKey() throws Exception {
        service.respond(GetImportJobResponse.newBuilder().setImportJob(active).build());
        Path pemFile = dir.resolve("wrap.pem");

        Result r = run("import-jobs", "get", JOB, "--public-key-out", pemFile.toString());

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(JOB, service.only(GetImportJobRequest.class).getImportJob());
        assertTrue(r.stdout().contains(fingerprint()), r::toString);
        assertEquals(active.getPublicKeyPem(), Files.readString(pemFile));
    }

    @Test
    void get_json_printsTheResponse() throws Exception {
        service.respond(GetImportJobResponse.newBuilder().setImportJob(active).build());

        Result r = run("import-jobs", "get", JOB, "--json");

        assertEquals(0, r.exitCode(), r::toString);
        GetImportJobResponse.Builder back = GetImportJobResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), back);
        assertEquals(active, back.getImportJob());
    }

    @Test
    void get_attestationOutOfASoftwareJob_isRefused() {
        service.respond(GetImportJobResponse.newBuilder().setImportJob(active).build());

        Result r = run("import-jobs", "get", JOB, "--attestation-out", dir.resolve("a.json").toString());

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("it has no attestation"), r::toString);
        assertFalse(Files.exists(dir.resolve("a.json")));
    }

    @Test
    void get_notFound_exits4() {
        service.fail(Status.Code.NOT_FOUND, "import job ns/nope not found", "IMPORT_JOB_NOT_FOUND");

        Result r = run("import-jobs", "get", "ns/nope");

        assertEquals(ExitCodes.NOT_FOUND, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("reason IMPORT_JOB_NOT_FOUND"), r::toString);
    }

    @Test
    void list_all_followsPages_andPrintsATable() {
        ImportJob second = job("ns/job2", ImportJobState.EXPIRED, ProtectionLevel.TPM,
                ImportMethod.RSA_OAEP_3072_SHA256, null);
        service.respond(ListImportJobsResponse.newBuilder().addImportJobs(active).setNextPageToken("p2").build(),
                ListImportJobsResponse.newBuilder().addImportJobs(second).build());

        Result r = run("import-jobs", "list", "--namespace", "ns", "--all", "--page-size", "1");

        assertEquals(0, r.exitCode(), r::toString);
        List<ListImportJobsRequest> reqs = service.requests(ListImportJobsRequest.class);
        assertEquals(2, reqs.size());
        assertEquals("ns", reqs.get(0).getNamespace());
        assertEquals(1, reqs.get(0).getPageSize());
        assertEquals("p2", reqs.get(1).getPageToken());
        String[] lines = r.stdout().split("\n");
        assertTrue(lines[0].startsWith("NAME") && lines[0].contains("PUBLIC KEY") && lines[0].contains("ATTESTATION"),
                r::toString);
        assertTrue(lines[1].startsWith(JOB) && lines[1].contains("active") && lines[1].contains("sha256:"), r::toString);
        assertTrue(lines[2].startsWith("ns/job2") && lines[2].contains("expired")
                && lines[2].contains("rsa-oaep-3072-sha256 "), r::toString);
    }

    @Test
    void list_json_andNamespaceRequired() throws Exception {
        service.respond(ListImportJobsResponse.newBuilder().addImportJobs(active).build());

        Result r = run("import-jobs", "list", "--namespace", "ns", "--json");
        Result noNamespace = run("import-jobs", "list");

        assertEquals(0, r.exitCode(), r::toString);
        ListImportJobsResponse.Builder back = ListImportJobsResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), back);
        assertEquals(List.of(active), back.getImportJobsList());
        assertEquals(ExitCodes.USAGE, noNamespace.exitCode(), noNamespace::toString);
    }

    // --- keys create --import-only, vocabulary ---------------------------------------------------

    @Test
    void keysCreate_importOnly_isSent_andShown() {
        service.respond(CreateKeyResponse.newBuilder().setKey(Key.newBuilder().setName("ns/k")
                .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setAlgorithm(Algorithm.RSA_SIGN_PSS_4096_SHA256)
                .setImportOnly(true)).build());

        Result r = run("keys", "create", "ns/k", "--purpose", "sign", "--algorithm", "rsa-pss-4096-sha256",
                "--import-only");

        assertEquals(0, r.exitCode(), r::toString);
        CreateKeyRequest req = service.only(CreateKeyRequest.class);
        assertTrue(req.getImportOnly());
        assertEquals(Algorithm.RSA_SIGN_PSS_4096_SHA256, req.getAlgorithm());
        assertTrue(r.stdout().contains("import only:"), r::toString);
        assertTrue(r.stdout().contains("rsa-pss-4096-sha256"), r::toString);
    }

    @Test
    void algorithmWords_include4096() {
        for (String[] w : new String[][] {{"rsa-pkcs1-4096-sha256", "RSA_SIGN_PKCS1_4096_SHA256"},
                {"rsa-pss-4096-sha256", "RSA_SIGN_PSS_4096_SHA256"}, {"rsa-oaep-4096-sha256", "RSA_DECRYPT_OAEP_4096_SHA256"}}) {
            assertEquals(w[1], io.tpmkms.cli.format.Vocabulary.ALGORITHM.parse(w[0]).name());
        }
    }

    // --- keys import --wrapped-key-file ----------------------------------------------------------

    @Test
    void import_wrappedKeyFile_sendsTheBytesUnchanged_withoutFetchingTheJob() throws Exception {
        byte[] blob = random(384 + 40);
        Path f = Files.write(dir.resolve("blob.bin"), blob);
        service.respond(imported(3));

        Result r = run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "aes-256-gcm",
                "--wrapped-key-file", f.toString(), "--version", "3", "--make-primary");

        assertEquals(0, r.exitCode(), r::toString);
        ImportKeyVersionRequest req = service.only(ImportKeyVersionRequest.class);
        assertEquals("ns/k", req.getKey());
        assertEquals(JOB, req.getImportJob());
        assertEquals(Algorithm.AES_256_GCM, req.getAlgorithm());
        assertEquals(ByteString.copyFrom(blob), req.getWrappedKey());
        assertEquals(3, req.getVersion());
        assertTrue(req.getMakePrimary());
        assertTrue(service.requests(GetImportJobRequest.class).isEmpty());
        for (String line : new String[] {"version:", "3", "state:", "enabled", "primary:", "yes",
                "algorithm:", "aes-256-gcm", "origin:", "imported with import job " + JOB}) {
            assertTrue(r.stdout().contains(line), () -> line + "\n" + r);
        }
    }

    @Test
    void import_json_printsTheResponse() throws Exception {
        Path f = Files.write(dir.resolve("blob.bin"), random(424));
        service.respond(imported(1));

        Result r = run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "aes-256-gcm",
                "--wrapped-key-file", f.toString(), "--json");

        assertEquals(0, r.exitCode(), r::toString);
        ImportKeyVersionResponse.Builder back = ImportKeyVersionResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), back);
        assertEquals(imported(1), back.build());
    }

    @Test
    void import_needsExactlyOneSource_andTheJobAndAlgorithm() throws Exception {
        Path f = Files.write(dir.resolve("x.bin"), random(32));
        assertEquals(ExitCodes.USAGE, run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "aes-256-gcm")
                .exitCode());
        assertEquals(ExitCodes.USAGE, run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "aes-256-gcm",
                "--key-file", f.toString(), "--wrapped-key-file", f.toString()).exitCode());
        assertEquals(ExitCodes.USAGE, run("keys", "import", "ns/k", "--algorithm", "aes-256-gcm",
                "--key-file", f.toString()).exitCode());
        assertEquals(ExitCodes.USAGE, run("keys", "import", "ns/k", "--import-job", JOB,
                "--key-file", f.toString()).exitCode());
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void import_serviceRefuses_mapsTheReason() throws Exception {
        Path f = Files.write(dir.resolve("blob.bin"), random(424));
        service.fail(Status.Code.INVALID_ARGUMENT, "the wrapped key does not unwrap", "WRAPPED_KEY_INVALID");

        Result r = run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "aes-256-gcm",
                "--wrapped-key-file", f.toString());

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("(INVALID_ARGUMENT, reason WRAPPED_KEY_INVALID)"), r::toString);
    }

    // --- keys import --key-file: wraps locally ---------------------------------------------------

    private Result importKeyFile(ImportJob job, String algorithm, Path keyFile) {
        service.respond(GetImportJobResponse.newBuilder().setImportJob(job).build(), imported(1));
        return run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", algorithm, "--key-file", keyFile.toString());
    }

    @Test
    void import_keyFile_rawAes_isWrappedSoTheJobKeyUnwrapsTheSameBytes_andWarnsNotAttested() throws Exception {
        byte[] aes = random(32);
        Path f = Files.write(dir.resolve("aes.bin"), aes);

        Result r = importKeyFile(active, "aes-256-gcm", f);

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(JOB, service.only(GetImportJobRequest.class).getImportJob());
        byte[] wrapped = service.only(ImportKeyVersionRequest.class).getWrappedKey().toByteArray();
        assertEquals(384 + 40, wrapped.length, "OAEP-3072 block + KWP of 32 bytes");
        assertArrayEquals(aes, ImportFixtures.unwrap(active.getImportMethod(), jobKey.getPrivate(), wrapped));
        assertTrue(r.stderr().contains("warning: import job " + JOB + " is software: its wrapping key is not attested"),
                r::toString);
    }

    @Test
    void import_keyFile_ecPkcs8Pem_sendsTheDer() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        byte[] pkcs8 = g.generateKeyPair().getPrivate().getEncoded();
        Path f = Files.writeString(dir.resolve("ec.pem"), pem("PRIVATE KEY", pkcs8));

        Result r = importKeyFile(active, "ec-p256-sha256", f);

        assertEquals(0, r.exitCode(), r::toString);
        ImportKeyVersionRequest req = service.only(ImportKeyVersionRequest.class);
        assertEquals(Algorithm.EC_SIGN_P256_SHA256, req.getAlgorithm());
        assertArrayEquals(pkcs8, ImportFixtures.unwrap(active.getImportMethod(), jobKey.getPrivate(),
                req.getWrappedKey().toByteArray()));
    }

    @Test
    void import_keyFile_pkcs8Der_isSentAsItIs() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp384r1"));
        byte[] pkcs8 = g.generateKeyPair().getPrivate().getEncoded();
        Path f = Files.write(dir.resolve("ec.der"), pkcs8);

        Result r = importKeyFile(active, "ec-p384-sha384", f);

        assertEquals(0, r.exitCode(), r::toString);
        assertArrayEquals(pkcs8, ImportFixtures.unwrap(active.getImportMethod(), jobKey.getPrivate(),
                service.only(ImportKeyVersionRequest.class).getWrappedKey().toByteArray()));
    }

    @Test
    void import_keyFile_plainOaepMethod_wrapsTheHmacKeyDirectly() throws Exception {
        ImportJob direct = active.toBuilder().setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256).build();
        byte[] hmac = random(32);
        Path f = Files.write(dir.resolve("hmac.bin"), hmac);

        Result r = importKeyFile(direct, "hmac-sha256", f);

        assertEquals(0, r.exitCode(), r::toString);
        byte[] wrapped = service.only(ImportKeyVersionRequest.class).getWrappedKey().toByteArray();
        assertEquals(384, wrapped.length, "one OAEP block");
        assertArrayEquals(hmac, ImportFixtures.unwrap(ImportMethod.RSA_OAEP_3072_SHA256, jobKey.getPrivate(), wrapped));
    }

    @Test
    void import_keyFile_legacyPem_isRefusedWithTheOpensslHint_andNothingIsSent() throws Exception {
        for (String label : new String[] {"EC PRIVATE KEY", "RSA PRIVATE KEY"}) {
            Path f = Files.writeString(dir.resolve("legacy.pem"), pem(label, random(100)));

            Result r = run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "ec-p256-sha256",
                    "--key-file", f.toString());

            assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
            assertTrue(r.stderr().contains("legacy '" + label + "'"), r::toString);
            assertTrue(r.stderr().contains("openssl pkcs8 -topk8 -nocrypt -in " + f), r::toString);
        }
        assertTrue(service.requests().isEmpty(), "not even the job was fetched");
    }

    @Test
    void import_keyFile_wrongSizeOrMissing_isRefusedLocally() throws Exception {
        Path short16 = Files.write(dir.resolve("aes16.bin"), random(16));
        Path hex = Files.writeString(dir.resolve("aes.hex"), HexFormat.of().formatHex(random(32)) + "\n");

        Result r16 = run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "aes-256-gcm",
                "--key-file", short16.toString());
        Result rHex = run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "hmac-sha256",
                "--key-file", hex.toString());
        Result missing = run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "aes-256-gcm",
                "--key-file", dir.resolve("nope.bin").toString());

        assertEquals(ExitCodes.USAGE, r16.exitCode(), r16::toString);
        assertTrue(r16.stderr().contains("is 16 bytes; AES_256_GCM material is exactly 32 raw bytes"), r16::toString);
        assertEquals(ExitCodes.USAGE, rHex.exitCode(), rHex::toString);
        assertTrue(rHex.stderr().contains("looks like hex"), rHex::toString);
        assertEquals(ExitCodes.USAGE, missing.exitCode(), missing::toString);
        assertTrue(missing.stderr().contains("no such file"), missing::toString);
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void import_keyFile_pendingOrExpiredJob_isRefused_andNothingIsImported() throws Exception {
        Path f = Files.write(dir.resolve("aes.bin"), random(32));
        ImportJob pending = job(JOB, ImportJobState.PENDING_GENERATION, ProtectionLevel.SOFTWARE,
                ImportMethod.RSA_OAEP_3072_SHA256_AES_256, null);
        ImportJob expired = active.toBuilder().setState(ImportJobState.EXPIRED).build();

        Result rPending = importKeyFile(pending, "aes-256-gcm", f);
        Result rExpired = importKeyFile(expired, "aes-256-gcm", f);

        assertEquals(ExitCodes.CONFLICT, rPending.exitCode(), rPending::toString);
        assertTrue(rPending.stderr().contains("import job " + JOB + " is pending-generation, not active"), rPending::toString);
        assertEquals(ExitCodes.CONFLICT, rExpired.exitCode(), rExpired::toString);
        assertTrue(rExpired.stderr().contains("is expired, not active"), rExpired::toString);
        assertTrue(service.requests(ImportKeyVersionRequest.class).isEmpty());
    }

    @Test
    void import_keyFile_tpmJobWithoutAValidAttestation_isRefused_andNothingIsSent() throws Exception {
        Path f = Files.write(dir.resolve("aes.bin"), random(32));
        ImportJob noAttestation = active.toBuilder().setProtectionLevel(ProtectionLevel.TPM).build();
        ImportJob garbage = noAttestation.toBuilder().setAttestation(io.tpmkms.proto.key.v1.KeyAttestation.newBuilder()
                .setAttest(ByteString.copyFrom(random(100))).setSignature(ByteString.copyFrom(random(70)))
                .setAttestationKeyPem(active.getPublicKeyPem())
                .setAttestationKeyPublic(ByteString.copyFrom(random(90)))
                .setCertifiedPublic(ByteString.copyFrom(random(90)))).build();

        Result r1 = importKeyFile(noAttestation, "aes-256-gcm", f);
        Result r2 = importKeyFile(garbage, "aes-256-gcm", f);

        assertEquals(ExitCodes.FAILED, r1.exitCode(), r1::toString);
        assertTrue(r1.stderr().contains("the job carries no attestation"), r1::toString);
        assertTrue(r1.stderr().contains("nothing was sent"), r1::toString);
        assertEquals(ExitCodes.FAILED, r2.exitCode(), r2::toString);
        assertTrue(r2.stderr().contains("does not verify"), r2::toString);
        assertTrue(service.requests(ImportKeyVersionRequest.class).isEmpty());
    }

    @Test
    void import_keyFile_jobKeyOfAnotherSize_isRefused() throws Exception {
        Path f = Files.write(dir.resolve("aes.bin"), random(32));
        ImportJob mismatched = active.toBuilder().setImportMethod(ImportMethod.RSA_OAEP_4096_SHA256_AES_256).build();

        Result r = importKeyFile(mismatched, "aes-256-gcm", f);

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("not RSA-4096"), r::toString);
        assertTrue(service.requests(ImportKeyVersionRequest.class).isEmpty());
    }
}
