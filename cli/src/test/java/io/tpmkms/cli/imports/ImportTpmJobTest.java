package io.tpmkms.cli.imports;

import static io.tpmkms.cli.imports.ImportFixtures.job;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.util.JsonFormat;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.proto.key.v1.GetImportJobResponse;
import io.tpmkms.proto.key.v1.GetKeyAttestationResponse;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportJobState;
import io.tpmkms.proto.key.v1.ImportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ImportKeyVersionResponse;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.proto.key.v1.KeyAttestation;
import io.tpmkms.proto.key.v1.KeyVersion;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.ImportWrapping;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.protection.tpm.TpmKeyProtectionBackend;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TPM import jobs with real wrapping keys and attestations: on a swtpm, tpm-adapter generates an
 * RSA_DECRYPT_OAEP_3072_SHA256 key (fixedTPM fixedParent sensitiveDataOrigin decrypt) and certifies it
 * with empty qualifying data, as the service does for a job. {@code keys import --key-file} must
 * verify that offline before wrapping, and what it sends must unwrap in that TPM (TPM2_RSA_Decrypt of
 * the OAEP part, then AES-KWP). Skipped when swtpm is not installed.
 */
class ImportTpmJobTest extends CliHarness {

    static final byte[] AUTH_SECRET = "cli import test auth secret".getBytes(StandardCharsets.US_ASCII);
    static final String JOB = "ns/tpmjob";
    /** What the key service certifies a job's wrapping key with: bound to the job's name. */
    static final byte[] JOB_NONCE = io.tpmkms.protection.ImportWrapping.jobAttestationNonce(JOB);

    private Swtpm swtpm;
    private TpmKeyProtectionBackend backend;
    private GeneratedKey wrappingKey;
    private ImportJob tpmJob;
    /** An EC sign key generated and certified the same way: genuine, but not a decrypt key. */
    private ImportJob signKeyJob;

    @TempDir
    Path dir;

    @BeforeAll
    void makeWrappingKey() throws Exception {
        for (String exe : new String[] {"swtpm", "swtpm_setup", "swtpm_localca", "tpm2_createprimary"}) {
            Assumptions.assumeTrue(onPath(exe), exe + " is not installed (apt-get install swtpm swtpm-tools tpm2-tools)");
        }
        swtpm = Swtpm.startWithEkCertificate();
        backend = TpmKeyProtectionBackend.open(swtpm.config(), AUTH_SECRET);
        wrappingKey = backend.generate(new KeySpec(KeyAlgorithm.RSA_DECRYPT_OAEP_3072_SHA256));
        tpmJob = job(JOB, ImportJobState.ACTIVE, ProtectionLevel.TPM, ImportMethod.RSA_OAEP_3072_SHA256_AES_256,
                wrappingKey.publicKeyDer()).toBuilder()
                .setAttestation(wire(backend.certify(wrappingKey.handle(), JOB_NONCE))).build();
        GeneratedKey sign = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
        signKeyJob = job(JOB, ImportJobState.ACTIVE, ProtectionLevel.TPM, ImportMethod.RSA_OAEP_3072_SHA256_AES_256,
                sign.publicKeyDer()).toBuilder()
                .setAttestation(wire(backend.certify(sign.handle(), JOB_NONCE))).build();
    }

    @AfterAll
    void stopTpm() throws Exception {
        if (backend != null) {
            backend.close();
        }
        if (swtpm != null) {
            swtpm.close();
        }
    }

