package io.tpmkms.cli.attestation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.util.JsonFormat;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.protection.GeneratedKey;
import io.tpmkms.protection.KeyAlgorithm;
import io.tpmkms.protection.KeyAttestation;
import io.tpmkms.protection.KeySpec;
import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.protection.tpm.TpmKeyProtectionBackend;
import io.tpmkms.proto.key.v1.Algorithm;
import io.tpmkms.proto.key.v1.GetKeyAttestationRequest;
import io.tpmkms.proto.key.v1.GetKeyAttestationResponse;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import io.tpmkms.proto.key.v1.GetKeyResponse;
import io.tpmkms.proto.key.v1.GetPublicKeyRequest;
import io.tpmkms.proto.key.v1.GetPublicKeyResponse;
import io.tpmkms.proto.key.v1.Key;
import io.tpmkms.proto.key.v1.KeyPurpose;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.util.Base64;
import java.util.HexFormat;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tpmkms attestation}: the fake service answers with real TPM2_Certify statements made on a
 * swtpm (with an EK certificate from swtpm_localca) through tpm-adapter. Skipped when swtpm is not
 * installed.
 */
class AttestationCommandTest extends CliHarness {

    static final byte[] AUTH_SECRET = "cli attestation test auth secret".getBytes(StandardCharsets.US_ASCII);
    static final byte[] NONCE = HexFormat.of().parseHex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    static final String NONCE_HEX = HexFormat.of().formatHex(NONCE);

    private Swtpm swtpm;
    private TpmKeyProtectionBackend backend;
    /** Attestation of an EC P-256 sign key with NONCE, as the service returns it (version 3). */
    private GetKeyAttestationResponse signKeyResponse;
    private GetKeyAttestationResponse hmacKeyResponse;
    private KeyAttestation signKeyStatement;
    private String signKeyPem;
    private String otherKeyPem;
    private byte[] otherKeyTpmPublic;

    @TempDir
    Path dir;

