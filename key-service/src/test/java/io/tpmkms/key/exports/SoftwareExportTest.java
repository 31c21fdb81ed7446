package io.tpmkms.key.exports;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import io.grpc.Status;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Export of SOFTWARE keys (ADR 0025): a DUPLICABLE key leaves wrapped for an RSA key in the
 * import-job format (RSA-OAEP + AES-KWP), here the public key of an import job, and the imported
 * copy signs and MACs like the original; NON_EXPORTABLE keys and bad targets are refused.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
class SoftwareExportTest extends GrpcTest {
  private static final AtomicInteger SEQ = new AtomicInteger();
  private static final String NS = "softexp";

  private String key(KeyPurpose purpose, Algorithm alg, ExportPolicy policy, boolean importOnly) {
    String name = "k" + SEQ.incrementAndGet();
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace(NS).setName(name).setPurpose(purpose)
        .setAlgorithm(alg).setProtectionLevel(ProtectionLevel.SOFTWARE).setExportPolicy(policy)
        .setImportOnly(importOnly).build());
    return NS + "/" + name;
  }

  private ImportJob job(ImportMethod method) {
    return client.keys().createImportJob(CreateImportJobRequest.newBuilder().setNamespace(NS)
        .setJobId("job" + SEQ.incrementAndGet()).setImportMethod(method).setProtectionLevel(ProtectionLevel.SOFTWARE)
        .setWait(Duration.newBuilder().setSeconds(60)).build()).getImportJob();
  }

  private ExportKeyVersionResponse export(String key, String pem, ImportMethod method) {
    return client.keys().exportKeyVersion(ExportKeyVersionRequest.newBuilder().setKey(key)
        .setWrappingPublicKeyPem(pem).setImportMethod(method).build());
  }

  @Test
  void duplicableSoftwareKeys_leaveWrappedForAnImportJob_theCopySignsAndMacsAlike() throws Exception {
    String ec = key(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256, ExportPolicy.DUPLICABLE, false);
    String mac = key(KeyPurpose.MAC, Algorithm.HMAC_SHA256, ExportPolicy.DUPLICABLE, false);
    assertEquals(ExportPolicy.DUPLICABLE, client.keys().getKey(GetKeyRequest.newBuilder().setKey(ec).build())
        .getKey().getPrimary().getExportPolicy());
    ImportJob job = job(ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    String ecCopy = key(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256, ExportPolicy.NON_EXPORTABLE, true);
    String macCopy = key(KeyPurpose.MAC, Algorithm.HMAC_SHA256, ExportPolicy.NON_EXPORTABLE, true);

    ExportKeyVersionResponse out = export(ec, job.getPublicKeyPem(), ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    assertEquals(1, out.getVersion());
    assertFalse(out.hasDuplication());
    KeyVersion v = client.keys().importKeyVersion(ImportKeyVersionRequest.newBuilder().setKey(ecCopy)
        .setImportJob(job.getName()).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256).setWrappedKey(out.getWrappedKey())
        .build()).getVersion();
    String pem = client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(ec).build()).getPem();
    assertEquals(pem.strip(), v.getPublicKeyPem().strip(), "the copy holds the same key");
    byte[] m = "either copy".getBytes(StandardCharsets.UTF_8);
    byte[] sig = client.keys().sign(SignRequest.newBuilder().setKey(ecCopy).setData(ByteString.copyFrom(m)).build())
        .getSignature().toByteArray();
    Signature s = Signature.getInstance("SHA256withECDSA");
    s.initVerify(KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(
        Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", "")))));
    s.update(m);
    assertTrue(s.verify(sig), "the copy's signature verifies with the original's public key");

    ExportKeyVersionResponse macOut = export(mac, job.getPublicKeyPem(), ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    client.keys().importKeyVersion(ImportKeyVersionRequest.newBuilder().setKey(macCopy).setImportJob(job.getName())
        .setAlgorithm(Algorithm.HMAC_SHA256).setWrappedKey(macOut.getWrappedKey()).build());
    assertEquals(client.keys().macSign(MacSignRequest.newBuilder().setKey(mac).setData(ByteString.copyFrom(m)).build())
        .getMac(), client.keys().macSign(MacSignRequest.newBuilder().setKey(macCopy).setData(ByteString.copyFrom(m))
            .build()).getMac(), "one HMAC key, two copies");

    // a direct RSA-OAEP method carries symmetric keys only
    ImportJob direct = job(ImportMethod.RSA_OAEP_3072_SHA256);
    ExportKeyVersionResponse d = export(mac, direct.getPublicKeyPem(), ImportMethod.RSA_OAEP_3072_SHA256);
    assertEquals(384, d.getWrappedKey().size());
    assertStatus(Status.Code.INVALID_ARGUMENT, "DUPLICATION_TARGET_INVALID",
        () -> export(ec, direct.getPublicKeyPem(), ImportMethod.RSA_OAEP_3072_SHA256));
  }

  @Test
  void refusals() {
    String fixed = key(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256, ExportPolicy.EXPORT_POLICY_UNSPECIFIED,
        false);
    String dup = key(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256, ExportPolicy.DUPLICABLE, false);
    ImportJob job = job(ImportMethod.RSA_OAEP_3072_SHA256_AES_256);
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_NOT_EXPORTABLE",
        () -> export(fixed, job.getPublicKeyPem(), ImportMethod.RSA_OAEP_3072_SHA256_AES_256));
    assertStatus(Status.Code.INVALID_ARGUMENT, "DUPLICATION_TARGET_INVALID",
        () -> export(dup, "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n",
            ImportMethod.RSA_OAEP_3072_SHA256_AES_256));
    assertStatus(Status.Code.INVALID_ARGUMENT, "DUPLICATION_TARGET_INVALID",
        () -> export(dup, job.getPublicKeyPem(), ImportMethod.RSA_OAEP_4096_SHA256_AES_256)); // a 3072-bit key for RSA-4096
    assertStatus(Status.Code.INVALID_ARGUMENT, "DUPLICATION_TARGET_INVALID", () -> client.keys().exportKeyVersion(
        ExportKeyVersionRequest.newBuilder().setKey(dup).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_IMPORT_METHOD",
        () -> export(dup, job.getPublicKeyPem(), ImportMethod.TPM2_DUPLICATION));
  }
}
