package io.tpmkms.cli.keys;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.util.JsonFormat;
import io.grpc.Status;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.cli.Session;
import io.tpmkms.cli.attestation.SyntheticDuplicationJob;
import io.tpmkms.proto.key.v1.DuplicationBlob;
import io.tpmkms.proto.key.v1.DuplicationTarget;
import io.tpmkms.proto.key.v1.ExportKeyVersionRequest;
import io.tpmkms.proto.key.v1.ExportKeyVersionResponse;
import io.tpmkms.proto.key.v1.GetImportJobResponse;
import io.tpmkms.proto.key.v1.ImportJob;
import io.tpmkms.proto.key.v1.ImportMethod;
import io.tpmkms.protection.ImportWrapping;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.tpm.DuplicationTargets;
import io.tpmkms.protection.tpm.internal.KeyPolicy;
import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.Signature;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tpmkms keys export} against the fake key service: the target files or import job go into
 * ExportKeyVersionRequest byte for byte (a tpmkms job's DER signature as a TPMT_SIGNATURE that the
 * service's own check, {@link DuplicationTargets#verify}, accepts), the transfer auth only from its
 * file and never in the output, the blob and the policy branches into the files tpm2_import and
 * tpm2_policyor read, and every bad input is a usage error before anything is sent.
 */
class ExportKeyCommandTest extends CliHarness {

    static final String KEY = "ns/signer";
    static final byte[] TRANSFER_AUTH = "0123456789abcdef0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path dir;

    private byte[] authority;
    private List<byte[]> branches;
    private ExportKeyVersionResponse exported;

    @BeforeAll
    void makeTheAnswer() {
        authority = new byte[34];
        authority[1] = 0x0B;
        System.arraycopy(random(32), 0, authority, 2, 32);
        KeyPolicy policy = KeyPolicy.duplicable(KeyAlgorithm.EC_SIGN_P256_SHA256, authority);
        branches = policy.branches();
        exported = ExportKeyVersionResponse.newBuilder()
                .setDuplication(DuplicationBlob.newBuilder()
                        .setPublicArea(ByteString.copyFrom(TpmStructures.tpm2b(eccSignPublic(policy.authPolicy()))))
                        .setDuplicate(ByteString.copyFrom(random(130)))
                        .setEncryptedSeed(ByteString.copyFrom(random(68)))
                        .setAuthorityName(ByteString.copyFrom(authority)))
                .setVersion(2)
                .setTargetName(ByteString.copyFrom(authority)) // any 34 bytes
                .addAllPolicyBranches(branches.stream().map(ByteString::copyFrom).toList())
                .build();
    }

    /** TPMT_PUBLIC of a DUPLICABLE ECDSA P-256 signing key as tpmkms makes one (ADR 0025). */
    static byte[] eccSignPublic(byte[] authPolicy) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int v : new int[] {0x0023, 0x000B}) {
            b.write(v >>> 8);
            b.write(v);
        }
        b.writeBytes(new byte[] {0x00, 0x04, 0x04, (byte) 0xA0}); // sign noDA adminWithPolicy sensitiveDataOrigin
        b.write(0);
        b.write(authPolicy.length);
        b.writeBytes(authPolicy);
        b.writeBytes(new byte[] {0x00, 0x10, 0x00, 0x18, 0x00, 0x0B, 0x00, 0x03, 0x00, 0x10}); // NULL, ECDSA-SHA256, P-256, NULL
        b.writeBytes(new byte[] {0x00, 0x20});
        b.writeBytes(random(32));
        b.writeBytes(new byte[] {0x00, 0x20});
        b.writeBytes(random(32));
        return b.toByteArray();
    }

    static byte[] random(int n) {
        byte[] b = new byte[n];
        new SecureRandom().nextBytes(b);
        return b;
    }

    /** The tpm2-tools target files, random bytes (the fake does not check them). */
    private String[] targetFiles() throws Exception {
        return new String[] {
                "--target-public", Files.write(dir.resolve("parent.pub"), random(90)).toString(),
                "--target-attest", Files.write(dir.resolve("attest.out"), random(140)).toString(),
                "--target-signature", Files.write(dir.resolve("sig.out"), random(72)).toString(),
                "--target-ak", Files.write(dir.resolve("ak.pub"), random(90)).toString()};
    }

    private Result export(String... args) {
        List<String> all = new ArrayList<>(List.of("keys", "export"));
        all.addAll(List.of(args));
        return run(all.toArray(String[]::new));
    }

    private static String[] concat(String[] a, String... b) {
        return Stream.concat(Stream.of(a), Stream.of(b)).toArray(String[]::new);
    }

    private void assertNothingSent(Result r) {
        assertTrue(service.requests(ExportKeyVersionRequest.class).isEmpty(), r::toString);
    }

    private void assertNoSecret(Result r) {
        String hex = HexFormat.of().formatHex(TRANSFER_AUTH);
        for (String out : new String[] {r.stdout(), r.stderr()}) {
            assertFalse(out.contains(new String(TRANSFER_AUTH, StandardCharsets.US_ASCII)), r::toString);
            assertFalse(out.toLowerCase().contains(hex), r::toString);
        }
    }

    // --- tpm2-tools target files ------------------------------------------------------------------

    @Test
    void export_targetFiles_sendsThemByteForByte_andWritesTheBlobAndBranches() throws Exception {
        String[] target = targetFiles();
        Path auth = Files.write(dir.resolve("transfer.auth"), TRANSFER_AUTH);
        Path out = dir.resolve("out");
        service.respond(exported);

        Result r = export(concat(target, KEY, "2", "--qualifying-data-hex", "00FF55aa",
                "--transfer-auth-file", auth.toString(), "--out-dir", out.toString()));

        assertEquals(0, r.exitCode(), r::toString);
        ExportKeyVersionRequest req = service.only(ExportKeyVersionRequest.class);
        assertEquals(KEY, req.getKey());
        assertEquals(2, req.getVersion());
        DuplicationTarget t = req.getTarget();
        assertArrayEquals(Files.readAllBytes(dir.resolve("parent.pub")), t.getPublicArea().toByteArray());
        assertArrayEquals(Files.readAllBytes(dir.resolve("attest.out")), t.getAttest().toByteArray());
        assertArrayEquals(Files.readAllBytes(dir.resolve("sig.out")), t.getSignature().toByteArray());
        assertArrayEquals(Files.readAllBytes(dir.resolve("ak.pub")), t.getAttestationKeyPublic().toByteArray());
        assertArrayEquals(new byte[] {0x00, (byte) 0xff, 0x55, (byte) 0xaa}, t.getQualifyingData().toByteArray());
        assertArrayEquals(TRANSFER_AUTH, req.getTransferAuth().toByteArray(), "the transfer auth, from its file");

        DuplicationBlob blob = exported.getDuplication();
        assertArrayEquals(blob.getPublicArea().toByteArray(), Files.readAllBytes(out.resolve("key.pub")));
        assertArrayEquals(blob.getDuplicate().toByteArray(), Files.readAllBytes(out.resolve("key.dpriv")));
        assertArrayEquals(blob.getEncryptedSeed().toByteArray(), Files.readAllBytes(out.resolve("key.seed")));
        assertArrayEquals(authority, Files.readAllBytes(out.resolve("authority.name")));
        assertEquals(4, branches.size(), "sign: Sign, Certify, ObjectChangeAuth, DUP");
        for (int i = 0; i < branches.size(); i++) {
            byte[] branch = Files.readAllBytes(out.resolve("branch" + i));
            assertEquals(32, branch.length);
            assertArrayEquals(branches.get(i), branch, "branch" + i);
        }
        assertFalse(Files.exists(out.resolve("branch4")));
        if (out.getFileSystem().supportedFileAttributeViews().contains("posix")) {
            assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(out.resolve("key.dpriv"))), "the duplicate: owner only");
        }
        assertNoSecret(r);
    }

    @Test
    void export_printsWhatToRunOnTheTarget_forASignKey() throws Exception {
        Path out = dir.resolve("out");
        service.respond(exported);

        Result r = export(concat(targetFiles(), KEY, "--out-dir", out.toString()));

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(0, service.only(ExportKeyVersionRequest.class).getVersion(), "no VERSION: the primary");
        assertTrue(service.only(ExportKeyVersionRequest.class).getTransferAuth().isEmpty(), "no file: empty auth");
        assertTrue(service.only(ExportKeyVersionRequest.class).getTarget().getQualifyingData().isEmpty(),
                "no --qualifying-data-hex: not checked");
        String o = out.toString();
        String list = "sha256:" + o + "/branch0," + o + "/branch1," + o + "/branch2," + o + "/branch3";
        for (String line : new String[] {
                "exported " + KEY + " version 2 to the storage key with TPM name " + HexFormat.of().formatHex(authority),
                "wrote " + o + "/key.pub " + o + "/key.dpriv " + o + "/key.seed " + o + "/authority.name " + o + "/branch0 ",
                "  tpm2_import -C parent.ctx -u " + o + "/key.pub -i " + o + "/key.dpriv -s " + o + "/key.seed -r "
                        + o + "/key.priv\n",
                "  tpm2_load -C parent.ctx -u " + o + "/key.pub -r " + o + "/key.priv -c key.ctx\n",
                "  tpm2_startauthsession --policy-session -S session.ctx\n",
                "  tpm2_policycommandcode -S session.ctx TPM2_CC_Sign\n",
                "  tpm2_policyauthvalue -S session.ctx\n",
                "  tpm2_policyor -S session.ctx -l " + list + "\n",
                "  tpm2_sign -c key.ctx -p session:session.ctx -g sha256 -f plain -o data.sig data.txt\n",
                "  tpm2_flushcontext session.ctx\n",
                "  tpmkms public-key " + KEY + " --version 2 --out key.pem\n",
                "  openssl dgst -sha256 -verify key.pem -signature data.sig data.txt\n"}) {
            assertTrue(r.stdout().contains(line), () -> line + "\n" + r);
        }
        assertEquals("", r.stderr());
    }

    @Test
    void export_withTransferAuth_theSignCommandReadsItFromTheFile_withoutPrintingIt() throws Exception {
        Path auth = Files.write(dir.resolve("transfer.auth"), TRANSFER_AUTH);
        service.respond(exported);

        Result r = export(concat(targetFiles(), KEY, "--transfer-auth-file", auth.toString(),
                "--out-dir", dir.resolve("out").toString()));

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("tpm2_sign -c key.ctx -p \"session:session.ctx+hex:$(xxd -p -c 64 " + auth
                + ")\" -g sha256"), r::toString);
        assertNoSecret(r);
    }

    @Test
    void export_json_printsTheResponse_andStillWritesTheFiles() throws Exception {
        Path out = dir.resolve("out");
        Path auth = Files.write(dir.resolve("transfer.auth"), TRANSFER_AUTH);
        service.respond(exported);

        Result r = export(concat(targetFiles(), KEY, "2", "--transfer-auth-file", auth.toString(),
                "--out-dir", out.toString(), "--json"));

        assertEquals(0, r.exitCode(), r::toString);
        ExportKeyVersionResponse.Builder back = ExportKeyVersionResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), back);
        assertEquals(exported, back.build());
        assertArrayEquals(exported.getDuplication().getDuplicate().toByteArray(),
                Files.readAllBytes(out.resolve("key.dpriv")));
        assertNoSecret(r);
        assertFalse(r.stdout().contains(java.util.Base64.getEncoder().encodeToString(TRANSFER_AUTH)), r::toString);
    }

    @Test
    void export_aeadKey_getsTheImportCommands_butNoUseCommands() throws Exception {
        KeyPolicy aead = KeyPolicy.duplicable(KeyAlgorithm.AES_256_GCM, authority);
        ExportKeyVersionResponse aeadExport = exported.toBuilder().clearPolicyBranches()
                .addAllPolicyBranches(aead.branches().stream().map(ByteString::copyFrom).toList()).build();
        service.respond(aeadExport);

        Result r = export(concat(targetFiles(), KEY, "--out-dir", dir.resolve("aead").toString()));

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("tpm2_load -C parent.ctx"), r::toString);
        assertFalse(r.stdout().contains("tpm2_startauthsession"), r::toString);
        assertTrue(Files.exists(dir.resolve("aead/branch4")), "the AEAD key's five branches are written all the same");
    }

    @Test
    void policyBranchDigests_areTheAdaptersPolicyCommandCodeThenAuthValue() {
        for (int cc : new int[] {TpmStructures.CC_SIGN, TpmStructures.CC_RSA_DECRYPT, TpmStructures.CC_HMAC}) {
            assertArrayEquals(KeyPolicy.authValueBranch(cc), TpmStructures.authValueBranch(cc), Integer.toHexString(cc));
        }
        assertArrayEquals(io.tpmkms.protection.tpm.internal.Templates.AEAD_POLICY_MARKER, TpmStructures.AEAD_POLICY_MARKER);
        assertEquals("ec-p256-sha256", ExportKeyCommand.algorithmWord(exported));
    }

    // --- another tpmkms's import job as the target -------------------------------------------------

    @Test
    void export_targetImportJob_sendsWhatTheServicesOwnTargetCheckAccepts() throws Exception {
        SyntheticDuplicationJob d = new SyntheticDuplicationJob("other/dup1");
        Path jobFile = Files.writeString(dir.resolve("job.json"),
                Session.json(GetImportJobResponse.newBuilder().setImportJob(d.job)));
        Path auth = Files.write(dir.resolve("transfer.auth"), TRANSFER_AUTH);
        service.respond(exported);

        Result r = export(KEY, "2", "--target-import-job", jobFile.toString(), "--transfer-auth-file", auth.toString(),
                "--out-dir", dir.resolve("out").toString());

        assertEquals(0, r.exitCode(), r::toString);
        DuplicationTarget t = service.only(ExportKeyVersionRequest.class).getTarget();
        assertEquals(d.job.getWrappingPublic(), t.getPublicArea(), "the job's TPM2B_PUBLIC");
        assertEquals(d.job.getAttestation().getAttest(), t.getAttest());
        assertArrayEquals(ImportWrapping.jobAttestationNonce("other/dup1"), t.getQualifyingData().toByteArray());
        byte[] ak = d.job.getAttestation().getAttestationKeyPublic().toByteArray();
        assertArrayEquals(TpmStructures.tpm2b(ak), t.getAttestationKeyPublic().toByteArray(), "TPM2B of the AK's TPMT_PUBLIC");
        byte[] sig = t.getSignature().toByteArray();
        assertEquals(4 + 34 + 34, sig.length);
        assertArrayEquals(new byte[] {0x00, 0x18, 0x00, 0x0B, 0x00, 0x20}, java.util.Arrays.copyOf(sig, 6));
        // the key service's own check of a target (tpm-adapter), with the job's AK trusted
        DuplicationTargets.Target checked = DuplicationTargets.verify(t.getPublicArea().toByteArray(),
                t.getAttest().toByteArray(), sig, t.getAttestationKeyPublic().toByteArray(), Set.of(d.akName),
                t.getQualifyingData().toByteArray());
        assertArrayEquals(d.storagePublic, checked.tpmtPublic());
        assertArrayEquals(TRANSFER_AUTH, service.only(ExportKeyVersionRequest.class).getTransferAuth().toByteArray());
        String o = dir.resolve("out").toString();
        assertTrue(r.stdout().contains("to the storage key of import job other/dup1, TPM name "), r::toString);
        assertTrue(r.stdout().contains("  tpmkms keys import NAMESPACE/NAME --import-job other/dup1 --algorithm "
                + "ec-p256-sha256 --duplication-public " + o + "/key.pub --duplication-private " + o + "/key.dpriv "
                + "--duplication-seed " + o + "/key.seed --authority-name-file " + o + "/authority.name "
                + "--transfer-auth-file " + auth + "\n"), r::toString);
        assertFalse(r.stdout().contains("tpm2_import"), r::toString);
        assertNoSecret(r);
    }

    @Test
    void export_targetImportJob_bareJobJson_isReadToo() throws Exception {
        SyntheticDuplicationJob d = new SyntheticDuplicationJob("other/dup2");
        Path jobFile = Files.writeString(dir.resolve("job.json"), JsonFormat.printer().print(d.job));
        service.respond(exported);

        Result r = export(KEY, "--target-import-job", jobFile.toString(), "--out-dir", dir.resolve("out").toString());

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(d.job.getWrappingPublic(), service.only(ExportKeyVersionRequest.class).getTarget().getPublicArea());
    }

    @Test
    void export_targetImportJob_whoseAttestationDoesNotVerify_isRefused_andNothingIsSent() throws Exception {
        SyntheticDuplicationJob d = new SyntheticDuplicationJob("other/dup1");
        // another storage key in wrapping_public than the one the TPM certified
        SyntheticDuplicationJob other = new SyntheticDuplicationJob("other/dup1");
        ImportJob swapped = d.job.toBuilder().setWrappingPublic(other.job.getWrappingPublic()).build();
        Path jobFile = Files.writeString(dir.resolve("job.json"),
                Session.json(GetImportJobResponse.newBuilder().setImportJob(swapped)));

        Result r = export(KEY, "--target-import-job", jobFile.toString(), "--out-dir", dir.resolve("out").toString());

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("the attestation of import job other/dup1 in " + jobFile
                + " does not verify (wrapping_public is not the certified public area): nothing was exported"), r::toString);
        assertNothingSent(r);
    }

    @Test
    void export_targetImportJob_ofAnotherMethod_orNotJson_orCombined_isAUsageError() throws Exception {
        SyntheticDuplicationJob d = new SyntheticDuplicationJob("other/dup1");
        Path rsaJob = Files.writeString(dir.resolve("rsa.json"), Session.json(GetImportJobResponse.newBuilder()
                .setImportJob(d.job.toBuilder().setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256)
                        .clearPublicKeyPem())));
        Path noPublic = Files.writeString(dir.resolve("nopub.json"), Session.json(GetImportJobResponse.newBuilder()
                .setImportJob(d.job.toBuilder().clearWrappingPublic())));
        Path garbage = Files.writeString(dir.resolve("garbage.json"), "not json at all");
        Path good = Files.writeString(dir.resolve("good.json"),
                Session.json(GetImportJobResponse.newBuilder().setImportJob(d.job)));
        String out = dir.resolve("out").toString();

        Result rsa = export(KEY, "--target-import-job", rsaJob.toString(), "--out-dir", out);
        Result nopub = export(KEY, "--target-import-job", noPublic.toString(), "--out-dir", out);
        Result notJson = export(KEY, "--target-import-job", garbage.toString(), "--out-dir", out);
        Result both = export(concat(targetFiles(), KEY, "--target-import-job", good.toString(), "--out-dir", out));
        Result withQd = export(KEY, "--target-import-job", good.toString(), "--qualifying-data-hex", "00", "--out-dir", out);

        assertEquals(ExitCodes.USAGE, rsa.exitCode(), rsa::toString);
        assertTrue(rsa.stderr().contains("import job other/dup1 shows no public key"), rsa::toString);
        assertEquals(ExitCodes.USAGE, nopub.exitCode(), nopub::toString);
        assertTrue(nopub.stderr().contains("has no wrapping_public"), nopub::toString);
        assertEquals(ExitCodes.USAGE, notJson.exitCode(), notJson::toString);
        assertTrue(notJson.stderr().contains("--target-import-job " + garbage + ": not an import job"), notJson::toString);
        assertEquals(ExitCodes.USAGE, both.exitCode(), both::toString);
        assertTrue(both.stderr().contains("--target-import-job and --target-public cannot be combined"), both::toString);
        assertEquals(ExitCodes.USAGE, withQd.exitCode(), withQd::toString);
        assertNothingSent(rsa);
    }

    // --- SOFTWARE keys: wrapped for an RSA key ------------------------------------------------------

    @Test
    void export_softwareKey_wrappingKeyPem_sendsPemAndMethod_writesTheWrappedKey() throws Exception {
        String pem = "-----BEGIN PUBLIC KEY-----\nMIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEA\n-----END PUBLIC KEY-----\n";
        Path pemFile = Files.writeString(dir.resolve("wrap.pem"), pem);
        byte[] wrapped = random(384 + 48);
        service.respond(ExportKeyVersionResponse.newBuilder().setWrappedKey(ByteString.copyFrom(wrapped)).setVersion(1)
                .build());
        Path out = dir.resolve("soft");

        Result r = export(KEY, "--wrapping-key-pem", pemFile.toString(), "--out-dir", out.toString());

        assertEquals(0, r.exitCode(), r::toString);
        ExportKeyVersionRequest req = service.only(ExportKeyVersionRequest.class);
        assertEquals(pem, req.getWrappingPublicKeyPem());
        assertEquals(ImportMethod.RSA_OAEP_3072_SHA256_AES_256, req.getImportMethod(), "the default method");
        assertFalse(req.hasTarget());
        assertArrayEquals(wrapped, Files.readAllBytes(out.resolve("wrapped.key")));
        assertTrue(r.stdout().contains("--wrapped-key-file " + out.resolve("wrapped.key")), r::toString);
    }

    @Test
    void export_softwareKey_toAnRsaImportJob_usesItsPublicKeyAndMethod() throws Exception {
        SyntheticDuplicationJob d = new SyntheticDuplicationJob("other/rsa1");
        String pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        Path job = Files.writeString(dir.resolve("rsajob.json"), Session.json(GetImportJobResponse.newBuilder()
                .setImportJob(d.job.toBuilder().setImportMethod(ImportMethod.RSA_OAEP_4096_SHA256_AES_256)
                        .setPublicKeyPem(pem))));
        service.respond(ExportKeyVersionResponse.newBuilder().setWrappedKey(ByteString.copyFrom(random(560)))
                .setVersion(3).build());

        Result r = export(KEY, "--target-import-job", job.toString(), "--out-dir", dir.resolve("o2").toString());

        assertEquals(0, r.exitCode(), r::toString);
        ExportKeyVersionRequest req = service.only(ExportKeyVersionRequest.class);
        assertEquals(pem, req.getWrappingPublicKeyPem());
        assertEquals(ImportMethod.RSA_OAEP_4096_SHA256_AES_256, req.getImportMethod());
        assertTrue(r.stdout().contains("--import-job other/rsa1"), r::toString);
    }

    @Test
    void export_wrappingKeyPem_badCombinations_areUsageErrors() throws Exception {
        Path pemFile = Files.writeString(dir.resolve("w.pem"), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
        Path notPem = Files.writeString(dir.resolve("w.txt"), "hello");
        Path auth = Files.write(dir.resolve("t.auth"), TRANSFER_AUTH);
        String out = dir.resolve("o3").toString();
        Result withTarget = export(concat(targetFiles(), KEY, "--wrapping-key-pem", pemFile.toString(), "--out-dir", out));
        Result bad = export(KEY, "--wrapping-key-pem", notPem.toString(), "--out-dir", out);
        Result dupMethod = export(KEY, "--wrapping-key-pem", pemFile.toString(), "--method", "tpm2-duplication",
                "--out-dir", out);
        Result withAuth = export(KEY, "--wrapping-key-pem", pemFile.toString(), "--transfer-auth-file", auth.toString(),
                "--out-dir", out);
        Result methodAlone = export(concat(targetFiles(), KEY, "--method", "rsa-oaep-3072-sha256", "--out-dir", out));
        for (Result r : List.of(withTarget, bad, dupMethod, withAuth, methodAlone)) {
            assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
            assertNoSecret(r);
        }
        assertTrue(withTarget.stderr().contains("cannot be combined"), withTarget::toString);
        assertTrue(bad.stderr().contains("not a PEM public key"), bad::toString);
        assertNothingSent(withTarget);
    }

    @Test
    void derEcdsaSignature_becomesTheTpmtSignature_paddedTo32Bytes() throws Exception {
        // r with a leading 0x00 (high bit set), s short: both come out as 32-byte TPM2B_ECC_PARAMETERs
        byte[] r = new byte[32];
        r[0] = (byte) 0x80;
        r[31] = 1;
        byte[] s = {0x01, 0x02};
        byte[] der = derSignature(new BigInteger(1, r), new BigInteger(1, s));
        byte[] expected = new byte[4 + 34 + 34];
        System.arraycopy(new byte[] {0x00, 0x18, 0x00, 0x0B, 0x00, 0x20}, 0, expected, 0, 6);
        System.arraycopy(r, 0, expected, 6, 32);
        expected[38] = 0x00;
        expected[39] = 0x20;
        expected[70] = 0x01;
        expected[71] = 0x02;

        assertArrayEquals(expected, TpmStructures.ecdsaP256Signature(der));
        assertThrows(IllegalArgumentException.class, () -> TpmStructures.ecdsaP256Signature(new byte[] {0x30, 0x02, 0x02, 0x00}));
        assertThrows(IllegalArgumentException.class,
                () -> TpmStructures.ecdsaP256Signature(derSignature(BigInteger.ONE.shiftLeft(300), BigInteger.ONE)));
        // a real one, from JCA
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
        Signature sig = Signature.getInstance("SHA256withECDSA");
        sig.initSign(g.generateKeyPair().getPrivate());
        sig.update(new byte[] {1, 2, 3});
        assertEquals(72, TpmStructures.ecdsaP256Signature(sig.sign()).length);
    }

    private static byte[] derSignature(BigInteger r, BigInteger s) {
        byte[] rb = r.toByteArray();
        byte[] sb = s.toByteArray();
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int length = 2 + rb.length + 2 + sb.length;
        b.write(0x30);
        if (length >= 0x80) {
            b.write(0x81);
        }
        b.write(length);
        b.write(0x02);
        b.write(rb.length);
        b.writeBytes(rb);
        b.write(0x02);
        b.write(sb.length);
        b.writeBytes(sb);
        return b.toByteArray();
    }

    // --- bad input: usage errors, nothing sent -----------------------------------------------------

    @Test
    void export_missingTargetFiles_areUsageErrorsNamingThem() throws Exception {
        String[] files = targetFiles();
        String out = dir.resolve("out").toString();

        Result none = export(KEY, "--out-dir", out);
        Result noSig = export(KEY, "--target-public", files[1], "--target-attest", files[3], "--target-ak", files[7],
                "--out-dir", out);
        Result gone = export(concat(new String[] {"--target-public", dir.resolve("nope.pub").toString(),
                files[2], files[3], files[4], files[5], files[6], files[7]}, KEY, "--out-dir", out));
        Path empty = Files.write(dir.resolve("empty.out"), new byte[0]);
        Result emptyAttest = export(concat(new String[] {files[0], files[1], "--target-attest", empty.toString(),
                files[4], files[5], files[6], files[7]}, KEY, "--out-dir", out));
        Result noOutDir = export(concat(files, KEY));

        assertEquals(ExitCodes.USAGE, none.exitCode(), none::toString);
        assertTrue(none.stderr().contains("no duplication target: give --target-import-job FILE, or --target-public"),
                none::toString);
        assertEquals(ExitCodes.USAGE, noSig.exitCode(), noSig::toString);
        assertTrue(noSig.stderr().contains("missing --target-signature: the target needs"), noSig::toString);
        assertEquals(ExitCodes.USAGE, gone.exitCode(), gone::toString);
        assertTrue(gone.stderr().contains("error: --target-public " + dir.resolve("nope.pub") + ": no such file"),
                gone::toString);
        assertEquals(ExitCodes.USAGE, emptyAttest.exitCode(), emptyAttest::toString);
        assertTrue(emptyAttest.stderr().contains("--target-attest " + empty + ": the file is empty"), emptyAttest::toString);
        assertEquals(ExitCodes.USAGE, noOutDir.exitCode(), noOutDir::toString);
        assertTrue(noOutDir.stderr().contains("--out-dir"), noOutDir::toString);
        assertNothingSent(none);
        assertTrue(service.requests().isEmpty(), "nothing at all was called");
    }

    @Test
    void export_badTransferAuthVersionHexOrOutDir_areUsageErrors() throws Exception {
        String[] files = targetFiles();
        String out = dir.resolve("out").toString();
        Path longAuth = Files.write(dir.resolve("long.auth"), random(33));
        Path aFile = Files.write(dir.resolve("a-file"), random(3));

        Result tooLong = export(concat(files, KEY, "--transfer-auth-file", longAuth.toString(), "--out-dir", out));
        Result missingAuth = export(concat(files, KEY, "--transfer-auth-file", dir.resolve("nope.auth").toString(),
                "--out-dir", out));
        Result zero = export(concat(files, KEY, "0", "--out-dir", out));
        Result notHex = export(concat(files, KEY, "--qualifying-data-hex", "00ff5", "--out-dir", out));
        Result fileAsDir = export(concat(files, KEY, "--out-dir", aFile.toString()));

        assertEquals(ExitCodes.USAGE, tooLong.exitCode(), tooLong::toString);
        assertTrue(tooLong.stderr().contains("--transfer-auth-file " + longAuth + ": 33 bytes; a transfer auth value is "
                + "at most 32 bytes"), tooLong::toString);
        assertEquals(ExitCodes.USAGE, missingAuth.exitCode(), missingAuth::toString);
        assertTrue(missingAuth.stderr().contains("--transfer-auth-file " + dir.resolve("nope.auth") + ": no such file"),
                missingAuth::toString);
        assertEquals(ExitCodes.USAGE, zero.exitCode(), zero::toString);
        assertTrue(zero.stderr().contains("VERSION must be a positive number"), zero::toString);
        assertEquals(ExitCodes.USAGE, notHex.exitCode(), notHex::toString);
        assertTrue(notHex.stderr().contains("--qualifying-data-hex: not hex"), notHex::toString);
        assertEquals(ExitCodes.USAGE, fileAsDir.exitCode(), fileAsDir::toString);
        assertTrue(fileAsDir.stderr().contains("--out-dir " + aFile + ": not a directory"), fileAsDir::toString);
        assertTrue(service.requests().isEmpty(), "nothing was called");
        assertFalse(Files.exists(dir.resolve("out")), "no output directory either");
    }

    @Test
    void export_serviceRefuses_mapsTheReason_andWritesNothing() throws Exception {
        Path out = dir.resolve("out");
        service.fail(Status.Code.FAILED_PRECONDITION, "version 1 of key \"ns/signer\" is NON_EXPORTABLE",
                "KEY_NOT_EXPORTABLE");

        Result r = export(concat(targetFiles(), KEY, "1", "--out-dir", out.toString()));

        assertEquals(ExitCodes.CONFLICT, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("(FAILED_PRECONDITION, reason KEY_NOT_EXPORTABLE)"), r::toString);
        assertFalse(Files.exists(out.resolve("key.pub")));
    }

    @Test
    void export_untrustedTarget_exits1WithTheServicesReason() throws Exception {
        service.fail(Status.Code.INVALID_ARGUMENT, "the target was certified by an attestation key this deployment "
                + "does not trust", "DUPLICATION_TARGET_INVALID");

        Result r = export(concat(targetFiles(), KEY, "--out-dir", dir.resolve("out").toString()));

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("(INVALID_ARGUMENT, reason DUPLICATION_TARGET_INVALID)"), r::toString);
    }
}