    private static boolean onPath(String exe) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, exe))) {
                return true;
            }
        }
        return false;
    }

    static KeyAttestation wire(io.tpmkms.protection.KeyAttestation a) {
        var b = KeyAttestation.newBuilder()
                .setAttest(ByteString.copyFrom(a.attest()))
                .setSignature(ByteString.copyFrom(a.signature()))
                .setAttestationKeyPem(ImportFixtures.pem("PUBLIC KEY", a.akPublicDer()))
                .setAttestationKeyPublic(ByteString.copyFrom(a.akTpmPublic()))
                .setAttestationKeyName(ByteString.copyFrom(a.akName()))
                .setCertifiedName(ByteString.copyFrom(a.certifiedName()))
                .setCertifiedPublic(ByteString.copyFrom(a.certifiedTpmPublic()));
        if (a.ekCertificateDer() != null) {
            b.setEkCertificate(ByteString.copyFrom(a.ekCertificateDer()));
        }
        return b.build();
    }

    private static ByteString flip(ByteString b, int index) {
        byte[] a = b.toByteArray();
        a[index] ^= 1;
        return ByteString.copyFrom(a);
    }

    private ImportJob tampered(UnaryOperator<KeyAttestation.Builder> change) {
        return tpmJob.toBuilder().setAttestation(change.apply(tpmJob.getAttestation().toBuilder())).build();
    }

    private Result importAes(ImportJob job, byte[] aes, String... options) throws Exception {
        Path f = Files.write(dir.resolve("aes.bin"), aes);
        service.respond(GetImportJobResponse.newBuilder().setImportJob(job).build(),
                ImportKeyVersionResponse.newBuilder().setVersion(KeyVersion.newBuilder().setKey("ns/k").setVersion(1)
                        .setImported(true).setImportJob(JOB)).build());
        java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of(
                "keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "aes-256-gcm", "--key-file", f.toString()));
        args.addAll(java.util.List.of(options));
        return run(args.toArray(String[]::new));
    }

    /** The AK name the job's statement carries, as the CLI prints it (lowercase hex). */
    private String akName() {
        return java.util.HexFormat.of().formatHex(tpmJob.getAttestation().getAttestationKeyName().toByteArray());
    }

    /** A well-formed TPM name that is not the statement's AK: its last digest byte changed. */
    private String anotherAkName() {
        return java.util.HexFormat.of().formatHex(
                flip(tpmJob.getAttestation().getAttestationKeyName(), tpmJob.getAttestation().getAttestationKeyName().size() - 1)
                        .toByteArray());
    }

    private static final String NOT_PINNED_NOTE = "note: attestation key not pinned (--attestation-key-name); its name is ";

    private static byte[] random(int n) {
        byte[] b = new byte[n];
        new SecureRandom().nextBytes(b);
        return b;
    }

    private void assertRefused(Result r, String why) {
        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("the attestation of import job " + JOB + "'s wrapping key does not verify"), r::toString);
        assertTrue(r.stderr().contains(why), r::toString);
        assertTrue(r.stderr().contains("nothing was sent"), r::toString);
        assertTrue(service.requests(ImportKeyVersionRequest.class).isEmpty(), "no ImportKeyVersion");
    }

    @Test
    void import_genuineTpmJob_verifiesThenWraps_andTheTpmUnwrapsTheSameBytes() throws Exception {
        byte[] aes = random(32);

        Result r = importAes(tpmJob, aes);

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(NOT_PINNED_NOTE + akName(), r.stderr().strip(),
                "no warning for an attested job, only the AK name to pin");
        byte[] wrapped = service.only(ImportKeyVersionRequest.class).getWrappedKey().toByteArray();
        ImportWrapping.Parts parts = ImportWrapping.split(ImportWrapping.Method.RSA_OAEP_3072_SHA256_AES_256, wrapped);
        byte[] k = backend.asymmetricDecrypt(wrappingKey.handle(), parts.oaep());
        assertArrayEquals(aes, ImportWrapping.unwrapKwp(k, parts.kwp()));
    }

    @Test
    void get_genuineTpmJob_saysVerifiedOffline_andWritesAnAttestationThatAttestationVerifyAccepts() throws Exception {
        service.respond(GetImportJobResponse.newBuilder().setImportJob(tpmJob).build());
        Path att = dir.resolve("job-att.json");
        Path pem = dir.resolve("wrap.pem");

        Result r = run("import-jobs", "get", JOB, "--attestation-out", att.toString(), "--public-key-out", pem.toString());

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("verified offline: TPM2_Certify of the wrapping key: fixedTPM fixedParent "
                + "sensitiveDataOrigin"), r::toString);
        assertTrue(r.stdout().contains(" decrypt; public key = the job's"), r::toString);
        GetKeyAttestationResponse.Builder back = GetKeyAttestationResponse.newBuilder();
        JsonFormat.parser().merge(Files.readString(att), back);
        assertEquals(tpmJob.getAttestation(), back.getAttestation());

        Result v = runAgainst(new byte[0], "attestation", "verify", "--in", att.toString(), "--nonce",
                java.util.HexFormat.of().formatHex(JOB_NONCE),
                "--public-key", pem.toString(), "--address", "127.0.0.1:1");
        assertEquals(0, v.exitCode(), v::toString);
        assertTrue(v.stdout().contains("public key matches: ok"), v::toString);
        assertTrue(v.stdout().contains("origin (TPM attributes): generated in the TPM"), v::toString);
    }

    // --- pinning the attestation key, checking the EK certificate's CA ------------------------

    @Test
    void import_pinnedToTheStatementsAk_proceeds_caseInsensitively_withoutTheNote() throws Exception {
        byte[] aes = random(32);

        Result r = importAes(tpmJob, aes, "--attestation-key-name", akName().toUpperCase(java.util.Locale.ROOT));

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals("", r.stderr(), "pinned: no note");
        byte[] wrapped = service.only(ImportKeyVersionRequest.class).getWrappedKey().toByteArray();
        ImportWrapping.Parts parts = ImportWrapping.split(ImportWrapping.Method.RSA_OAEP_3072_SHA256_AES_256, wrapped);
        assertArrayEquals(aes, ImportWrapping.unwrapKwp(backend.asymmetricDecrypt(wrappingKey.handle(), parts.oaep()),
                parts.kwp()));
    }

    @Test
    void import_pinnedToAnotherAk_isRefused_andNothingIsSent() throws Exception {
        Result r = importAes(tpmJob, random(32), "--attestation-key-name", anotherAkName());

        assertRefused(r, "attestation key name " + akName() + " is not the pinned --attestation-key-name "
                + anotherAkName());
        assertTrue(!r.stderr().contains(NOT_PINNED_NOTE), r::toString);
    }

    @Test
    void import_pinned_butTheStatementDoesNotVerify_isRefusedForTheFailedCheck() throws Exception {
        int index = tpmJob.getAttestation().getSignature().size() - 2;

        Result r = importAes(tampered(b -> b.setSignature(flip(b.getSignature(), index))), random(32),
                "--attestation-key-name", akName());

        assertRefused(r, "signature by the attestation key");
    }

    @Test
    void import_ekCa_theIssuingCa_proceeds_andAnotherCa_isRefused() throws Exception {
        Path issuer = swtpm.dir.resolve("ca/issuercert.pem");
        Path root = swtpm.dir.resolve("ca/swtpm-localca-rootca-cert.pem");

        Result ok = importAes(tpmJob, random(32), "--ek-ca", issuer.toString(), "--attestation-key-name", akName());
        assertEquals(0, ok.exitCode(), ok::toString);
        assertEquals(1, service.requests(ImportKeyVersionRequest.class).size());
        service.reset();

        Result bad = importAes(tpmJob, random(32), "--ek-ca", root.toString());
        assertRefused(bad, "EK certificate issued by the given CA: the EK certificate's issuer");
    }

    @Test
    void import_pinOrEkCa_forASoftwareJob_isRefused_andNothingIsSent() throws Exception {
        ImportJob software = tpmJob.toBuilder().setProtectionLevel(ProtectionLevel.SOFTWARE).clearAttestation().build();

        Result r = importAes(software, random(32), "--attestation-key-name", akName());

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("import job " + JOB + " is software: its wrapping key has no attestation to "
                + "check --attestation-key-name against"), r::toString);
        assertTrue(r.stderr().contains("nothing was sent"), r::toString);
        assertTrue(service.requests(ImportKeyVersionRequest.class).isEmpty(), "no ImportKeyVersion");
    }

    @Test
    void import_pinWithWrappedKeyFile_orMalformedPin_isAUsageError_andNothingIsCalled() throws Exception {
        Path blob = Files.write(dir.resolve("blob.bin"), random(400));

        Result wrapped = run("keys", "import", "ns/k", "--import-job", JOB, "--algorithm", "aes-256-gcm",
                "--wrapped-key-file", blob.toString(), "--attestation-key-name", akName());
        Result notHex = importAes(tpmJob, random(32), "--attestation-key-name", "000bxyz");

        assertEquals(ExitCodes.USAGE, wrapped.exitCode(), wrapped::toString);
        assertTrue(wrapped.stderr().contains("it needs --key-file"), wrapped::toString);
        assertEquals(ExitCodes.USAGE, notHex.exitCode(), notHex::toString);
        assertTrue(notHex.stderr().contains("--attestation-key-name: not hex"), notHex::toString);
        assertTrue(service.requests(ImportKeyVersionRequest.class).isEmpty(), "no ImportKeyVersion");
        assertTrue(service.requests(io.tpmkms.proto.key.v1.GetImportJobRequest.class).isEmpty(), "no GetImportJob");
    }

    @Test
    void get_attestationKeyName_judgesTheAttestationLineAgainstThePin() throws Exception {
        service.respond(GetImportJobResponse.newBuilder().setImportJob(tpmJob).build());
        Result right = run("import-jobs", "get", JOB, "--attestation-key-name", "0x" + akName());
        service.respond(GetImportJobResponse.newBuilder().setImportJob(tpmJob).build());
        Result wrong = run("import-jobs", "get", JOB, "--attestation-key-name", anotherAkName());

        assertEquals(0, right.exitCode(), right::toString);
        assertTrue(right.stdout().contains("verified offline: TPM2_Certify of the wrapping key: "), right::toString);
        assertTrue(right.stdout().contains("attestation key = the pinned one; attestation key name " + akName()
                + " (pinned)"), right::toString);
        assertEquals(0, wrong.exitCode(), wrong::toString);
        assertTrue(wrong.stdout().contains("NOT VERIFIED: attestation key name " + akName()
                + " is not the pinned --attestation-key-name " + anotherAkName()), wrong::toString);
        assertTrue(!wrong.stdout().contains("verified offline"), wrong::toString);
    }

    @Test
    void import_tamperedSignature_isRefused() throws Exception {
        int index = tpmJob.getAttestation().getSignature().size() - 2;

        Result r = importAes(tampered(b -> b.setSignature(flip(b.getSignature(), index))), random(32));

        assertRefused(r, "signature by the attestation key");
    }

    @Test
    void import_jobPublicKeyIsNotTheCertifiedKey_isRefused() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(3072);
        String foreign = ImportFixtures.pem("PUBLIC KEY", g.generateKeyPair().getPublic().getEncoded());

        Result r = importAes(tpmJob.toBuilder().setPublicKeyPem(foreign).build(), random(32));

        assertRefused(r, "public key matches");
    }

    @Test
    void import_statementMadeForAnotherJob_isRefused() throws Exception {
        ImportJob replayed = tpmJob.toBuilder().setAttestation(wire(backend.certify(wrappingKey.handle(),
                io.tpmkms.protection.ImportWrapping.jobAttestationNonce("ns/another-job")))).build();

        Result r = importAes(replayed, random(32));

        assertRefused(r, "nonce");
    }

    @Test
    void import_serviceAnswersWithAnotherJobsKeyAndStatement_isRefused() throws Exception {
        // a genuine statement for job ns/other, handed out when ns/tpmjob was asked for
        ImportJob other = tpmJob.toBuilder().setName("ns/other").setJobId("other")
                .setAttestation(wire(backend.certify(wrappingKey.handle(),
                        io.tpmkms.protection.ImportWrapping.jobAttestationNonce("ns/other")))).build();

        Result r = importAes(other, random(32));

        assertRefused(r, "the service answered with import job ns/other");
    }

    @Test
    void import_attestationWithANonce_isNotTheJobsStatement_andIsRefused() throws Exception {
        ImportJob withNonce = tpmJob.toBuilder()
                .setAttestation(wire(backend.certify(wrappingKey.handle(), random(16)))).build();

        Result r = importAes(withNonce, random(32));

        assertRefused(r, "nonce");
    }

    @Test
    void import_certifiedKeyIsASignKey_isRefused() throws Exception {
        Result r = importAes(signKeyJob, random(32));

        assertRefused(r, "not a decrypt key");
    }

    @Test
    void import_tamperedCertifiedPublic_isRefused() throws Exception {
        byte[] pub = tpmJob.getAttestation().getCertifiedPublic().toByteArray();
        pub[7] &= ~0x20; // clear sensitiveDataOrigin: the name no longer matches the signed statement

        Result r = importAes(tampered(b -> b.setCertifiedPublic(ByteString.copyFrom(pub))), random(32));

        assertRefused(r, "certified name = hash of the public area");
    }


    /**
     * A TPM2_DUPLICATION job as the service makes one (the SRK, certified with the job's qualifying
     * data): {@code import-jobs get} verifies it offline and writes its TPM2B_PUBLIC, and what
     * {@code keys export --target-import-job} sends from its JSON passes the service's own target check
     * (tpm-adapter's DuplicationTargets.verify) with the TPM's AK trusted.
     */
    @Test
    void duplicationJob_ofARealTpm_verifiesOffline_andIsAnExportTargetTheServiceAccepts() throws Exception {
        String name = "ns/dupjob";
        io.tpmkms.protection.KeyAttestation srk = backend.certifySrk(ImportWrapping.jobAttestationNonce(name));
        byte[] tpmt = srk.certifiedTpmPublic();
        byte[] sized = new byte[tpmt.length + 2];
        sized[0] = (byte) (tpmt.length >>> 8);
        sized[1] = (byte) tpmt.length;
        System.arraycopy(tpmt, 0, sized, 2, tpmt.length);
        ImportJob dupJob = job(name, ImportJobState.ACTIVE, ProtectionLevel.TPM, ImportMethod.TPM2_DUPLICATION,
                io.tpmkms.protection.tpm.KeyAttestationVerifier.spkiOf(tpmt)).toBuilder()
                .setAttestation(wire(srk)).setWrappingPublic(ByteString.copyFrom(sized)).build();
        Path pub = dir.resolve("srk.pub");
        service.respond(GetImportJobResponse.newBuilder().setImportJob(dupJob).build());

        Result get = run("import-jobs", "get", name, "--wrapping-public-out", pub.toString());

        assertEquals(0, get.exitCode(), get::toString);
        assertTrue(get.stdout().contains("verified offline: TPM2_Certify of the wrapping key: "), get::toString);
        assertTrue(get.stdout().contains("wrapping_public = the certified storage key"), get::toString);
        assertArrayEquals(sized, Files.readAllBytes(pub));

        Path jobFile = Files.writeString(dir.resolve("job.json"), io.tpmkms.cli.Session.json(
                GetImportJobResponse.newBuilder().setImportJob(dupJob)));
        service.respond(io.tpmkms.proto.key.v1.ExportKeyVersionResponse.newBuilder().setVersion(1)
                .setDuplication(io.tpmkms.proto.key.v1.DuplicationBlob.newBuilder()
                        .setPublicArea(ByteString.copyFrom(random(90))).setDuplicate(ByteString.copyFrom(random(100)))
                        .setEncryptedSeed(ByteString.copyFrom(random(68)))).build());

        Result export = run("keys", "export", "ns/k", "--target-import-job", jobFile.toString(),
                "--out-dir", dir.resolve("out").toString());

        assertEquals(0, export.exitCode(), export::toString);
        var target = service.only(io.tpmkms.proto.key.v1.ExportKeyVersionRequest.class).getTarget();
        var checked = io.tpmkms.protection.tpm.DuplicationTargets.verify(target.getPublicArea().toByteArray(),
                target.getAttest().toByteArray(), target.getSignature().toByteArray(),
                target.getAttestationKeyPublic().toByteArray(),
                java.util.Set.of(java.util.HexFormat.of().formatHex(srk.akName())),
                target.getQualifyingData().toByteArray());
        assertArrayEquals(tpmt, checked.tpmtPublic());
    }

    /**
     * A key really imported into the TPM (TPM2_Import of an EC P-256 key) and certified by it:
     * `attestation verify` says imported, checks the public key, and passes only because the
     * object's policy makes duplication impossible.
     */
    @Test
    void attestationVerify_ofAKeyImportedIntoTheTpm_saysImported_andPasses() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
        java.security.KeyPair pair = g.generateKeyPair();
        GeneratedKey imported;
        try (io.tpmkms.protection.KeyMaterial m = io.tpmkms.protection.KeyMaterial.parse(
                KeyAlgorithm.EC_SIGN_P256_SHA256, pair.getPrivate().getEncoded())) {
            imported = backend.importKey(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256), m);
        }
        byte[] nonce = random(16);
        service.respond(
                GetKeyAttestationResponse.newBuilder().setAttestation(wire(backend.certify(imported.handle(), nonce)))
                        .setVersion(2).build(),
                io.tpmkms.proto.key.v1.GetKeyVersionResponse.newBuilder().setVersion(KeyVersion.newBuilder()
                        .setKey("ns/k").setVersion(2).setImported(true).setImportJob(JOB)).build(),
                io.tpmkms.proto.key.v1.GetKeyResponse.newBuilder().setKey(io.tpmkms.proto.key.v1.Key.newBuilder()
                        .setName("ns/k").setPurpose(io.tpmkms.proto.key.v1.KeyPurpose.ASYMMETRIC_SIGN)).build(),
                io.tpmkms.proto.key.v1.GetPublicKeyResponse.newBuilder().setVersion(2)
                        .setPem(ImportFixtures.pem("PUBLIC KEY", pair.getPublic().getEncoded())).build());

        Result r = run("attestation", "verify", "ns/k", "--nonce", java.util.HexFormat.of().formatHex(nonce));

        assertEquals(0, r.exitCode(), r::toString);
        for (String line : new String[] {"attributes of an imported key (sensitiveDataOrigin clear): ok",
                "public key matches: ok", "key version: imported with import job " + JOB}) {
            assertTrue(r.stdout().contains(line), () -> line + "\n" + r);
        }
    }
}
