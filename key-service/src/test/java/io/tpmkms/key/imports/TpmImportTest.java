package io.tpmkms.key.imports;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import io.grpc.Status;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.protection.tpm.KeyAttestationVerifier;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.testing.SwtpmResource;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import org.junit.jupiter.api.Test;

/**
 * Import with a TPM (swtpm): TPM import jobs (a wrapping key generated in the
 * TPM, attested), the methods the TPM cannot serve, level mismatches, and the
 * openssl interop into TPM keys ({@link ImportInteropCases}).
 * The attestation of an imported key tells how it was made.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@WithTestResource(value = SwtpmResource.class, initArgs = {
    @ResourceArg(name = "ek-certificate", value = "true"), @ResourceArg(name = "software-seed", value = "true")})
class TpmImportTest extends ImportInteropCases {
  @Override ProtectionLevel level() { return ProtectionLevel.TPM; }

  @Override String ns() { return "tpmimp"; }

  @Test
  void tpmJob_wrappingKeyIsMadeInTheTpm_andItsAttestationVerifiesOffline() throws Exception {
    ImportJob j = activeJob("tpmimp", ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    assertEquals(ProtectionLevel.TPM, j.getProtectionLevel());
    assertTrue(j.hasAttestation(), "TPM jobs carry TPM2_Certify of the wrapping key");
    var statement = toStatement(j.getAttestation());
    byte[] spki = Openssl.der(j.getPublicKeyPem());
    // the statement is bound to the job's name (docs/import-export.md): SHA-256("tpmkms/import-job/v1" 0 name)
    MessageDigest d = MessageDigest.getInstance("SHA-256");
    d.update("tpmkms/import-job/v1\0".getBytes(StandardCharsets.US_ASCII));
    d.update(j.getName().getBytes(StandardCharsets.UTF_8));
    byte[] qualifyingData = d.digest();
    assertArrayEquals(qualifyingData, io.tpmkms.protection.ImportWrapping.jobAttestationNonce(j.getName()));
    KeyAttestationVerifier.verifyStatement(statement, qualifyingData, spki);
    assertThrows(KeyAttestationVerifier.VerificationException.class, () -> KeyAttestationVerifier.verifyStatement(
        statement, "another job".getBytes(StandardCharsets.US_ASCII), spki));
    assertEquals(j, client.keys().getImportJob(GetImportJobRequest.newBuilder().setImportJob(j.getName()).build())
        .getImportJob(), "Get returns the statement made at generation");
  }

  @Test
  void rsa4096Methods_onTheTpm_areRefusedAtCreate() {
    for (ImportMethod m : new ImportMethod[] {ImportMethod.RSA_OAEP_4096_SHA256_AES_256, ImportMethod.RSA_OAEP_4096_SHA256}) {
      assertStatus(Status.Code.UNIMPLEMENTED, "CAPABILITY_UNAVAILABLE", () -> client.keys().createImportJob(
          CreateImportJobRequest.newBuilder().setNamespace("tpmimp").setJobId("big-" + m.getNumber())
              .setImportMethod(m).setProtectionLevel(ProtectionLevel.TPM).build()));
      assertStatus(Status.Code.NOT_FOUND, "IMPORT_JOB_NOT_FOUND", () -> client.keys().getImportJob(
          GetImportJobRequest.newBuilder().setImportJob("tpmimp/big-" + m.getNumber()).build()));
    }
  }

  @Test
  void jobOfAnotherProtectionLevel_isAMismatch_andChangesNothing() throws Exception {
    ImportJob software = client.keys().createImportJob(CreateImportJobRequest.newBuilder().setNamespace("tpmimp")
        .setJobId("soft" + SEQ.incrementAndGet()).setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256_AES_256)
        .setProtectionLevel(ProtectionLevel.SOFTWARE).setWait(Duration.newBuilder().setSeconds(60)).build())
        .getImportJob();
    assertEquals(ImportJobState.ACTIVE, software.getState());
    assertFalse(software.hasAttestation());
    String tpmKey = ns() + "/gen" + SEQ.incrementAndGet();
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace(ns()).setName(tpmKey.substring(ns().length() + 1))
        .setPurpose(KeyPurpose.MAC).setProtectionLevel(ProtectionLevel.TPM).build());
    var before = client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(tpmKey).build());
    assertStatus(Status.Code.FAILED_PRECONDITION, "IMPORT_JOB_MISMATCH", () -> importInto(tpmKey, software,
        Algorithm.HMAC_SHA256, openssl.wrap(software.getPublicKeyPem(), openssl.rand(32), false)));
    assertEquals(before, client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(tpmKey).build()));
  }

  // ---- the openssl interop into TPM keys ------------------------------------------------------------

  @Override
  @Test
  void aes256_importedWithOpenssl_encryptsWithTheImportedKey() throws Exception {
    super.aes256_importedWithOpenssl_encryptsWithTheImportedKey();
  }

  /**
   * The TPM's AEAD construction (ADR 0009, docs/api.md), computed with plain JCA from the
   * imported 32 bytes K: 0x01 | version (4) | salt (16) | nonce (12) | AES-256-GCM ciphertext | tag,
   * with DEK = HMAC-SHA256(K, "tpmkms/tpm/aead/v1" || salt) and the caller's AAD as GCM AAD.
   */
  @Override
  void checkCiphertextWithOriginalKey(byte[] material, byte[] ct, byte[] aad, byte[] plaintext) throws Exception {
    assertEquals(1, ct[0]);
    assertEquals(1, java.nio.ByteBuffer.wrap(ct, 1, 4).getInt());
    javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
    mac.init(new javax.crypto.spec.SecretKeySpec(material, "HmacSHA256"));
    mac.update("tpmkms/tpm/aead/v1".getBytes(StandardCharsets.US_ASCII));
    mac.update(ct, 5, 16);
    javax.crypto.Cipher gcm = javax.crypto.Cipher.getInstance("AES/GCM/NoPadding");
    gcm.init(javax.crypto.Cipher.DECRYPT_MODE, new javax.crypto.spec.SecretKeySpec(mac.doFinal(), "AES"),
        new javax.crypto.spec.GCMParameterSpec(128, ct, 21, 12));
    gcm.updateAAD(aad);
    assertArrayEquals(plaintext, gcm.doFinal(ct, 33, ct.length - 33), "the TPM ciphertext opens with the original key");
  }

  @Override
  @Test
  void ecP256_importedWithOpenssl_signaturesVerifyWithOpenssl_publicKeyEqual() throws Exception {
    super.ecP256_importedWithOpenssl_signaturesVerifyWithOpenssl_publicKeyEqual();
  }

  @Override
  @Test
  void hmac_importedDirectlyWithOpenssl_tagEqualsOpensslMac() throws Exception {
    super.hmac_importedDirectlyWithOpenssl_tagEqualsOpensslMac();
  }

  @Test
  void tpmUnwrap_bitFlippedOaepPart_isWrappedKeyInvalid() throws Exception {
    ImportJob job = activeJob("tpmimp", ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    String key = key(KeyPurpose.MAC, Algorithm.HMAC_SHA256, true);
    byte[] wrapped = openssl.wrap(job.getPublicKeyPem(), openssl.rand(32), false);
    wrapped[17] ^= 0x40;
    assertStatus(Status.Code.INVALID_ARGUMENT, "WRAPPED_KEY_INVALID",
        () -> importInto(key, job, Algorithm.HMAC_SHA256, wrapped));
    assertEquals(0, client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key)
        .setIncludeDestroyed(true).build()).getVersionsCount());
  }

  @Test
  void attestation_ofImportedVersions_saysImported_andWhetherTheKeyIsFixedToTheTpm() throws Exception {
    ImportJob job = activeJob(ns(), ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    byte[] pkcs8 = openssl.ecP256();
    String ec = key(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256, false); // v1 generated here
    importInto(ec, job, Algorithm.EC_SIGN_P256_SHA256, openssl.wrap(job.getPublicKeyPem(), pkcs8, false));
    String mac = key(KeyPurpose.MAC, Algorithm.HMAC_SHA256, true);
    importInto(mac, job, Algorithm.HMAC_SHA256, openssl.wrap(job.getPublicKeyPem(), openssl.rand(32), false));

    KeyAttestationVerifier.Result generated = attest(ec, 1, true);
    assertEquals(KeyAttestationVerifier.Origin.GENERATED, generated.origin());
    assertTrue(generated.fixedTpm() && generated.fixedParent() && !generated.duplicable(), generated.summary());

    // EC private keys enter by TPM2_Import: fixedTPM/fixedParent CLEAR, duplication impossible by policy
    KeyAttestationVerifier.Result ecImported = attest(ec, 2, true);
    assertEquals(KeyAttestationVerifier.Origin.IMPORTED, ecImported.origin());
    assertFalse(ecImported.fixedTpm() || ecImported.fixedParent(), ecImported.summary());
    assertFalse(ecImported.duplicable(), ecImported.summary());
    // HMAC keys by TPM2_Create with the caller's data: fixedTPM and fixedParent stay SET
    KeyAttestationVerifier.Result macImported = attest(mac, 1, false);
    assertEquals(KeyAttestationVerifier.Origin.IMPORTED, macImported.origin());
    assertTrue(macImported.fixedTpm() && macImported.fixedParent() && !macImported.duplicable(),
        macImported.summary());
    // the strict check for generated keys refuses an imported one
    assertThrows(KeyAttestationVerifier.VerificationException.class,
        () -> KeyAttestationVerifier.verifyStatement(statement(ec, 2), NONCE, null));
  }

  static final byte[] NONCE = "fresh verifier nonce".getBytes(StandardCharsets.US_ASCII);

  io.tpmkms.protection.KeyAttestation statement(String key, int version) {
    return toStatement(client.keys().getKeyAttestation(GetKeyAttestationRequest.newBuilder().setKey(key)
        .setVersion(version).setNonce(ByteString.copyFrom(NONCE)).build()).getAttestation());
  }

  static io.tpmkms.protection.KeyAttestation toStatement(KeyAttestation a) {
    return new io.tpmkms.protection.KeyAttestation(a.getAttest().toByteArray(), a.getSignature().toByteArray(),
        Openssl.der(a.getAttestationKeyPem()), a.getAttestationKeyPublic().toByteArray(),
        a.getAttestationKeyName().toByteArray(), a.getEkCertificate().toByteArray(),
        a.getCertifiedName().toByteArray(), a.getCertifiedPublic().toByteArray());
  }

  KeyAttestationVerifier.Result attest(String key, int version, boolean asymmetric) throws Exception {
    byte[] spki = asymmetric ? Openssl.der(client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key)
        .setVersion(version).build()).getPem()) : null;
    return KeyAttestationVerifier.verifyStatementResult(statement(key, version), NONCE, spki);
  }
}