    @BeforeAll
    void makeAttestations() throws Exception {
        for (String exe : new String[] {"swtpm", "swtpm_setup", "swtpm_localca", "tpm2_createprimary"}) {
            Assumptions.assumeTrue(onPath(exe), exe + " is not installed (apt-get install swtpm swtpm-tools tpm2-tools)");
        }
        swtpm = Swtpm.startWithEkCertificate();
        backend = TpmKeyProtectionBackend.open(swtpm.config(), AUTH_SECRET);
        GeneratedKey sign = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
        GeneratedKey other = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256));
        GeneratedKey hmac = backend.generate(new KeySpec(KeyAlgorithm.HMAC_SHA256));
        signKeyStatement = backend.certify(sign.handle(), NONCE);
        signKeyResponse = response(signKeyStatement, 3);
        hmacKeyResponse = response(backend.certify(hmac.handle(), NONCE), 1);
        signKeyPem = pem(sign.publicKeyDer());
        GeneratedKey bound = backend.generate(new KeySpec(KeyAlgorithm.EC_SIGN_P256_SHA256,
                io.tpmkms.protection.ExportPolicy.NON_EXPORTABLE, io.tpmkms.protection.PlatformBinding.current(16)));
        boundBinding = backend.platformBinding(bound.handle()).orElseThrow();
        boundKeyResponse = response(backend.certify(bound.handle(), NONCE), 1);
        otherKeyPem = pem(other.publicKeyDer());
        otherKeyTpmPublic = backend.tpmPublic(other.handle());
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

    private io.tpmkms.protection.PlatformBinding boundBinding;
    private GetKeyAttestationResponse boundKeyResponse;

    private static io.tpmkms.proto.key.v1.PlatformBinding proto(io.tpmkms.protection.PlatformBinding b) {
        var p = io.tpmkms.proto.key.v1.PlatformBinding.newBuilder();
        for (int pcr : b.pcrs()) {
            p.addPcrs(pcr);
        }
        for (byte[] v : b.values()) {
            p.addValues(ByteString.copyFrom(v));
        }
        return p.build();
    }

    @Test
    void verify_offline_platformBinding_isRecomputedFromTheCertifiedPolicy() throws Exception {
        var claimed = proto(boundBinding);
        var otherValue = claimed.toBuilder().setValues(0, ByteString.copyFrom(new byte[] {
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
                30, 31, 32})).build();

        Result ok = verifyOffline("--in", save(boundKeyResponse.toBuilder().setPlatformBinding(claimed).build()).toString(),
                "--nonce", NONCE_HEX);
        Result lie = verifyOffline("--in", save(boundKeyResponse.toBuilder().setPlatformBinding(otherValue).build())
                .toString(), "--nonce", NONCE_HEX);
        Result unboundKeyClaimed = verifyOffline("--in", save(signKeyResponse.toBuilder().setPlatformBinding(claimed)
                .build()).toString(), "--nonce", NONCE_HEX);

        assertEquals(0, ok.exitCode(), ok::toString);
        assertTrue(ok.stdout().contains("platform binding sha256:16=" + HexFormat.of().formatHex(boundBinding.values()[0])
                + " = the certified key's policy (TPM2_PolicyPCR before every use): ok"), ok::toString);
        String suffix = " = the certified key's policy (TPM2_PolicyPCR before every use)";
        assertFailedCheck(lie, "platform binding sha256:16=" + HexFormat.of().formatHex(otherValue.getValues(0).toByteArray())
                + suffix);
        assertFailedCheck(unboundKeyClaimed, "platform binding sha256:16="
                + HexFormat.of().formatHex(boundBinding.values()[0]) + suffix);
    }

    static GetKeyAttestationResponse response(KeyAttestation a, int version) {
        var b = io.tpmkms.proto.key.v1.KeyAttestation.newBuilder()
                .setAttest(ByteString.copyFrom(a.attest()))
                .setSignature(ByteString.copyFrom(a.signature()))
                .setAttestationKeyPem(pem(a.akPublicDer()))
                .setAttestationKeyPublic(ByteString.copyFrom(a.akTpmPublic()))
                .setAttestationKeyName(ByteString.copyFrom(a.akName()))
                .setCertifiedName(ByteString.copyFrom(a.certifiedName()))
                .setCertifiedPublic(ByteString.copyFrom(a.certifiedTpmPublic()));
        if (a.ekCertificateDer() != null) {
            b.setEkCertificate(ByteString.copyFrom(a.ekCertificateDer()));
        }
        return GetKeyAttestationResponse.newBuilder().setAttestation(b).setVersion(version).build();
    }

    static String pem(byte[] spki) {
        return "-----BEGIN PUBLIC KEY-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(spki)
                + "\n-----END PUBLIC KEY-----\n";
    }

    private Path save(GetKeyAttestationResponse r) throws Exception {
        Path f = Files.createTempFile(dir, "att", ".json");
        Files.writeString(f, JsonFormat.printer().print(r));
        return f;
    }

    private Path tampered(UnaryOperator<io.tpmkms.proto.key.v1.KeyAttestation.Builder> change) throws Exception {
        var b = signKeyResponse.getAttestation().toBuilder();
        return save(signKeyResponse.toBuilder().setAttestation(change.apply(b)).build());
    }

    private static ByteString flip(ByteString b, int index) {
        byte[] a = b.toByteArray();
        a[index] ^= 1;
        return ByteString.copyFrom(a);
    }

    /** Offline: no --address, so nothing can be reached; the command must not need it. */
    private static Result verifyOffline(String... args) {
        String[] all = new String[args.length + 4];
        all[0] = "attestation";
        all[1] = "verify";
        System.arraycopy(args, 0, all, 2, args.length);
        all[args.length + 2] = "--address";
        all[args.length + 3] = "127.0.0.1:1";
        return runAgainst(new byte[0], all);
    }

    private static void assertFailedCheck(Result r, String check) {
        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("attestation verification FAILED: " + check + ":"), r::toString);
        assertTrue(r.stdout().contains(check + ": FAILED"), r::toString);
    }

    // --- get -----------------------------------------------------------------------------------

    @Test
    void get_sendsKeyVersionNonce_andWritesTheResponseAsJson() throws Exception {
        service.respond(signKeyResponse);
        Path out = dir.resolve("att.json");

        Result r = run("attestation", "get", "ns/signer", "--version", "3", "--nonce", NONCE_HEX, "--out", out.toString());

        assertEquals(0, r.exitCode(), r::toString);
        GetKeyAttestationRequest req = service.only(GetKeyAttestationRequest.class);
        assertEquals("ns/signer", req.getKey());
        assertEquals(3, req.getVersion());
        assertEquals(ByteString.copyFrom(NONCE), req.getNonce());
        GetKeyAttestationResponse.Builder back = GetKeyAttestationResponse.newBuilder();
        JsonFormat.parser().merge(Files.readString(out), back);
        assertEquals(signKeyResponse, back.build());
        assertTrue(Files.readString(out).contains("\"attest\": \""), "bytes in base64");
        assertTrue(r.stdout().contains("attestation of ns/signer version 3 written to " + out), r::toString);
    }

    @Test
    void get_randomNonce_sends32RandomBytes_andPrintsThem() throws Exception {
        service.respond(signKeyResponse);
        Path out = dir.resolve("random.json");

        Result r = run("attestation", "get", "ns/signer", "--random-nonce", "--out", out.toString());

        assertEquals(0, r.exitCode(), r::toString);
        ByteString sent = service.only(GetKeyAttestationRequest.class).getNonce();
        assertEquals(32, sent.size());
        assertTrue(r.stdout().contains("nonce: " + HexFormat.of().formatHex(sent.toByteArray())), r::toString);
    }

    @Test
    void get_toStdout_printsJsonThere_andTheRandomNonceOnStderr() throws Exception {
        service.respond(signKeyResponse);

        Result r = run("attestation", "get", "ns/signer", "--random-nonce");

        assertEquals(0, r.exitCode(), r::toString);
        GetKeyAttestationResponse.Builder back = GetKeyAttestationResponse.newBuilder();
        JsonFormat.parser().merge(r.stdout(), back);
        assertEquals(signKeyResponse, back.build());
        ByteString sent = service.only(GetKeyAttestationRequest.class).getNonce();
        assertTrue(r.stderr().contains("nonce: " + HexFormat.of().formatHex(sent.toByteArray())), r::toString);
    }

    @Test
    void get_nonceTooLongOrNotHex_isUsageError_andSendsNothing() {
        assertEquals(ExitCodes.USAGE, run("attestation", "get", "ns/k", "--nonce", "00".repeat(33)).exitCode());
        assertEquals(ExitCodes.USAGE, run("attestation", "get", "ns/k", "--nonce", "xyz").exitCode());
        assertEquals(ExitCodes.USAGE, run("attestation", "get", "ns/k", "--nonce", "00", "--random-nonce").exitCode());
        assertTrue(service.requests().isEmpty());
    }

    @Test
    void get_ofSoftwareKey_reportsTheServiceError() {
        service.fail(io.grpc.Status.Code.UNIMPLEMENTED, "keys with protection level SOFTWARE cannot be attested",
                "CAPABILITY_UNAVAILABLE");

        Result r = run("attestation", "get", "ns/soft", "--nonce", NONCE_HEX);

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("(UNIMPLEMENTED, reason CAPABILITY_UNAVAILABLE)"), r::toString);
    }

    // --- verify offline ------------------------------------------------------------------------

    @Test
    void verify_offline_genuineStatement_passesEveryCheck_withoutAServer() throws Exception {
        Path f = save(signKeyResponse);

        Result r = verifyOffline("--in", f.toString(), "--nonce", NONCE_HEX);

        assertEquals(0, r.exitCode(), r::toString);
        for (String line : new String[] {
                "signature by the attestation key: ok",
                "certified name = hash of the public area: ok",
                "attributes fixedTPM fixedParent sensitiveDataOrigin: ok",
                "nonce: ok",
                "verified: the key (TPM name " + HexFormat.of().formatHex(signKeyStatement.certifiedName()) + ")",
                "note: the attestation key is not bound to the EK by credential activation"}) {
            assertTrue(r.stdout().contains(line), () -> line + "\n" + r);
        }
        assertFalse(r.stdout().contains("public key matches"), "not asked for");
        assertEquals("", r.stderr());
    }

    @Test
    void verify_offline_readsStdin_andABareKeyAttestationObject() throws Exception {
        byte[] json = JsonFormat.printer().print(signKeyResponse.getAttestation()).getBytes(StandardCharsets.UTF_8);

        Result r = runAgainst(json, "attestation", "verify", "--in", "-", "--nonce", NONCE_HEX);

        assertEquals(0, r.exitCode(), r::toString);
    }

    @Test
    void verify_offline_withThePublicKey_checksIt() throws Exception {
        Path f = save(signKeyResponse);
        Path right = Files.writeString(dir.resolve("right.pem"), signKeyPem);
        Path wrong = Files.writeString(dir.resolve("wrong.pem"), otherKeyPem);

        Result ok = verifyOffline("--in", f.toString(), "--nonce", NONCE_HEX, "--public-key", right.toString());
        Result bad = verifyOffline("--in", f.toString(), "--nonce", NONCE_HEX, "--public-key", wrong.toString());

        assertEquals(0, ok.exitCode(), ok::toString);
        assertTrue(ok.stdout().contains("public key matches: ok"), ok::toString);
        assertFailedCheck(bad, "public key matches");
        assertTrue(bad.stdout().contains("nonce: ok"), "the statement itself is fine\n" + bad);
    }

    @Test
    void verify_offline_wrongNonce_failsTheNonceCheck() throws Exception {
        Result r = verifyOffline("--in", save(signKeyResponse).toString(), "--nonce", "ff" + NONCE_HEX.substring(2));

        assertFailedCheck(r, "nonce");
        assertTrue(r.stdout().contains("signature by the attestation key: ok"), r::toString);
        assertTrue(r.stdout().contains("certified name = hash of the public area: not checked"), r::toString);
    }

    @Test
    void verify_offline_tamperedAttest_failsTheSignature() throws Exception {
        int index = signKeyResponse.getAttestation().getAttest().size() - 40;
        Result r = verifyOffline("--in", tampered(b -> b.setAttest(flip(b.getAttest(), index))).toString(),
                "--nonce", NONCE_HEX);

        assertFailedCheck(r, "signature by the attestation key");
    }

    @Test
    void verify_offline_tamperedSignature_failsTheSignature() throws Exception {
        int index = signKeyResponse.getAttestation().getSignature().size() - 2;
        Result r = verifyOffline("--in", tampered(b -> b.setSignature(flip(b.getSignature(), index))).toString(),
                "--nonce", NONCE_HEX);

        assertFailedCheck(r, "signature by the attestation key");
    }

    @Test
    void verify_offline_anotherKeysPublicArea_failsTheCertifiedName() throws Exception {
        Result r = verifyOffline("--in",
                tampered(b -> b.setCertifiedPublic(ByteString.copyFrom(otherKeyTpmPublic))).toString(),
                "--nonce", NONCE_HEX);

        assertFailedCheck(r, "certified name = hash of the public area");
    }

    @Test
    void verify_offline_anotherAttestationKeyPem_failsTheAttestationKeyCheck() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(256);
        String foreign = pem(g.generateKeyPair().getPublic().getEncoded());

        Result r = verifyOffline("--in", tampered(b -> b.setAttestationKeyPem(foreign)).toString(), "--nonce", NONCE_HEX);

        assertFailedCheck(r, "attestation key is a restricted fixedTPM signing key, PEM = its public area");
    }

    @Test
    void verify_offline_notAnAttestationFile_isUsageError() throws Exception {
        Path junk = Files.writeString(dir.resolve("junk.json"), "{\"hello\": 1}");

        Result r = verifyOffline("--in", junk.toString(), "--nonce", NONCE_HEX);

        assertEquals(ExitCodes.USAGE, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("not an attestation file"), r::toString);
    }

    @Test
    void verify_needsKeyOrIn_andInNeedsNonce() throws Exception {
        assertEquals(ExitCodes.USAGE, verifyOffline("--nonce", NONCE_HEX).exitCode());
        assertEquals(ExitCodes.USAGE, verifyOffline("--in", save(signKeyResponse).toString()).exitCode());
        assertEquals(ExitCodes.USAGE, verifyOffline("ns/k", "--in", save(signKeyResponse).toString(),
                "--nonce", NONCE_HEX).exitCode());
    }

    @Test
    void verify_json_printsAResultObject() throws Exception {
        Result ok = verifyOffline("--in", save(signKeyResponse).toString(), "--nonce", NONCE_HEX, "--json");
        Result bad = verifyOffline("--in", save(signKeyResponse).toString(), "--nonce", "00", "--json");

        assertEquals(0, ok.exitCode(), ok::toString);
        var parsed = com.google.protobuf.Struct.newBuilder();
        JsonFormat.parser().merge(ok.stdout(), parsed);
        assertTrue(parsed.getFieldsOrThrow("verified").getBoolValue(), ok::toString);
        assertFalse(parsed.getFieldsOrThrow("akBoundToEk").getBoolValue());
        assertEquals(HexFormat.of().formatHex(signKeyStatement.akName()),
                parsed.getFieldsOrThrow("attestationKeyName").getStringValue());
        assertTrue(ok.stdout().contains("{\"check\": \"nonce\", \"result\": \"ok\"}"), ok::toString);

        assertEquals(ExitCodes.FAILED, bad.exitCode(), bad::toString);
        assertTrue(bad.stdout().contains("\"verified\": false"), bad::toString);
        assertTrue(bad.stdout().contains("{\"check\": \"nonce\", \"result\": \"failed\", \"detail\": "), bad::toString);
    }

    @Test
    void verify_ekCa_acceptsTheIssuingCa_andRejectsAnotherOne() throws Exception {
        Path f = save(signKeyResponse);
        Path issuer = swtpm.dir.resolve("ca/issuercert.pem");
        Path root = swtpm.dir.resolve("ca/swtpm-localca-rootca-cert.pem");

        Result ok = verifyOffline("--in", f.toString(), "--nonce", NONCE_HEX, "--ek-ca", issuer.toString());
        Result rootOnly = verifyOffline("--in", f.toString(), "--nonce", NONCE_HEX, "--ek-ca", root.toString());

        assertEquals(0, ok.exitCode(), ok::toString);
        assertTrue(ok.stdout().contains("EK certificate issued by the given CA: ok"), ok::toString);
        assertTrue(ok.stdout().contains("not bound to the EK by credential activation"), ok::toString);
        assertFailedCheck(rootOnly, "EK certificate issued by the given CA");
        assertTrue(rootOnly.stderr().contains("is not in the CA file"), rootOnly::toString);
    }

    // --- verify online -------------------------------------------------------------------------

    @Test
    void verify_online_asymmetricKey_fetchesAttestationAndPublicKey() {
        service.respond(signKeyResponse,
                GetKeyResponse.newBuilder().setKey(Key.newBuilder().setName("ns/signer")
                        .setPurpose(KeyPurpose.ASYMMETRIC_SIGN)).build(),
                GetPublicKeyResponse.newBuilder().setPem(signKeyPem).setVersion(3)
                        .setAlgorithm(Algorithm.EC_SIGN_P256_SHA256).build());

        Result r = run("attestation", "verify", "ns/signer", "--nonce", NONCE_HEX);

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(ByteString.copyFrom(NONCE), service.only(GetKeyAttestationRequest.class).getNonce());
        assertEquals("ns/signer", service.only(GetKeyRequest.class).getKey());
        assertEquals(3, service.only(GetPublicKeyRequest.class).getVersion(), "the attested version");
        assertTrue(r.stdout().contains("public key matches: ok"), r::toString);
        assertTrue(r.stdout().contains("verified: ns/signer version 3"), r::toString);
    }

    /**
     * ADR 0037: online with --ek-ca, the CLI validates the EK certificate's chain to swtpm's local CA
     * (the stand-in manufacturer) and makes a credential for that EK and the AK's name; the service's
     * TPM (this test's swtpm) returns the secret, so the chain key -> AK -> EK -> CA is proven and the
     * "not bound" note goes. A service that answers another secret, or a CA that did not issue the EK
     * certificate, fails.
     */
    @Test
    void verify_online_withEkCa_provesTheChain_byCredentialActivation() throws Exception {
        Path ca = swtpm.dir.resolve("ca/issuercert.pem");
        service.activation = r -> {
            try {
                byte[] secret = new io.tpmkms.protection.tpm.attest.TpmAttestation(backend.connection()).activateCredential(
                        io.tpmkms.protection.tpm.attest.TpmAttestation.EkType.RSA_2048,
                        io.tpmkms.protection.tpm.attest.CredentialActivation.Credential.fromTpm2ToolsFile(
                                r.getCredential().toByteArray()));
                return io.tpmkms.proto.key.v1.ActivateAttestationCredentialResponse.newBuilder()
                        .setSecret(ByteString.copyFrom(secret)).build();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        };
        try {
            service.respond(signKeyResponse, GetKeyResponse.newBuilder().setKey(Key.newBuilder()
                    .setPurpose(KeyPurpose.ASYMMETRIC_SIGN)).build(),
                    GetPublicKeyResponse.newBuilder().setPem(signKeyPem).setVersion(3).build());
            Result r = run("attestation", "verify", "ns/signer", "--nonce", NONCE_HEX, "--ek-ca", ca.toString());
            assertEquals(0, r.exitCode(), r::toString);
            assertTrue(r.stdout().contains("EK certificate chains to a given manufacturer CA (validity, key usage, TCG EK OIDs): ok"),
                    r::toString);
            assertTrue(r.stdout().contains("attestation key bound to the EK by credential activation"), r::toString);
            assertTrue(r.stdout().contains("chain: key -> attestation key -> EK (credential activation) -> manufacturer CA"),
                    r::toString);
            assertFalse(r.stdout().contains("note: the attestation key is not bound"), r::toString);
            var sent = service.only(io.tpmkms.proto.key.v1.ActivateAttestationCredentialRequest.class);
            assertEquals(io.tpmkms.proto.key.v1.EndorsementKeyType.EK_RSA_2048, sent.getEkType());

            // a service whose TPM is not the EK's (it cannot answer the secret)
            service.reset();
            service.activation = q -> io.tpmkms.proto.key.v1.ActivateAttestationCredentialResponse.newBuilder()
                    .setSecret(ByteString.copyFrom(new byte[32])).build();
            service.respond(signKeyResponse, GetKeyResponse.newBuilder().setKey(Key.newBuilder()
                    .setPurpose(KeyPurpose.ASYMMETRIC_SIGN)).build(),
                    GetPublicKeyResponse.newBuilder().setPem(signKeyPem).setVersion(3).build());
            Result impostor = run("attestation", "verify", "ns/signer", "--nonce", NONCE_HEX, "--ek-ca", ca.toString());
            assertFailedCheck(impostor, "attestation key bound to the EK by credential activation (a fresh secret for this EK and AK name came back from the TPM)");
            assertTrue(impostor.stdout().contains("note: the attestation key is not bound"), impostor::toString);

            // a CA that did not issue the EK certificate: the chain fails, nothing is sent to activate
            service.reset();
            service.respond(signKeyResponse, GetKeyResponse.newBuilder().setKey(Key.newBuilder()
                    .setPurpose(KeyPurpose.ASYMMETRIC_SIGN)).build(),
                    GetPublicKeyResponse.newBuilder().setPem(signKeyPem).setVersion(3).build());
            Path otherCa = Files.writeString(dir.resolve("other-ca.pem"), otherCaPem());
            Result untrusted = run("attestation", "verify", "ns/signer", "--nonce", NONCE_HEX, "--ek-ca", otherCa.toString());
            assertEquals(ExitCodes.FAILED, untrusted.exitCode(), untrusted::toString);
            assertTrue(untrusted.stdout().contains("EK certificate chains to a given manufacturer CA (validity, key usage, "
                    + "TCG EK OIDs): FAILED (UNTRUSTED_ISSUER"), untrusted::toString);
            assertTrue(service.requests(io.tpmkms.proto.key.v1.ActivateAttestationCredentialRequest.class).isEmpty());
        } finally {
            service.activation = null;
        }
    }

    /** A self-signed CA certificate that issued nothing here. */
    private static String otherCaPem() throws Exception {
        var gen = java.security.KeyPairGenerator.getInstance("EC");
        gen.initialize(256);
        var pair = gen.generateKeyPair();
        var name = new org.bouncycastle.asn1.x500.X500Name("CN=other manufacturer CA");
        var builder = new org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder(name, java.math.BigInteger.ONE,
                java.util.Date.from(java.time.Instant.now().minusSeconds(60)),
                java.util.Date.from(java.time.Instant.now().plusSeconds(3600)), name, pair.getPublic());
        builder.addExtension(org.bouncycastle.asn1.x509.Extension.basicConstraints, true,
                new org.bouncycastle.asn1.x509.BasicConstraints(true));
        var cert = builder.build(new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withECDSA")
                .build(pair.getPrivate()));
        return "-----BEGIN CERTIFICATE-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(cert.getEncoded())
                + "\n-----END CERTIFICATE-----\n";
    }

    @Test
    void verify_online_serverPublishesAnotherPublicKey_fails() {
        service.respond(signKeyResponse,
                GetKeyResponse.newBuilder().setKey(Key.newBuilder().setPurpose(KeyPurpose.ASYMMETRIC_SIGN)).build(),
                GetPublicKeyResponse.newBuilder().setPem(otherKeyPem).setVersion(3).build());

        Result r = run("attestation", "verify", "ns/signer", "--nonce", NONCE_HEX);

        assertFailedCheck(r, "public key matches");
    }

    @Test
    void verify_online_macKey_hasNoPublicKeyToFetch() {
        service.respond(hmacKeyResponse,
                GetKeyResponse.newBuilder().setKey(Key.newBuilder().setPurpose(KeyPurpose.MAC)).build());

        Result r = run("attestation", "verify", "ns/mac", "--nonce", NONCE_HEX);

        assertEquals(0, r.exitCode(), r::toString);
        assertTrue(service.requests(GetPublicKeyRequest.class).isEmpty());
        assertFalse(r.stdout().contains("public key matches"), r::toString);
    }

    @Test
    void verify_online_withoutNonce_sendsAFreshOne_soAReplayedStatementFails() {
        service.respond(hmacKeyResponse,
                GetKeyResponse.newBuilder().setKey(Key.newBuilder().setPurpose(KeyPurpose.MAC)).build());

        Result r = run("attestation", "verify", "ns/mac");

        assertEquals(32, service.only(GetKeyAttestationRequest.class).getNonce().size());
        assertFailedCheck(r, "nonce");
    }
}
