package io.tpmkms.cli.attestation;

import static io.tpmkms.cli.attestation.SyntheticAttestation.ADMIN_WITH_POLICY;
import static io.tpmkms.cli.attestation.SyntheticAttestation.FIXED_PARENT;
import static io.tpmkms.cli.attestation.SyntheticAttestation.FIXED_TPM;
import static io.tpmkms.cli.attestation.SyntheticAttestation.NO_DA;
import static io.tpmkms.cli.attestation.SyntheticAttestation.SENSITIVE_DATA_ORIGIN;
import static io.tpmkms.cli.attestation.SyntheticAttestation.SIGN;
import static io.tpmkms.cli.attestation.SyntheticAttestation.USER_WITH_AUTH;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Struct;
import com.google.protobuf.util.JsonFormat;
import io.tpmkms.cli.CliHarness;
import io.tpmkms.cli.ExitCodes;
import io.tpmkms.proto.key.v1.GetKeyAttestationResponse;
import io.tpmkms.proto.key.v1.GetKeyResponse;
import io.tpmkms.proto.key.v1.GetKeyVersionRequest;
import io.tpmkms.proto.key.v1.GetKeyVersionResponse;
import io.tpmkms.proto.key.v1.GetPublicKeyResponse;
import io.tpmkms.proto.key.v1.Key;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyVersion;
import io.tpmkms.protection.tpm.KeyAttestationVerifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.security.interfaces.RSAPublicKey;
import java.util.HexFormat;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code attestation verify} tells generated and imported key versions apart and reports each
 * truthfully: the service's word (KeyVersion.imported, import_job) next to the TPM's
 * (sensitiveDataOrigin, fixedTPM, fixedParent in the certified public area). Statements are made by
 * {@link SyntheticAttestation}: swtpm through tpm-adapter cannot make imported objects on this branch.
 */
class ImportedKeyAttestationTest extends CliHarness {

    static final String NONCE_HEX = "0011223344556677";
    static final byte[] NONCE = HexFormat.of().parseHex(NONCE_HEX);
    static final byte[] POLICY = HexFormat.of().parseHex("a1".repeat(32));

    private SyntheticAttestation tpm;
    private GetKeyAttestationResponse importedHmac;
    private GetKeyAttestationResponse generatedHmac;
    private GetKeyAttestationResponse importedRsa;
    private GetKeyAttestationResponse duplicableRsa;
    private String rsaPem;
    private String otherRsaPem;

    @TempDir
    Path dir;

    @BeforeAll
    void makeStatements() throws Exception {
        tpm = new SyntheticAttestation();
        int imported = FIXED_TPM | FIXED_PARENT | USER_WITH_AUTH | NO_DA | SIGN;
        importedHmac = tpm.certify(SyntheticAttestation.hmacPublic(imported), NONCE, 2);
        generatedHmac = tpm.certify(SyntheticAttestation.hmacPublic(imported | SENSITIVE_DATA_ORIGIN), NONCE, 2);
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(2048);
        RSAPublicKey rsa = (RSAPublicKey) g.generateKeyPair().getPublic();
        // as TPM2_Import makes them: fixedTPM/fixedParent clear, tpmkms' no-duplication policy
        importedRsa = tpm.certify(SyntheticAttestation.rsaPublic(rsa, USER_WITH_AUTH | NO_DA | SIGN,
                KeyAttestationVerifier.noDuplicationPolicy()), NONCE, 4);
        // the same with a policy that might allow TPM2_Duplicate
        duplicableRsa = tpm.certify(SyntheticAttestation.rsaPublic(rsa, ADMIN_WITH_POLICY | USER_WITH_AUTH | NO_DA | SIGN,
                POLICY), NONCE, 4);
        rsaPem = SyntheticAttestation.pem(rsa.getEncoded());
        otherRsaPem = SyntheticAttestation.pem(g.generateKeyPair().getPublic().getEncoded());
    }

    private static GetKeyVersionResponse version(boolean imported) {
        KeyVersion.Builder v = KeyVersion.newBuilder().setKey("ns/k").setVersion(2).setImported(imported);
        if (imported) {
            v.setImportJob("ns/job1").setImportTime(com.google.protobuf.Timestamp.newBuilder().setSeconds(1_900_000_000L));
        }
        return GetKeyVersionResponse.newBuilder().setVersion(v).build();
    }

    private static GetKeyResponse key(KeyPurpose purpose) {
        return GetKeyResponse.newBuilder().setKey(Key.newBuilder().setName("ns/k").setPurpose(purpose)).build();
    }

    @Test
    void importedSymmetricKey_verifies_andSaysImportedButFixedTpm() {
        service.respond(importedHmac, version(true), key(KeyPurpose.MAC));

        Result r = run("attestation", "verify", "ns/k", "--nonce", NONCE_HEX);

        assertEquals(0, r.exitCode(), r::toString);
        assertEquals(2, service.only(GetKeyVersionRequest.class).getVersion(), "the attested version");
        for (String line : new String[] {
                "signature by the attestation key: ok",
                "attributes of an imported key (sensitiveDataOrigin clear): ok",
                "key version: imported with import job ns/job1 at 2030-03-17",
                "origin (TPM attributes): imported (material came from outside the TPM)",
                "certified attributes: fixedTPM fixedParent !sensitiveDataOrigin userWithAuth noDA sign",
                "verified: ns/k version 2 (TPM name ",
                "is an object in a TPM that cannot leave it (fixedTPM fixedParent); its material was imported"}) {
            assertTrue(r.stdout().contains(line), () -> line + "\n" + r);
        }
        assertEquals("", r.stderr());
    }

