package io.tpmkms.key.exports;

import static io.tpmkms.key.exports.DuplicationTargetResource.p;
import static io.tpmkms.key.exports.DuplicationTargetResource.tools;
import static io.tpmkms.key.exports.DuplicationTargetResource.toolsAllowingFailure;
import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import io.grpc.Status;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.protection.tpm.KeyAttestationVerifier;
import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.testing.SwtpmResource;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * TPM duplication through the key service on swtpm A, with tpm2-tools on swtpm B as the other
 * machine (ADR 0025): DUPLICABLE keys, ExportKeyVersion to B's certified storage key (imported,
 * loaded and used for signing there; openssl verifies with GetPublicKey's PEM), TPM2_DUPLICATION
 * import jobs receiving tpm2_duplicate blobs from B, and the refusals, each changing nothing.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@WithTestResource(value = SwtpmResource.class, initArgs = {@ResourceArg(name = "ek-certificate", value = "true")})
@WithTestResource(DuplicationTargetResource.class)
class TpmExportTest extends GrpcTest {
  private static final AtomicInteger SEQ = new AtomicInteger();
  private static final String NS = "dup";

  private String key(Algorithm alg, KeyPurpose purpose, ExportPolicy policy) {
    String name = "k" + SEQ.incrementAndGet();
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace(NS).setName(name).setPurpose(purpose)
        .setAlgorithm(alg).setProtectionLevel(ProtectionLevel.TPM).setExportPolicy(policy).build());
    return NS + "/" + name;
  }

  private static byte[] read(String file) throws Exception { return Files.readAllBytes(Path.of(p(file))); }

  private static DuplicationTarget target() throws Exception {
    return DuplicationTarget.newBuilder().setPublicArea(ByteString.copyFrom(read("parent.pub")))
        .setAttest(ByteString.copyFrom(read("attest.out"))).setSignature(ByteString.copyFrom(read("sig.out")))
        .setAttestationKeyPublic(ByteString.copyFrom(read("ak.pub"))).build();
  }

  private ExportKeyVersionResponse export(String key, DuplicationTarget t) {
    return client.keys().exportKeyVersion(ExportKeyVersionRequest.newBuilder().setKey(key).setTarget(t).build());
  }

  private KeyVersion version(String key, int n) {
    return client.keys().getKeyVersion(GetKeyVersionRequest.newBuilder().setKey(key).setVersion(n).build()).getVersion();
  }

  private static boolean verifies(String pem, byte[] message, byte[] der) throws Exception {
    byte[] spki = Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""));
    Signature v = Signature.getInstance("SHA256withECDSA");
    v.initVerify(KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(spki)));
    v.update(message);
    return v.verify(der);
  }

  private byte[] sign(String key, byte[] message) {
    return client.keys().sign(SignRequest.newBuilder().setKey(key).setData(ByteString.copyFrom(message)).build())
        .getSignature().toByteArray();
  }

  private String pem(String key) {
    return client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key).build()).getPem();
  }

  @Test
  void duplicableKey_showsItsPolicy_signs_attestsAsDuplicable() throws Exception {
    String dup = key(Algorithm.EC_SIGN_P256_SHA256, KeyPurpose.ASYMMETRIC_SIGN, ExportPolicy.DUPLICABLE);
    String fixed = key(Algorithm.EC_SIGN_P256_SHA256, KeyPurpose.ASYMMETRIC_SIGN, ExportPolicy.EXPORT_POLICY_UNSPECIFIED);
    Key k = client.keys().getKey(GetKeyRequest.newBuilder().setKey(dup).build()).getKey();
    assertEquals(ExportPolicy.DUPLICABLE, k.getExportPolicy());
    assertEquals(ExportPolicy.DUPLICABLE, k.getPrimary().getExportPolicy());
    assertEquals(32, k.getPrimary().getPolicyDigest().size());
    KeyVersion f = version(fixed, 1);
    assertEquals(ExportPolicy.NON_EXPORTABLE, f.getExportPolicy());
    assertTrue(f.getPolicyDigest().isEmpty());
    byte[] m = "sign with a policy session".getBytes(StandardCharsets.UTF_8);
    assertTrue(verifies(pem(dup), m, sign(dup, m)));

    byte[] nonce = "fresh".getBytes(StandardCharsets.US_ASCII);
    var att = client.keys().getKeyAttestation(GetKeyAttestationRequest.newBuilder().setKey(dup)
        .setNonce(ByteString.copyFrom(nonce)).build()).getAttestation();
    var statement = new io.tpmkms.protection.KeyAttestation(att.getAttest().toByteArray(),
        att.getSignature().toByteArray(), Base64.getMimeDecoder().decode(att.getAttestationKeyPem()
            .replaceAll("-----[A-Z ]+-----", "")), att.getAttestationKeyPublic().toByteArray(),
        att.getAttestationKeyName().toByteArray(), null, att.getCertifiedName().toByteArray(),
        att.getCertifiedPublic().toByteArray());
    KeyAttestationVerifier.Result r = KeyAttestationVerifier.verifyStatementResult(statement, nonce, null);
    assertTrue(r.duplicable());
    assertFalse(r.fixedTpm());
    assertArrayEquals(k.getPrimary().getPolicyDigest().toByteArray(), r.authPolicy(),
        "the attested policy is the one the version shows");

    // rotation keeps the export policy
    KeyVersion v2 = client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey(dup).build()).getVersion();
    assertEquals(ExportPolicy.DUPLICABLE, v2.getExportPolicy());
  }

  @Test
  void duplicableKey_takesNoRsaWrappedTpmImport_theVersionWouldNotBeDuplicable() throws Exception {
    String key = key(Algorithm.HMAC_SHA256, KeyPurpose.MAC, ExportPolicy.DUPLICABLE);
    ImportJob job = client.keys().createImportJob(CreateImportJobRequest.newBuilder().setNamespace(NS)
        .setJobId("rsa" + SEQ.incrementAndGet()).setImportMethod(ImportMethod.RSA_OAEP_3072_SHA256)
        .setProtectionLevel(ProtectionLevel.TPM).setWait(Duration.newBuilder().setSeconds(60)).build()).getImportJob();
    assertStatus(Status.Code.FAILED_PRECONDITION, "EXPORT_POLICY_MISMATCH", () -> client.keys().importKeyVersion(
        ImportKeyVersionRequest.newBuilder().setKey(key).setImportJob(job.getName()).setAlgorithm(Algorithm.HMAC_SHA256)
            .setWrappedKey(ByteString.copyFrom(new byte[384])).build()));
    assertEquals(1, client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key).build())
        .getVersionsCount(), "nothing was created");
  }

  @Test
  void export_toTpm2ToolsTarget_importedAndUsedOnB_opensslVerifies() throws Exception {
    String key = key(Algorithm.EC_SIGN_P256_SHA256, KeyPurpose.ASYMMETRIC_SIGN, ExportPolicy.DUPLICABLE);
    ExportKeyVersionResponse out = export(key, target());
    assertEquals(1, out.getVersion());
    Files.write(Path.of(p("k.pub")), out.getDuplication().getPublicArea().toByteArray());
    Files.write(Path.of(p("k.dpriv")), out.getDuplication().getDuplicate().toByteArray());
    Files.write(Path.of(p("k.seed")), out.getDuplication().getEncryptedSeed().toByteArray());
    Files.writeString(Path.of(p("k.pem")), pem(key));
    Files.writeString(Path.of(p("msg.txt")), "signed on TPM B with a key from tpmkms");
    StringBuilder list = new StringBuilder("sha256:");
    for (int i = 0; i < out.getPolicyBranchesCount(); i++) {
      Files.write(Path.of(p("br" + i)), out.getPolicyBranches(i).toByteArray());
      list.append(i == 0 ? "" : ",").append(p("br" + i));
    }
    tools("tpm2_import", "-C", p("parent.ctx"), "-u", p("k.pub"), "-i", p("k.dpriv"), "-s", p("k.seed"), "-r", p("k.priv"));
    tools("tpm2_load", "-C", p("parent.ctx"), "-u", p("k.pub"), "-r", p("k.priv"), "-c", p("k.ctx"));
    tools("tpm2_startauthsession", "--policy-session", "-S", p("s.ctx"));
    tools("tpm2_policycommandcode", "-S", p("s.ctx"), "TPM2_CC_Sign");
    tools("tpm2_policyauthvalue", "-S", p("s.ctx"));
    tools("tpm2_policyor", "-S", p("s.ctx"), "-l", list.toString());
    tools("tpm2_sign", "-c", p("k.ctx"), "-p", "session:" + p("s.ctx"), "-g", "sha256", "-f", "plain",
        "-o", p("b.sig"), p("msg.txt"));
    tools("tpm2_flushcontext", p("s.ctx"));
    String ok = Swtpm.run(List.of("openssl", "dgst", "-sha256", "-verify", p("k.pem"), "-signature", p("b.sig"),
        p("msg.txt")), 30);
    assertTrue(ok.contains("Verified OK"), ok);
    // and tpmkms still signs with it
    byte[] m = "still here".getBytes(StandardCharsets.UTF_8);
    assertTrue(verifies(pem(key), m, sign(key, m)));
  }

  @Test
  void export_refusals_changeNothing() throws Exception {
    String fixed = key(Algorithm.EC_SIGN_P256_SHA256, KeyPurpose.ASYMMETRIC_SIGN, ExportPolicy.NON_EXPORTABLE);
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_NOT_EXPORTABLE", () -> export(fixed, target()));
    String key = key(Algorithm.EC_SIGN_P256_SHA256, KeyPurpose.ASYMMETRIC_SIGN, ExportPolicy.DUPLICABLE);
    DuplicationTarget good = target();
    byte[] tampered = good.getAttest().toByteArray();
    tampered[tampered.length - 5] ^= 1;
    assertStatus(Status.Code.INVALID_ARGUMENT, "DUPLICATION_TARGET_INVALID",
        () -> export(key, good.toBuilder().setAttest(ByteString.copyFrom(tampered)).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "DUPLICATION_TARGET_INVALID",
        () -> export(key, good.toBuilder().setPublicArea(ByteString.copyFrom(read("ek.pub"))).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "DUPLICATION_TARGET_INVALID",
        () -> export(key, good.toBuilder().setQualifyingData(ByteString.copyFromUtf8("a fresh nonce")).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "DUPLICATION_TARGET_INVALID",
        () -> export(key, DuplicationTarget.getDefaultInstance()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> client.keys().exportKeyVersion(
        ExportKeyVersionRequest.newBuilder().setKey(key).setTarget(good)
            .setTransferAuth(ByteString.copyFrom(new byte[33])).build()));
    client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey(key).build());
    client.keys().disableKeyVersion(DisableKeyVersionRequest.newBuilder().setKey(key).setVersion(1).build());
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_VERSION_NOT_ENABLED", () -> client.keys().exportKeyVersion(
        ExportKeyVersionRequest.newBuilder().setKey(key).setVersion(1).setTarget(good).build()));
    assertEquals(2, export(key, good).getVersion(), "the primary (version 2) exports");
    assertStatus(Status.Code.NOT_FOUND, "KEY_NOT_FOUND", () -> export(NS + "/nope", good));
  }

  @Test
  void duplicationJob_receivesTpm2DuplicateFromB_signsAsB() throws Exception {
    ImportJob job = client.keys().createImportJob(CreateImportJobRequest.newBuilder().setNamespace(NS)
        .setJobId("dupjob" + SEQ.incrementAndGet()).setImportMethod(ImportMethod.TPM2_DUPLICATION)
        .setProtectionLevel(ProtectionLevel.TPM).setWait(Duration.newBuilder().setSeconds(60)).build()).getImportJob();
    assertEquals(ImportJobState.ACTIVE, job.getState());
    assertTrue(job.hasAttestation());
    byte[] wrappingPublic = job.getWrappingPublic().toByteArray();
    assertArrayEquals(job.getAttestation().getCertifiedPublic().toByteArray(),
        java.util.Arrays.copyOfRange(wrappingPublic, 2, wrappingPublic.length), "the certified key is the wrapping key");
    MessageDigest d = MessageDigest.getInstance("SHA-256");
    d.update("tpmkms/import-job/v1\0".getBytes(StandardCharsets.US_ASCII));
    d.update(job.getName().getBytes(StandardCharsets.UTF_8));
    assertEquals(ByteString.copyFrom(d.digest()), extraData(job.getAttestation().getAttest().toByteArray()));

    // on B: a duplicable key (policy: PolicyCommandCode(TPM2_Duplicate)), duplicated to A's SRK
    Files.write(Path.of(p("asrk.pub")), wrappingPublic);
    tools("tpm2_createprimary", "-C", "o", "-G", "ecc256:null:aes128cfb", "-a",
        DuplicationTargetResource.SRK_ATTRIBUTES, "-c", p("bsrk.ctx"));
    tools("tpm2_startauthsession", "-S", p("trial.ctx"));
    tools("tpm2_policycommandcode", "-S", p("trial.ctx"), "-L", p("dup.policy"), "TPM2_CC_Duplicate");
    tools("tpm2_flushcontext", p("trial.ctx"));
    tools("tpm2_create", "-C", p("bsrk.ctx"), "-G", "ecc256:ecdsa-sha256", "-a", "sign|userwithauth|sensitivedataorigin|noda",
        "-L", p("dup.policy"), "-u", p("bkey.pub"), "-r", p("bkey.priv"));
    tools("tpm2_loadexternal", "-C", "o", "-u", p("asrk.pub"), "-c", p("asrk.ctx"));
    tools("tpm2_load", "-C", p("bsrk.ctx"), "-u", p("bkey.pub"), "-r", p("bkey.priv"), "-c", p("bkey.ctx"));
    tools("tpm2_readpublic", "-c", p("bkey.ctx"), "-f", "pem", "-o", p("bkey.pem"));
    tools("tpm2_startauthsession", "--policy-session", "-S", p("ds.ctx"));
    tools("tpm2_policycommandcode", "-S", p("ds.ctx"), "TPM2_CC_Duplicate");
    tools("tpm2_duplicate", "-C", p("asrk.ctx"), "-c", p("bkey.ctx"), "-G", "null", "-p", "session:" + p("ds.ctx"),
        "-r", p("bkey.dpriv"), "-s", p("bkey.seed"));
    tools("tpm2_flushcontext", p("ds.ctx"));

    String fixed = key(Algorithm.EC_SIGN_P256_SHA256, KeyPurpose.ASYMMETRIC_SIGN, ExportPolicy.NON_EXPORTABLE);
    String key = key(Algorithm.EC_SIGN_P256_SHA256, KeyPurpose.ASYMMETRIC_SIGN, ExportPolicy.DUPLICABLE);
    DuplicationBlob blob = DuplicationBlob.newBuilder().setPublicArea(ByteString.copyFrom(read("bkey.pub")))
        .setDuplicate(ByteString.copyFrom(read("bkey.dpriv"))).setEncryptedSeed(ByteString.copyFrom(read("bkey.seed")))
        .build();

    // refusals first: into a NON_EXPORTABLE key (the object stays duplicable by its own policy), a tampered
    // blob, a wrapped_key into the duplication job
    assertStatus(Status.Code.FAILED_PRECONDITION, "EXPORT_POLICY_MISMATCH", () -> importDup(fixed, job, blob));
    assertEquals(1, client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(fixed).build())
        .getVersionsCount());
    byte[] bad = read("bkey.dpriv");
    bad[bad.length / 2] ^= 1;
    assertStatus(Status.Code.INVALID_ARGUMENT, "DUPLICATION_BLOB_INVALID", () -> importDup(key, job,
        blob.toBuilder().setDuplicate(ByteString.copyFrom(bad)).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_IMPORT_METHOD", () -> client.keys().importKeyVersion(
        ImportKeyVersionRequest.newBuilder().setKey(key).setImportJob(job.getName())
            .setAlgorithm(Algorithm.EC_SIGN_P256_SHA256).setWrappedKey(ByteString.copyFromUtf8("x")).build()));
    assertEquals(1, client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key).build())
        .getVersionsCount(), "nothing was created");

    KeyVersion v = importDup(key, job, blob).getVersion();
    assertEquals(2, v.getVersion());
    assertTrue(v.getImported());
    assertTrue(v.getDuplicated());
    assertEquals(ExportPolicy.DUPLICABLE, v.getExportPolicy(), "its own policy (PolicyCommandCode(Duplicate)) allows duplication");
    byte[] m = "signed by tpmkms with B's key".getBytes(StandardCharsets.UTF_8);
    byte[] sig = client.keys().sign(SignRequest.newBuilder().setKey(key).setVersion(2)
        .setData(ByteString.copyFrom(m)).build()).getSignature().toByteArray();
    assertTrue(verifies(Files.readString(Path.of(p("bkey.pem"))), m, sig), "B's public key verifies A's signature");
    assertEquals(Files.readString(Path.of(p("bkey.pem"))).strip(), v.getPublicKeyPem().strip());
  }

  private ImportKeyVersionResponse importDup(String key, ImportJob job, DuplicationBlob blob) {
    return client.keys().importKeyVersion(ImportKeyVersionRequest.newBuilder().setKey(key)
        .setImportJob(job.getName()).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256).setDuplication(blob).build());
  }

  private static ByteString extraData(byte[] attest) {
    java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(attest);
    b.getInt();
    b.getShort();
    int signer = b.getShort() & 0xffff;
    b.position(b.position() + signer);
    byte[] extra = new byte[b.getShort() & 0xffff];
    b.get(extra);
    return ByteString.copyFrom(extra);
  }
}
