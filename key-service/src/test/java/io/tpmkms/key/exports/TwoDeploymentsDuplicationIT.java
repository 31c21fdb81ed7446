package io.tpmkms.key.exports;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.protection.tpm.Swtpm;
import io.tpmkms.protection.tpm.TpmKeyProtectionBackend;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two tpmkms deployments (the packaged key service, twice), each on its own swtpm and database:
 * A exports a DUPLICABLE key to B's TPM2_DUPLICATION import job (its SRK, certified by B's
 * attestation key, which A trusts), B imports it; both sign, one public key verifies both; B cannot
 * export it further.
 */
class TwoDeploymentsDuplicationIT {
  @TempDir static Path dir;
  static final List<Swtpm> tpms = new ArrayList<>();
  static final List<EmbeddedPostgres> dbs = new ArrayList<>();
  static final List<Process> services = new ArrayList<>();
  static final List<ManagedChannel> channels = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    for (int i = 0; i < 2; i++) {
      tpms.add(Swtpm.start());
      dbs.add(EmbeddedPostgres.builder().start());
    }
    // B's attestation key (a primary from a fixed template in B's endorsement hierarchy): A trusts it
    String akB;
    byte[] probeSecret = new byte[32];
    try (TpmKeyProtectionBackend probe = TpmKeyProtectionBackend.open(tpms.get(1).config(), probeSecret)) {
      akB = HexFormat.of().formatHex(probe.certifySrk(null).akName());
    }
    int[] ports = io.tpmkms.devtools.ServiceProcess.freePorts(4);
    for (int i = 0; i < 2; i++) {
      Path log = dir.resolve("deployment-" + i + ".log");
      ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-jar", Path.of("target", "quarkus-app", "quarkus-run.jar").toAbsolutePath().toString())
          .redirectErrorStream(true).redirectOutput(log.toFile());
      Map<String, String> env = pb.environment();
      env.put("QUARKUS_DATASOURCE_JDBC_URL", dbs.get(i).getJdbcUrl("postgres", "postgres"));
      env.put("QUARKUS_DATASOURCE_USERNAME", "postgres");
      env.put("QUARKUS_DATASOURCE_PASSWORD", "postgres");
      env.put("TPMKMS_DATA_DIR", Files.createDirectories(dir.resolve("data-" + i)).toString());
      env.put("TPMKMS_AUTH_MODE", "none"); // the duplicator role has its own test (AuthorizationIT)
      env.put("TPMKMS_GRPC_PORT", Integer.toString(ports[2 * i]));
      env.put("TPMKMS_HTTP_PORT", Integer.toString(ports[2 * i + 1]));
      env.put("TPMKMS_BACKEND_TPM_TRANSPORT", "unix");
      env.put("TPMKMS_BACKEND_TPM_PATH", tpms.get(i).socket().toString());
      if (i == 0) env.put("TPMKMS_DUPLICATION_TRUSTED_ATTESTATION_KEYS", akB);
      services.add(pb.start());
      channels.add(io.grpc.Grpc.newChannelBuilderForAddress("localhost", ports[2 * i],
          io.grpc.InsecureChannelCredentials.create()).build());
      awaitStarted(log);
    }
  }

  @AfterAll
  static void stop() throws Exception {
    channels.forEach(ManagedChannel::shutdownNow);
    for (Process p : services) {
      p.destroy();
      if (!p.waitFor(20, TimeUnit.SECONDS)) p.destroyForcibly();
    }
    for (EmbeddedPostgres pg : dbs) pg.close();
    for (Swtpm t : tpms) t.close();
  }

  static void awaitStarted(Path log) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (System.nanoTime() < deadline) {
      String s = Files.exists(log) ? Files.readString(log) : "";
      if (s.contains("Installed features")) return;
      if (s.contains("Failed to start")) throw new IllegalStateException("a deployment failed to start:\n" + s);
      Thread.sleep(200);
    }
    throw new IllegalStateException("a deployment did not start within 120 s:\n" + Files.readString(log));
  }

  static KeyServiceGrpc.KeyServiceBlockingStub keys(int i) {
    return KeyServiceGrpc.newBlockingStub(channels.get(i)).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  static boolean verifies(String pem, byte[] message, byte[] der) throws Exception {
    byte[] spki = Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""));
    Signature v = Signature.getInstance("SHA256withECDSA");
    v.initVerify(KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(spki)));
    v.update(message);
    return v.verify(der);
  }

  @Test
  void exportFromA_importIntoB_bothSign_onePublicKeyVerifiesBoth() throws Exception {
    keys(0).createKey(CreateKeyRequest.newBuilder().setNamespace("pay").setName("signer")
        .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256)
        .setProtectionLevel(ProtectionLevel.TPM).setExportPolicy(ExportPolicy.DUPLICABLE).build());
    keys(1).createKey(CreateKeyRequest.newBuilder().setNamespace("pay").setName("signer")
        .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256)
        .setProtectionLevel(ProtectionLevel.TPM).setImportOnly(true).setExportPolicy(ExportPolicy.DUPLICABLE).build());
    ImportJob job = keys(1).createImportJob(CreateImportJobRequest.newBuilder().setNamespace("pay").setJobId("from-a")
        .setImportMethod(ImportMethod.TPM2_DUPLICATION).setProtectionLevel(ProtectionLevel.TPM)
        .setWait(Duration.newBuilder().setSeconds(60)).build()).getImportJob();
    assertEquals(ImportJobState.ACTIVE, job.getState());

    // A checks B's job statement (its qualifying data binds it to the job's name) and duplicates to it
    byte[] nonce = io.tpmkms.protection.ImportWrapping.jobAttestationNonce(job.getName());
    byte[] transfer = new byte[32];
    new SecureRandom().nextBytes(transfer);
    ExportKeyVersionResponse out = keys(0).exportKeyVersion(ExportKeyVersionRequest.newBuilder().setKey("pay/signer")
        .setTarget(DuplicationTarget.newBuilder().setPublicArea(job.getWrappingPublic())
            .setAttest(job.getAttestation().getAttest()).setSignature(job.getAttestation().getSignature())
            .setAttestationKeyPublic(job.getAttestation().getAttestationKeyPublic())
            .setQualifyingData(ByteString.copyFrom(nonce)))
        .setTransferAuth(ByteString.copyFrom(transfer)).build());

    KeyVersion imported = keys(1).importKeyVersion(ImportKeyVersionRequest.newBuilder().setKey("pay/signer")
        .setImportJob(job.getName()).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256)
        .setDuplication(out.getDuplication()).setTransferAuth(ByteString.copyFrom(transfer)).build()).getVersion();
    assertTrue(imported.getDuplicated());
    assertEquals(ExportPolicy.DUPLICABLE, imported.getExportPolicy());
    String pemA = keys(0).getPublicKey(GetPublicKeyRequest.newBuilder().setKey("pay/signer").build()).getPem();
    assertEquals(pemA.strip(), imported.getPublicKeyPem().strip(), "the same key on both TPMs");
    assertEquals(keys(0).getKeyVersion(GetKeyVersionRequest.newBuilder().setKey("pay/signer").setVersion(1).build())
        .getVersion().getPolicyDigest(), imported.getPolicyDigest(), "the policy moved with the key");

    byte[] m = "one key, two TPMs".getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i < 2; i++) {
      byte[] sig = keys(i).sign(SignRequest.newBuilder().setKey("pay/signer").setData(ByteString.copyFrom(m)).build())
          .getSignature().toByteArray();
      assertTrue(verifies(pemA, m, sig), "deployment " + (char) ('A' + i) + "'s signature verifies with A's public key");
    }

    // B cannot pass it on: only A's duplication authority approves its duplication
    StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
        () -> keys(1).exportKeyVersion(ExportKeyVersionRequest.newBuilder().setKey("pay/signer")
            .setTarget(DuplicationTarget.newBuilder().setPublicArea(job.getWrappingPublic())
                .setAttest(job.getAttestation().getAttest()).setSignature(job.getAttestation().getSignature())
                .setAttestationKeyPublic(job.getAttestation().getAttestationKeyPublic())).build()));
    assertEquals(Status.Code.FAILED_PRECONDITION, e.getStatus().getCode(), e.toString());
    // a tampered blob is refused by B's TPM (outer HMAC) and creates nothing
    byte[] bad = out.getDuplication().getDuplicate().toByteArray();
    bad[bad.length - 3] ^= 1;
    StatusRuntimeException t = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
        () -> keys(1).importKeyVersion(ImportKeyVersionRequest.newBuilder().setKey("pay/signer")
            .setImportJob(job.getName()).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256)
            .setDuplication(out.getDuplication().toBuilder().setDuplicate(ByteString.copyFrom(bad)))
            .setTransferAuth(ByteString.copyFrom(transfer)).build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, t.getStatus().getCode(), t.toString());
    assertEquals(1, keys(1).listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey("pay/signer").build())
        .getVersionsCount(), "the refused import created nothing");
  }
}
