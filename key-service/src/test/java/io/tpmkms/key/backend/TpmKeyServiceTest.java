package io.tpmkms.key.backend;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.test.common.ResourceArg;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.testing.SwtpmResource;
import io.tpmkms.proto.key.v1.*;
import io.tpmkms.protection.tpm.KeyAttestationVerifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The key service with a TPM (swtpm) configured, through the real gRPC server:
 * TPM becomes the default protection level, every use is a TPM command, keys
 * attest, the software root seed is sealed, and the service rides out a TPM
 * restart by itself.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@WithTestResource(value = SwtpmResource.class, initArgs = {
    @ResourceArg(name = "ek-certificate", value = "true"), @ResourceArg(name = "software-seed", value = "true")})
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TpmKeyServiceTest extends GrpcTest {
  private static final AtomicInteger SEQ = new AtomicInteger();

  @ConfigProperty(name = "tpmkms.data-dir") String dataDir;
  @jakarta.inject.Inject io.agroal.api.AgroalDataSource db;
  @jakarta.inject.Inject io.tpmkms.key.backend.BackendRegistry registry;

  private String create(KeyPurpose purpose, Algorithm alg) {
    String name = "t" + SEQ.incrementAndGet();
    Key k = client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("tpm").setName(name)
        .setPurpose(purpose).setAlgorithm(alg).build()).getKey();
    assertEquals(ProtectionLevel.TPM, k.getProtectionLevel(), "TPM is the default with a TPM configured");
    return "tpm/" + name;
  }

  @Test
  @Order(1)
  void everyAlgorithm_worksThroughTheTpm() throws Exception {
    ByteString data = ByteString.copyFromUtf8("tpm-protected");
    for (Algorithm alg : List.of(Algorithm.EC_SIGN_P256_SHA256, Algorithm.EC_SIGN_P384_SHA384,
        Algorithm.RSA_SIGN_PKCS1_2048_SHA256, Algorithm.RSA_SIGN_PSS_2048_SHA256)) {
      String key = create(KeyPurpose.ASYMMETRIC_SIGN, alg);
      ByteString sig = client.keys().sign(SignRequest.newBuilder().setKey(key).setData(data).build()).getSignature();
      String pem = client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key).build()).getPem();
      Signature v = jdkVerifier(alg);
      v.initVerify(KeyFactory.getInstance(alg.name().startsWith("EC") ? "EC" : "RSA")
          .generatePublic(new X509EncodedKeySpec(der(pem))));
      v.update(data.toByteArray());
      assertTrue(v.verify(sig.toByteArray()), "JDK verifies the TPM's " + alg + " signature");
      assertTrue(client.keys().verify(VerifyRequest.newBuilder().setKey(key).setVersion(1).setData(data)
          .setSignature(sig).build()).getValid());
    }

    // a batch mixing a TPM key and a SOFTWARE key (issue 21): the TPM's items on the TPM queue, each verified
    String tpmEc = create(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256);
    String softEc = "tpm/soft" + SEQ.incrementAndGet();
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("tpm").setName(softEc.substring(4))
        .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256)
        .setProtectionLevel(ProtectionLevel.SOFTWARE).build());
    List<String> batchKeys = List.of(tpmEc, softEc, tpmEc, softEc, tpmEc);
    BatchSignRequest.Builder batch = BatchSignRequest.newBuilder();
    for (int i = 0; i < batchKeys.size(); i++) {
      batch.addItems(SignRequest.newBuilder().setKey(batchKeys.get(i)).setData(ByteString.copyFromUtf8("item " + i)));
    }
    batch.addItems(SignRequest.newBuilder().setKey(tpmEc).setVersion(9).setData(data));
    BatchSignResponse signed = client.keys().batchSign(batch.build());
    assertEquals(6, signed.getResultsCount());
    for (int i = 0; i < batchKeys.size(); i++) {
      String pem = client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(batchKeys.get(i)).build()).getPem();
      Signature v = jdkVerifier(Algorithm.EC_SIGN_P256_SHA256);
      v.initVerify(KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(der(pem))));
      v.update(("item " + i).getBytes(java.nio.charset.StandardCharsets.UTF_8));
      assertTrue(v.verify(signed.getResults(i).getResponse().getSignature().toByteArray()),
          "item " + i + " (" + batchKeys.get(i) + ") signed its own data");
    }
    assertEquals(Status.Code.NOT_FOUND.value(), signed.getResults(5).getError().getCode(), "version 9 does not exist");

    String aes = create(KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
    ByteString aad = ByteString.copyFromUtf8("ctx");
    ByteString ct = client.keys().encrypt(EncryptRequest.newBuilder().setKey(aes).setPlaintext(data)
        .setAdditionalAuthenticatedData(aad).build()).getCiphertext();
    assertEquals(data, client.keys().decrypt(DecryptRequest.newBuilder().setKey(aes).setCiphertext(ct)
        .setAdditionalAuthenticatedData(aad).build()).getPlaintext());
    assertStatus(Status.Code.INVALID_ARGUMENT, "DECRYPTION_FAILED", () -> client.keys().decrypt(
        DecryptRequest.newBuilder().setKey(aes).setCiphertext(ct).build()));

    String mac = create(KeyPurpose.MAC, Algorithm.HMAC_SHA256);
    ByteString m = client.keys().macSign(MacSignRequest.newBuilder().setKey(mac).setData(data).build()).getMac();
    assertTrue(client.keys().macVerify(MacVerifyRequest.newBuilder().setKey(mac).setVersion(1).setData(data)
        .setMac(m).build()).getValid());

    String oaep = create(KeyPurpose.ASYMMETRIC_DECRYPT, Algorithm.RSA_DECRYPT_OAEP_2048_SHA256);
    String pem = client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(oaep).build()).getPem();
    javax.crypto.Cipher c = javax.crypto.Cipher.getInstance("RSA/ECB/OAEPPadding");
    c.init(javax.crypto.Cipher.ENCRYPT_MODE, KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(der(pem))),
        new javax.crypto.spec.OAEPParameterSpec("SHA-256", "MGF1", java.security.spec.MGF1ParameterSpec.SHA256,
            javax.crypto.spec.PSource.PSpecified.DEFAULT));
    assertEquals("secret", client.keys().asymmetricDecrypt(AsymmetricDecryptRequest.newBuilder().setKey(oaep)
        .setVersion(1).setCiphertext(ByteString.copyFrom(c.doFinal("secret".getBytes(StandardCharsets.UTF_8))))
        .build()).getPlaintext().toStringUtf8());

    ByteString r1 = client.keys().generateRandom(GenerateRandomRequest.newBuilder().setLengthBytes(100).build()).getData();
    assertEquals(100, r1.size());
    assertNotEquals(r1, client.keys().generateRandom(GenerateRandomRequest.newBuilder().setLengthBytes(100).build())
        .getData());
  }

  @Test
  @Order(2)
  void attestation_verifiesOffline_withTheCallersNonce() throws Exception {
    String key = create(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256);
    byte[] nonce = "fresh-verifier-nonce".getBytes(StandardCharsets.US_ASCII);
    GetKeyAttestationResponse r = client.keys().getKeyAttestation(GetKeyAttestationRequest.newBuilder()
        .setKey(key).setNonce(ByteString.copyFrom(nonce)).build());
    assertEquals(1, r.getVersion());
    var a = r.getAttestation();
    assertFalse(a.getEkCertificate().isEmpty(), "swtpm_setup provisioned an EK certificate");
    var statement = new io.tpmkms.protection.KeyAttestation(a.getAttest().toByteArray(),
        a.getSignature().toByteArray(), der(a.getAttestationKeyPem()), a.getAttestationKeyPublic().toByteArray(),
        a.getAttestationKeyName().toByteArray(), a.getEkCertificate().toByteArray(),
        a.getCertifiedName().toByteArray(), a.getCertifiedPublic().toByteArray());
    byte[] spki = der(client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key).build()).getPem());
    KeyAttestationVerifier.verifyStatement(statement, nonce, spki);
    assertThrows(KeyAttestationVerifier.VerificationException.class,
        () -> KeyAttestationVerifier.verifyStatement(statement, "replayed".getBytes(StandardCharsets.US_ASCII), spki));

    // software keys cannot attest
    String soft = "tpm/soft" + SEQ.incrementAndGet();
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("tpm").setName(soft.substring(4))
        .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setProtectionLevel(ProtectionLevel.SOFTWARE).build());
    assertStatus(Status.Code.UNIMPLEMENTED, "CAPABILITY_UNAVAILABLE", () -> client.keys().getKeyAttestation(
        GetKeyAttestationRequest.newBuilder().setKey(soft).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> client.keys().getKeyAttestation(
        GetKeyAttestationRequest.newBuilder().setKey(key).setNonce(ByteString.copyFrom(new byte[33])).build()));
  }

  @Test
  @Order(3)
  void softwareRootSeed_plainSeedIsMigratedAndSealedByTheTpm() throws Exception {
    Path sealed = Path.of(dataDir, "software-root.sealed");
    assertTrue(Files.exists(sealed));
    byte[] sealedBytes = Files.readAllBytes(sealed);
    // ADR 0034: by default bound to PCR 7 (Secure Boot's state), no operator secret
    assertEquals("TKSR", new String(sealedBytes, 0, 4, StandardCharsets.US_ASCII));
    assertEquals(0, sealedBytes[5], "no operator secret configured");
    assertEquals(1, sealedBytes[6]);
    assertEquals(7, sealedBytes[7]);
    byte[] seed = SwtpmResource.seed();
    for (int i = 0; i + seed.length <= sealedBytes.length; i++) {
      assertFalse(java.util.Arrays.equals(seed, 0, seed.length, sealedBytes, i, i + seed.length),
          "the sealed file does not hold the seed in the clear");
    }
    // and software keys work under the sealed root
    String soft = "tpm/sw" + SEQ.incrementAndGet();
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("tpm").setName(soft.substring(4))
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setProtectionLevel(ProtectionLevel.SOFTWARE).build());
    ByteString ct = client.keys().encrypt(EncryptRequest.newBuilder().setKey(soft)
        .setPlaintext(ByteString.copyFromUtf8("x")).build()).getCiphertext();
    assertEquals("x", client.keys().decrypt(DecryptRequest.newBuilder().setKey(soft).setCiphertext(ct).build())
        .getPlaintext().toStringUtf8());
  }

  @Test
  @Order(4)
  void fiftyKeys_sixteenClients_noObjectMemoryErrorReachesACaller() throws Exception {
    List<String> keys = new ArrayList<>();
    for (int i = 0; i < 50; i++) keys.add(create(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256));
    ExecutorService pool = Executors.newFixedThreadPool(16);
    try {
      List<Future<Integer>> results = new ArrayList<>();
      for (int t = 0; t < 16; t++) {
        int offset = t;
        results.add(pool.submit(() -> {
          int ok = 0;
          for (int i = 0; i < 30; i++) {
            String key = keys.get((offset * 7 + i) % keys.size());
            ByteString d = ByteString.copyFromUtf8(key + i);
            ByteString sig = client.keys().sign(SignRequest.newBuilder().setKey(key).setData(d).build()).getSignature();
            if (client.keys().verify(VerifyRequest.newBuilder().setKey(key).setVersion(1).setData(d)
                .setSignature(sig).build()).getValid()) ok++;
          }
          return ok;
        }));
      }
      int ok = 0;
      for (Future<Integer> f : results) ok += f.get(180, TimeUnit.SECONDS);
      assertEquals(16 * 30, ok);
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  @Order(5)
  void tpmRestart_duringTheOutageUnavailable_thenRecoversByItself() throws Exception {
    String key = create(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256);
    ByteString d = ByteString.copyFromUtf8("before");
    client.keys().sign(SignRequest.newBuilder().setKey(key).setData(d).build());

    assertEquals("SERVING", health()[0], "ready with the TPM up");
    SwtpmResource.current().kill();
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> client.keys().sign(SignRequest.newBuilder().setKey(key).setData(d).build()));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.getStatus().toString());
    // issue 18: readiness follows the TPM, with the reason in the health answer
    assertTrue(readiness.evaluate().containsKey("tpm"), "the tpm check fails while swtpm is down");
    String[] down = health();
    assertEquals("NOT_SERVING", down[0]);
    assertTrue(down[1] != null && down[1].startsWith("tpm: TPM unreachable"), String.valueOf(down[1]));
    // the catalogue is untouched during the outage
    assertEquals(1, client.keys().getKey(GetKeyRequest.newBuilder().setKey(key).build()).getKey().getPrimaryVersion());

    SwtpmResource.current().startProcess();
    assertTrue(readiness.evaluate().isEmpty(), "ready again once swtpm is back");
    assertEquals("SERVING", health()[0]);
    assertEquals(null, health()[1], "no reason when ready");
    ByteString sig = client.keys().sign(SignRequest.newBuilder().setKey(key).setData(d).build()).getSignature();
    assertTrue(client.keys().verify(VerifyRequest.newBuilder().setKey(key).setVersion(1).setData(d)
        .setSignature(sig).build()).getValid(), "the old key works after the TPM came back");
  }

  @Test
  @Order(6)
  void anotherTpm_keysFailClearly_andNothingIsDeleted() throws Exception {
    String key = create(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256);
    ByteString d = ByteString.copyFromUtf8("owner seed");
    client.keys().sign(SignRequest.newBuilder().setKey(key).setData(d).build());

    var swtpm = SwtpmResource.current();
    Path state = swtpm.stateDir;
    Path saved = state.resolveSibling("state.saved");
    swtpm.kill();
    Files.move(state, saved);
    Files.createDirectories(state);
    swtpm.startProcess(); // a TPM with a fresh owner seed on the same socket
    try {
      var info = assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_MATERIAL_UNUSABLE",
          () -> awaitAnswer(() -> client.keys().sign(SignRequest.newBuilder().setKey(key).setData(d).build())));
      assertEquals(null, info.getMetadataMap().get("correlation_id"));
      assertEquals(1, client.keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key).build())
          .getVersionsCount(), "nothing was deleted");
    } finally {
      swtpm.kill();
      try (var files = Files.walk(state)) {
        for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
      }
      Files.move(saved, state);
      swtpm.startProcess();
    }
    ByteString sig = awaitAnswer(() -> client.keys().sign(SignRequest.newBuilder().setKey(key).setData(d).build()))
        .getSignature();
    assertTrue(client.keys().verify(VerifyRequest.newBuilder().setKey(key).setVersion(1).setData(d)
        .setSignature(sig).build()).getValid(), "back on the right TPM, the key works again");
  }

  @Test
  @Order(7)
  void keyCreatedThroughTheService_loadsAndSignsWithTpm2Tools_opensslVerifies() throws Exception {
    String key = create(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256);
    String pem = client.keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(key).build()).getPem();
    byte[] blob;
    try (var c = db.getConnection(); var ps = c.prepareStatement("SELECT v.key_blob FROM kms_key_version v"
        + " JOIN kms_key k ON k.id = v.key_id WHERE k.namespace = 'tpm' AND k.name = ? AND v.number = 1")) {
      ps.setString(1, key.substring(4));
      var rs = ps.executeQuery();
      assertTrue(rs.next());
      blob = rs.getBytes(1);
    }
    // blob format v1 (docs/tpm-adapter.md): ... | u16 n | SRK name | objectId(16) | TPM2B_PUBLIC | TPM2B_PRIVATE
    var b = java.nio.ByteBuffer.wrap(blob);
    int n = b.getShort(8) & 0xffff;
    byte[] objectId = java.util.Arrays.copyOfRange(blob, 10 + n, 26 + n);
    int pubStart = 26 + n;
    int p = b.getShort(pubStart) & 0xffff;
    int privStart = pubStart + 2 + p;
    int q = b.getShort(privStart) & 0xffff;
    Path d = Files.createTempDirectory("tpm2tools-");
    Files.write(d.resolve("key.pub"), java.util.Arrays.copyOfRange(blob, pubStart, pubStart + 2 + p));
    Files.write(d.resolve("key.priv"), java.util.Arrays.copyOfRange(blob, privStart, privStart + 2 + q));
    Files.writeString(d.resolve("pub.pem"), pem);
    Files.writeString(d.resolve("data.txt"), "signed by tpm2-tools with a tpmkms key");
    // auth value = HMAC-SHA256(root seed, "tpmkms/tpm/auth/v1" || objectId)
    javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
    mac.init(new javax.crypto.spec.SecretKeySpec(SwtpmResource.seed(), "HmacSHA256"));
    mac.update("tpmkms/tpm/auth/v1".getBytes(StandardCharsets.US_ASCII));
    String auth = java.util.HexFormat.of().formatHex(mac.doFinal(objectId));

    // swtpm serves one connection: the service lets go of it while the tools run
    ((io.tpmkms.protection.tpm.TpmKeyProtectionBackend) registry.forLevel(io.tpmkms.protection.ProtectionLevel.TPM))
        .releaseConnection();
    String t = SwtpmResource.current().tcti();
    run("tpm2_createprimary", "-T", t, "-C", "o", "-G", "ecc256:null:aes128cfb",
        "-a", "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt",
        "-c", d.resolve("srk.ctx").toString());
    // without a resource manager the tools leave their objects loaded: free the slots (swtpm has 3)
    run("tpm2_flushcontext", "-T", t, "-t");
    run("tpm2_load", "-T", t, "-C", d.resolve("srk.ctx").toString(), "-u", d.resolve("key.pub").toString(),
        "-r", d.resolve("key.priv").toString(), "-c", d.resolve("key.ctx").toString());
    run("tpm2_flushcontext", "-T", t, "-t");
    run("tpm2_sign", "-T", t, "-c", d.resolve("key.ctx").toString(), "-p", "hex:" + auth, "-g", "sha256",
        "-f", "plain", "-o", d.resolve("sig.der").toString(), d.resolve("data.txt").toString());
    run("tpm2_flushcontext", "-T", t, "-t");
    String out = run("openssl", "dgst", "-sha256", "-verify", d.resolve("pub.pem").toString(),
        "-signature", d.resolve("sig.der").toString(), d.resolve("data.txt").toString());
    assertTrue(out.contains("Verified OK"), out);
    // the service takes the TPM back by itself, and verifies the tools' signature too
    assertTrue(client.keys().verify(VerifyRequest.newBuilder().setKey(key).setVersion(1)
        .setData(ByteString.copyFrom(Files.readAllBytes(d.resolve("data.txt"))))
        .setSignature(ByteString.copyFrom(Files.readAllBytes(d.resolve("sig.der")))).build()).getValid());
    client.keys().sign(SignRequest.newBuilder().setKey(key).setData(ByteString.copyFromUtf8("again")).build());
  }

  private static String run(String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), String.join(" ", cmd));
    assertEquals(0, p.exitValue(), String.join(" ", cmd) + "\n" + out);
    return out;
  }

  /** Retries while the service reports the TPM as reconnecting (UNAVAILABLE). */
  private static <T> T awaitAnswer(java.util.function.Supplier<T> call) throws InterruptedException {
    for (int i = 0; ; i++) {
      try {
        return call.get();
      } catch (StatusRuntimeException e) {
        if (e.getStatus().getCode() != Status.Code.UNAVAILABLE || i > 50) throw e;
        Thread.sleep(100);
      }
    }
  }

  @io.quarkus.test.common.http.TestHTTPResource("/q/metrics") java.net.URL metricsUrl;
  @jakarta.inject.Inject io.tpmkms.platform.health.Readiness readiness;

  /** Health/Check of the whole server over the wire: its status and the not-ready header. */
  private String[] health() {
    var headers = new java.util.concurrent.atomic.AtomicReference<io.grpc.Metadata>();
    var stub = grpc.health.v1.HealthGrpc.newBlockingStub(client.channel).withInterceptors(
        io.grpc.stub.MetadataUtils.newCaptureMetadataInterceptor(headers, new java.util.concurrent.atomic.AtomicReference<>()));
    var status = stub.check(grpc.health.v1.HealthOuterClass.HealthCheckRequest.newBuilder().build()).getStatus();
    String reason = headers.get() == null ? null : headers.get().get(io.grpc.Metadata.Key.of(
        io.tpmkms.platform.health.Readiness.NOT_READY_HEADER, io.grpc.Metadata.ASCII_STRING_MARSHALLER));
    return new String[] {status.name(), reason};
  }

  /**
   * Issue 18: after a known workload the Prometheus endpoint (HTTP port, not gRPC) counts exactly the
   * calls made, per method and status code; the TPM commands behind them move; no key name is a label.
   */
  @Test
  @Order(8)
  void metrics_countTheCallsByStatus_andTheTpmCommands() throws Exception {
    String aes = create(KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
    ByteString data = ByteString.copyFromUtf8("counted");
    client.keys().encrypt(EncryptRequest.newBuilder().setKey(aes).setPlaintext(data).build()); // loads the key
    var encryptOk = java.util.Map.of("method", "tpmkms.key.v1.KeyService/Encrypt", "code", "OK");
    var getNotFound = java.util.Map.of("method", "tpmkms.key.v1.KeyService/GetKey", "code", "NOT_FOUND");
    var hmacOk = java.util.Map.of("command", "HMAC", "outcome", "ok");
    io.tpmkms.testing.PrometheusScrape before = io.tpmkms.testing.PrometheusScrape.of(metricsUrl.toString());
    for (int i = 0; i < 7; i++) {
      client.keys().encrypt(EncryptRequest.newBuilder().setKey(aes).setPlaintext(data).build());
    }
    for (int i = 0; i < 3; i++) {
      assertStatus(Status.Code.NOT_FOUND, "KEY_NOT_FOUND", () -> client.keys().getKey(GetKeyRequest.newBuilder()
          .setKey("tpm/no-such-key-" + SEQ.get()).build()));
    }
    io.tpmkms.testing.PrometheusScrape after = io.tpmkms.testing.PrometheusScrape.of(metricsUrl.toString());
    String rpc = "tpmkms_rpc_server_duration_seconds_count";
    assertEquals(7.0, after.value(rpc, encryptOk) - before.value(rpc, encryptOk), "Encrypt OK calls");
    assertEquals(3.0, after.value(rpc, getNotFound) - before.value(rpc, getNotFound), "GetKey NOT_FOUND calls");
    assertTrue(after.value("tpmkms_rpc_server_duration_seconds_bucket",
        java.util.Map.of("method", "tpmkms.key.v1.KeyService/Encrypt", "code", "OK", "le", "+Inf")) >= 8,
        "the histogram's buckets are exported");
    String tpm = "tpmkms_tpm_command_duration_seconds_count";
    assertEquals(7.0, after.value(tpm, hmacOk) - before.value(tpm, hmacOk), "one TPM2_HMAC per Encrypt");
    assertTrue(after.value("tpmkms_tpm_object_loads_total", java.util.Map.of()) >= 1, "the key was loaded");
    assertTrue(after.families().contains("tpmkms_tpm_queue_depth"), after.families().toString());
    assertTrue(after.families().contains("jvm_memory_used_bytes"), "the JVM's meters too");
    // every metric the dashboard and the alert rules use exists (the audit chain's: AuditDeliveryIT)
    java.util.Set<String> missing = new java.util.TreeSet<>();
    for (String name : io.tpmkms.testing.ObservabilityFiles.metricNames()) {
      if (!io.tpmkms.testing.ObservabilityFiles.auditServiceOnly(name) && !after.exports(name)) {
        missing.add(name);
      }
    }
    assertTrue(missing.isEmpty(), "used in deploy/observability but not exported: " + missing);
    assertFalse(after.text().contains(aes), "a key name in the metrics");
    assertFalse(after.text().contains("no-such-key"), "a requested name in the metrics");
  }

  /**
   * Issue 20 / ADR 0037: the attestation key is in the TPM of the EK certificate. The EK certificate
   * chains to swtpm's local CA (the stand-in manufacturer); a credential made in software for that EK
   * and the AK's name comes back with its secret — only that TPM holds both; a credential for another
   * name, or garbage, is INVALID_ARGUMENT CREDENTIAL_INVALID.
   */
  @Test
  @Order(10)
  void attestationKey_provenInTheTpmOfTheEkCertificate_byCredentialActivation() throws Exception {
    String key = create(KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256);
    KeyAttestation att = client.keys().getKeyAttestation(GetKeyAttestationRequest.newBuilder().setKey(key)
        .setNonce(ByteString.copyFromUtf8("chain")).build()).getAttestation();
    java.security.cert.X509Certificate ek = (java.security.cert.X509Certificate) java.security.cert.CertificateFactory
        .getInstance("X.509").generateCertificate(new java.io.ByteArrayInputStream(att.getEkCertificate().toByteArray()));
    byte[] ekPublic = io.tpmkms.protection.tpm.attest.EkTemplates.forCertifiedKey(ek.getPublicKey());
    String ca = Files.readString(SwtpmResource.current().dir.resolve("ca/issuercert.pem"));
    var chain = io.tpmkms.protection.tpm.attest.EkCertificateValidator.fromPem(ca)
        .validate(att.getEkCertificate().toByteArray(), List.of(), ekPublic);
    assertEquals("swtpm", chain.model(), "the manufacturer's model from the TCG subjectAltName");

    byte[] secret = new byte[32];
    new java.security.SecureRandom().nextBytes(secret);
    var credential = io.tpmkms.protection.tpm.attest.CredentialActivation.make(ekPublic,
        att.getAttestationKeyName().toByteArray(), secret);
    ActivateAttestationCredentialResponse activated = client.keys().activateAttestationCredential(
        ActivateAttestationCredentialRequest.newBuilder().setEkType(EndorsementKeyType.EK_RSA_2048)
            .setCredential(ByteString.copyFrom(credential.toTpm2ToolsFile())).build());
    assertEquals(ByteString.copyFrom(secret), activated.getSecret(), "the TPM with this EK holds this AK");

    byte[] otherName = att.getAttestationKeyName().toByteArray();
    otherName[5] ^= 1;
    var forAnother = io.tpmkms.protection.tpm.attest.CredentialActivation.make(ekPublic, otherName, secret);
    assertStatus(Status.Code.INVALID_ARGUMENT, "CREDENTIAL_INVALID", () -> client.keys().activateAttestationCredential(
        ActivateAttestationCredentialRequest.newBuilder()
            .setCredential(ByteString.copyFrom(forAnother.toTpm2ToolsFile())).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "CREDENTIAL_INVALID", () -> client.keys().activateAttestationCredential(
        ActivateAttestationCredentialRequest.newBuilder().setCredential(ByteString.copyFromUtf8("garbage")).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "CREDENTIAL_INVALID", () -> client.keys().activateAttestationCredential(
        ActivateAttestationCredentialRequest.newBuilder().setCredential(ByteString.copyFrom(new byte[2000])).build()));
    // and the service keeps working after the TPM's refusals (its key cache was flushed for EK and AK)
    client.keys().sign(SignRequest.newBuilder().setKey(key).setData(ByteString.copyFromUtf8("after")).build());
  }

  private String pcrTool(String... args) throws Exception {
    ((io.tpmkms.protection.tpm.TpmKeyProtectionBackend) registry.forLevel(io.tpmkms.protection.ProtectionLevel.TPM))
        .releaseConnection(); // swtpm serves one connection at a time
    List<String> cmd = new ArrayList<>(List.of(args[0], "-T", SwtpmResource.current().tcti()));
    cmd.addAll(List.of(args).subList(1, args.length));
    String out = io.tpmkms.protection.tpm.Swtpm.runAllowingFailure(cmd, 30);
    assertTrue(out.startsWith("exit 0"), out);
    return out;
  }

  /**
   * Issue 20: a key bound to PCR 16 through the service. The TPM refuses it after tpm2_pcrextend
   * (FAILED_PRECONDITION PLATFORM_STATE_MISMATCH, single calls and batch items), rotation keeps the
   * binding, the attestation shows it and its policy proves it offline, and after tpm2_pcrreset the
   * key works again. Malformed or impossible bindings are refused and create nothing.
   */
  @Test
  @Order(9)
  void platformBoundKey_refusedWhilePcr16Differs_worksAgainAfterReset() throws Exception {
    pcrTool("tpm2_pcrreset", "16");
    byte[] pcr16 = registry.forLevel(io.tpmkms.protection.ProtectionLevel.TPM).pcrValues(new int[] {16})[0];
    String name = "bound" + SEQ.incrementAndGet();
    Key k = client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("tpm").setName(name)
        .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256)
        .setPlatformBinding(PlatformBinding.newBuilder().addPcrs(16)).build()).getKey();
    String key = "tpm/" + name;
    assertEquals(List.of(16), k.getPlatformBinding().getPcrsList());
    assertEquals(ByteString.copyFrom(pcr16), k.getPlatformBinding().getValues(0), "bound to the value PCR 16 held");
    assertEquals(k.getPlatformBinding(), k.getPrimary().getPlatformBinding(), "the version's object asserts it");
    String aesName = "boundaes" + SEQ.incrementAndGet();
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("tpm").setName(aesName)
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setPlatformBinding(PlatformBinding.newBuilder().addPcrs(16)).build());
    String aes = "tpm/" + aesName;
    ByteString data = ByteString.copyFromUtf8("bound");
    ByteString ct = client.keys().encrypt(EncryptRequest.newBuilder().setKey(aes).setPlaintext(data).build()).getCiphertext();
    client.keys().sign(SignRequest.newBuilder().setKey(key).setData(data).build());

    pcrTool("tpm2_pcrextend", "16:sha256=" + "ab".repeat(32));
    assertStatus(Status.Code.FAILED_PRECONDITION, "PLATFORM_STATE_MISMATCH",
        () -> client.keys().sign(SignRequest.newBuilder().setKey(key).setData(data).build()));
    StatusRuntimeException refused = assertThrows(StatusRuntimeException.class,
        () -> client.keys().sign(SignRequest.newBuilder().setKey(key).setData(data).build()));
    assertTrue(refused.getStatus().getDescription().contains("PCR 16"), refused.getStatus().getDescription());
    assertStatus(Status.Code.FAILED_PRECONDITION, "PLATFORM_STATE_MISMATCH",
        () -> client.keys().decrypt(DecryptRequest.newBuilder().setKey(aes).setCiphertext(ct).build()));
    BatchSignResponse batch = client.keys().batchSign(BatchSignRequest.newBuilder()
        .addItems(SignRequest.newBuilder().setKey(key).setData(data)).build());
    assertEquals(Status.Code.FAILED_PRECONDITION.value(), batch.getResults(0).getError().getCode());
    // rotation keeps the key's binding (the old values): the new version is refused just the same
    RotateKeyResponse rotated = client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey(key).build());
    assertEquals(k.getPlatformBinding(), rotated.getVersion().getPlatformBinding());
    assertStatus(Status.Code.FAILED_PRECONDITION, "PLATFORM_STATE_MISMATCH",
        () -> client.keys().sign(SignRequest.newBuilder().setKey(key).setData(data).build()));
    // the attestation still works (an ADMIN branch without PCRs) and shows the binding, proven by the policy
    GetKeyAttestationResponse att = client.keys().getKeyAttestation(GetKeyAttestationRequest.newBuilder()
        .setKey(key).setVersion(1).setNonce(ByteString.copyFromUtf8("n")).build());
    assertEquals(k.getPlatformBinding(), att.getPlatformBinding());
    io.tpmkms.protection.PlatformBinding binding = new io.tpmkms.protection.PlatformBinding(new int[] {16},
        new byte[][] {pcr16});
    byte[] certified = att.getAttestation().getCertifiedPublic().toByteArray();
    assertTrue(KeyAttestationVerifier.boundTo(certified, io.tpmkms.protection.KeyAlgorithm.EC_SIGN_P256_SHA256, binding));
    assertFalse(KeyAttestationVerifier.boundTo(certified, io.tpmkms.protection.KeyAlgorithm.EC_SIGN_P256_SHA256,
        new io.tpmkms.protection.PlatformBinding(new int[] {16}, new byte[][] {predictedAfter(pcr16, "ab")})),
        "another value, another policy");

    pcrTool("tpm2_pcrreset", "16");
    for (int v : new int[] {1, 2}) {
      client.keys().sign(SignRequest.newBuilder().setKey(key).setVersion(v).setData(data).build());
    }
    assertEquals(data, client.keys().decrypt(DecryptRequest.newBuilder().setKey(aes).setCiphertext(ct).build())
        .getPlaintext());

    // bindings that cannot be: INVALID_ARGUMENT, nothing created
    List<CreateKeyRequest.Builder> bad = List.of(
        CreateKeyRequest.newBuilder().setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setProtectionLevel(ProtectionLevel.SOFTWARE)
            .setPlatformBinding(PlatformBinding.newBuilder().addPcrs(16)),
        CreateKeyRequest.newBuilder().setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setExportPolicy(ExportPolicy.DUPLICABLE)
            .setPlatformBinding(PlatformBinding.newBuilder().addPcrs(16)),
        CreateKeyRequest.newBuilder().setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setImportOnly(true)
            .setPlatformBinding(PlatformBinding.newBuilder().addPcrs(16)),
        CreateKeyRequest.newBuilder().setPurpose(KeyPurpose.ASYMMETRIC_SIGN)
            .setPlatformBinding(PlatformBinding.newBuilder().addPcrs(24)),
        CreateKeyRequest.newBuilder().setPurpose(KeyPurpose.ASYMMETRIC_SIGN)
            .setPlatformBinding(PlatformBinding.newBuilder()),
        CreateKeyRequest.newBuilder().setPurpose(KeyPurpose.ASYMMETRIC_SIGN)
            .setPlatformBinding(PlatformBinding.newBuilder().addPcrs(16).addPcrs(16)),
        CreateKeyRequest.newBuilder().setPurpose(KeyPurpose.ASYMMETRIC_SIGN)
            .setPlatformBinding(PlatformBinding.newBuilder().addPcrs(16).addPcrs(7).addValues(ByteString.copyFrom(new byte[32]))),
        CreateKeyRequest.newBuilder().setPurpose(KeyPurpose.ASYMMETRIC_SIGN)
            .setPlatformBinding(PlatformBinding.newBuilder().addPcrs(16).addValues(ByteString.copyFrom(new byte[20]))));
    for (CreateKeyRequest.Builder b : bad) {
      String n = "badbind" + SEQ.incrementAndGet();
      assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PLATFORM_BINDING",
          () -> client.keys().createKey(b.setNamespace("tpm").setName(n).build()));
      assertStatus(Status.Code.NOT_FOUND, "KEY_NOT_FOUND",
          () -> client.keys().getKey(GetKeyRequest.newBuilder().setKey("tpm/" + n).build()));
    }
    // explicit values, in any PCR order: bound to what the platform will hold after a planned change
    byte[] predicted = java.security.MessageDigest.getInstance("SHA-256").digest(
        concat(pcr16, java.util.HexFormat.of().parseHex("cd".repeat(32))));
    byte[] pcr23 = registry.forLevel(io.tpmkms.protection.ProtectionLevel.TPM).pcrValues(new int[] {23})[0];
    String planned = "planned" + SEQ.incrementAndGet();
    Key p = client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("tpm").setName(planned)
        .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setPlatformBinding(PlatformBinding.newBuilder().addPcrs(23).addPcrs(16)
            .addValues(ByteString.copyFrom(pcr23)).addValues(ByteString.copyFrom(predicted))).build()).getKey();
    assertEquals(List.of(16, 23), p.getPlatformBinding().getPcrsList(), "sorted, the values moved with them");
    assertEquals(ByteString.copyFrom(predicted), p.getPlatformBinding().getValues(0));
    assertStatus(Status.Code.FAILED_PRECONDITION, "PLATFORM_STATE_MISMATCH",
        () -> client.keys().sign(SignRequest.newBuilder().setKey("tpm/" + planned).setData(data).build()));
    pcrTool("tpm2_pcrextend", "16:sha256=" + "cd".repeat(32));
    client.keys().sign(SignRequest.newBuilder().setKey("tpm/" + planned).setData(data).build());
    pcrTool("tpm2_pcrreset", "16");
  }

  private static Signature jdkVerifier(Algorithm alg) throws Exception {
    return switch (alg) {
      case EC_SIGN_P256_SHA256 -> Signature.getInstance("SHA256withECDSA");
      case EC_SIGN_P384_SHA384 -> Signature.getInstance("SHA384withECDSA");
      case RSA_SIGN_PKCS1_2048_SHA256 -> Signature.getInstance("SHA256withRSA");
      default -> {
        Signature s = Signature.getInstance("RSASSA-PSS");
        s.setParameter(new java.security.spec.PSSParameterSpec("SHA-256", "MGF1",
            java.security.spec.MGF1ParameterSpec.SHA256, 32, 1));
        yield s;
      }
    };
  }

  private static byte[] der(String pem) {
    return Base64.getDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", ""));
  }

  static void same(byte[] a, byte[] b) { assertArrayEquals(a, b); }

  private static byte[] predictedAfter(byte[] pcr, String extendByte) throws Exception {
    return java.security.MessageDigest.getInstance("SHA-256").digest(
        concat(pcr, java.util.HexFormat.of().parseHex(extendByte.repeat(32))));
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