    @Test
    void importedAsymmetricKey_verifies_andSaysOnlyItsPolicyPreventsDuplication() {
        service.respond(importedRsa, version(true), key(KeyPurpose.ASYMMETRIC_SIGN),
                GetPublicKeyResponse.newBuilder().setPem(rsaPem).setVersion(4).build());

        Result r = run("attestation", "verify", "ns/k", "--nonce", NONCE_HEX);

        assertEquals(0, r.exitCode(), r::toString);
        for (String line : new String[] {
                "attributes of an imported key (sensitiveDataOrigin clear): ok",
                "public key matches: ok",
                "certified attributes: !fixedTPM !fixedParent !sensitiveDataOrigin userWithAuth noDA sign",
                "fixedTPM/fixedParent are clear (TPM2_Import requires it), so only its policy (authPolicy "
                        + HexFormat.of().formatHex(KeyAttestationVerifier.noDuplicationPolicy())
                        + ") keeps it from being duplicated"}) {
            assertTrue(r.stdout().contains(line), () -> line + "\n" + r);
        }
    }

    @Test
    void importedAsymmetricKey_withAPolicyThatMayAllowDuplication_fails() {
        service.respond(duplicableRsa, version(true), key(KeyPurpose.ASYMMETRIC_SIGN),
                GetPublicKeyResponse.newBuilder().setPem(rsaPem).setVersion(4).build());

        Result r = run("attestation", "verify", "ns/k", "--nonce", NONCE_HEX);

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("the imported key can leave the TPM"), r::toString);
    }

    @Test
    void importedAsymmetricKey_anotherPublishedPublicKey_fails() {
        service.respond(importedRsa, version(true), key(KeyPurpose.ASYMMETRIC_SIGN),
                GetPublicKeyResponse.newBuilder().setPem(otherRsaPem).setVersion(4).build());

        Result r = run("attestation", "verify", "ns/k", "--nonce", NONCE_HEX);

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("attestation verification FAILED: public key matches:"), r::toString);
    }

    @Test
    void serviceSaysGenerated_butTheTpmSaysImported_fails_andShowsTheTpmsWord() {
        service.respond(importedHmac, version(false), key(KeyPurpose.MAC));

        Result r = run("attestation", "verify", "ns/k", "--nonce", NONCE_HEX);

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("attributes fixedTPM fixedParent sensitiveDataOrigin: FAILED"), r::toString);
        assertTrue(r.stdout().contains("key version: generated by the service (not imported)"), r::toString);
        assertTrue(r.stdout().contains("origin (TPM attributes): imported (material came from outside the TPM)"),
                r::toString);
    }

    @Test
    void serviceSaysImported_butTheTpmSaysGenerated_fails() {
        service.respond(generatedHmac, version(true), key(KeyPurpose.MAC));

        Result r = run("attestation", "verify", "ns/k", "--nonce", NONCE_HEX);

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("attestation verification FAILED: attributes of an imported key "
                + "(sensitiveDataOrigin clear): the service says the version was imported"), r::toString);
    }

    @Test
    void importedKey_tamperedStatement_stillFailsTheSignature() {
        var att = importedHmac.getAttestation().toBuilder();
        byte[] sig = att.getSignature().toByteArray();
        sig[sig.length - 2] ^= 1;
        service.respond(importedHmac.toBuilder().setAttestation(att.setSignature(
                com.google.protobuf.ByteString.copyFrom(sig))).build(), version(true), key(KeyPurpose.MAC));

        Result r = run("attestation", "verify", "ns/k", "--nonce", NONCE_HEX);

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stderr().contains("attestation verification FAILED: signature by the attestation key"), r::toString);
    }

    @Test
    void offline_importedKey_isHeldToTheGeneratedStandard_butTheOriginIsShown() throws Exception {
        Path f = Files.writeString(dir.resolve("att.json"), JsonFormat.printer().print(importedHmac));

        Result r = runAgainst(new byte[0], "attestation", "verify", "--in", f.toString(), "--nonce", NONCE_HEX,
                "--address", "127.0.0.1:1");

        assertEquals(ExitCodes.FAILED, r.exitCode(), r::toString);
        assertTrue(r.stdout().contains("origin (TPM attributes): imported (material came from outside the TPM)"),
                r::toString);
    }

    @Test
    void json_carriesOriginAndTheServicesImportFields() throws Exception {
        service.respond(importedHmac, version(true), key(KeyPurpose.MAC));

        Result r = run("attestation", "verify", "ns/k", "--nonce", NONCE_HEX, "--json");

        assertEquals(0, r.exitCode(), r::toString);
        Struct.Builder parsed = Struct.newBuilder();
        JsonFormat.parser().merge(r.stdout(), parsed);
        assertTrue(parsed.getFieldsOrThrow("verified").getBoolValue());
        assertEquals("imported", parsed.getFieldsOrThrow("origin").getStringValue());
        assertTrue(parsed.getFieldsOrThrow("imported").getBoolValue());
        assertEquals("ns/job1", parsed.getFieldsOrThrow("importJob").getStringValue());
    }
}
