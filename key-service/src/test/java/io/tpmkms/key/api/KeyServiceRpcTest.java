package io.tpmkms.key.api;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import com.google.protobuf.Timestamp;
import io.grpc.Status;
import grpc.health.v1.HealthGrpc;
import grpc.health.v1.HealthOuterClass.HealthCheckRequest;
import grpc.health.v1.HealthOuterClass.HealthCheckResponse;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.stub.StreamObserver;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.key.v1.*;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Each RPC through the real server: its normal answer and its errors, with exact status and reason. */
@QuarkusTest
@WithTestResource(PostgresResource.class)
class KeyServiceRpcTest extends GrpcTest {
  private static final AtomicInteger SEQ = new AtomicInteger();

  private KeyServiceGrpc.KeyServiceBlockingStub keys() { return client.keys(); }

  private String create(String ns, KeyPurpose purpose, Algorithm alg) {
    String name = "k" + SEQ.incrementAndGet();
    keys().createKey(CreateKeyRequest.newBuilder().setNamespace(ns).setName(name).setPurpose(purpose)
        .setAlgorithm(alg).build());
    return ns + "/" + name;
  }

  // ---- CreateKey / GetKey ---------------------------------------------------------------------

  @Test
  void createKey_defaultsPerPurpose() {
    for (var c : List.of(
        new Object[] {KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM},
        new Object[] {KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256},
        new Object[] {KeyPurpose.ASYMMETRIC_DECRYPT, Algorithm.RSA_DECRYPT_OAEP_2048_SHA256},
        new Object[] {KeyPurpose.MAC, Algorithm.HMAC_SHA256})) {
      Key k = keys().createKey(CreateKeyRequest.newBuilder().setNamespace("defaults")
          .setName("d" + SEQ.incrementAndGet()).setPurpose((KeyPurpose) c[0]).build()).getKey();
      assertEquals(c[1], k.getAlgorithm());
      assertEquals(k, keys().getKey(GetKeyRequest.newBuilder().setKey(k.getName()).build()).getKey());
    }
  }

  @Test
  void createKey_sameNameTwice_alreadyExists() {
    String key = create("dup", KeyPurpose.MAC, Algorithm.HMAC_SHA256);
    String name = key.substring(key.indexOf('/') + 1);
    assertStatus(Status.Code.ALREADY_EXISTS, "KEY_ALREADY_EXISTS", () -> keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("dup").setName(name).setPurpose(KeyPurpose.MAC).build()));
  }

  @Test
  void createKey_badInput_invalidArgumentAndNothingCreated() {
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_NAMESPACE", () -> keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("Bad NS").setName("x").setPurpose(KeyPurpose.MAC).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_KEY_NAME", () -> keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("ok").setName("a/b").setPurpose(KeyPurpose.MAC).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_KEY_NAME", () -> keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("ok").setName("x".repeat(129)).setPurpose(KeyPurpose.MAC).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PURPOSE", () -> keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("ok").setName("nopurpose").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_ALGORITHM", () -> keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("ok").setName("mismatch").setPurpose(KeyPurpose.MAC)
            .setAlgorithm(Algorithm.AES_256_GCM).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_ALGORITHM", () -> keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("ok").setName("unknownalg").setPurpose(KeyPurpose.MAC)
            .setAlgorithmValue(999).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_LABEL", () -> keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("ok").setName("badlabel").setPurpose(KeyPurpose.MAC)
            .putLabels("Upper", "x").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_ROTATION_PERIOD", () -> keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("ok").setName("badperiod").setPurpose(KeyPurpose.MAC)
            .setRotationPeriod(Duration.newBuilder().setNanos(1000)).build()));
    assertStatus(Status.Code.UNIMPLEMENTED, "PROTECTION_LEVEL_UNAVAILABLE", () -> keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("ok").setName("tpm").setPurpose(KeyPurpose.MAC)
            .setProtectionLevel(ProtectionLevel.TPM).build()));
    assertEquals(0, keys().listKeys(ListKeysRequest.newBuilder().setNamespace("ok").build()).getKeysCount());
  }

  @Test
  void getKey_unknown_notFoundWithKeyInMetadata() {
    var info = assertStatus(Status.Code.NOT_FOUND, "KEY_NOT_FOUND",
        () -> keys().getKey(GetKeyRequest.newBuilder().setKey("nowhere/nothing").build()));
    assertEquals("nowhere/nothing", info.getMetadataMap().get("key"));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_KEY_NAME",
        () -> keys().getKey(GetKeyRequest.newBuilder().setKey("no-slash").build()));
  }

  // ---- ListKeys ---------------------------------------------------------------------------------

  @Test
  void listKeys_pagesInOrder_andFiltersByNamespaceAndLabels() {
    String ns = "list" + SEQ.incrementAndGet();
    for (int i = 0; i < 7; i++) {
      keys().createKey(CreateKeyRequest.newBuilder().setNamespace(ns).setName(String.format("key-%02d", i))
          .setPurpose(KeyPurpose.MAC).putLabels("env", i % 2 == 0 ? "prod" : "dev").putLabels("team", "a").build());
    }
    List<String> seen = new ArrayList<>();
    String token = "";
    int pages = 0;
    do {
      ListKeysResponse page = keys().listKeys(ListKeysRequest.newBuilder().setNamespace(ns).setPageSize(3)
          .setPageToken(token).build());
      page.getKeysList().forEach(k -> seen.add(k.getName()));
      token = page.getNextPageToken();
      pages++;
    } while (!token.isEmpty());
    assertEquals(3, pages);
    assertEquals(List.of(ns + "/key-00", ns + "/key-01", ns + "/key-02", ns + "/key-03", ns + "/key-04",
        ns + "/key-05", ns + "/key-06"), seen);

    List<String> prod = keys().listKeys(ListKeysRequest.newBuilder().setNamespace(ns).putLabels("env", "prod")
        .putLabels("team", "a").build()).getKeysList().stream().map(Key::getName).toList();
    assertEquals(List.of(ns + "/key-00", ns + "/key-02", ns + "/key-04", ns + "/key-06"), prod);
    assertEquals(0, keys().listKeys(ListKeysRequest.newBuilder().setNamespace(ns).putLabels("env", "qa").build())
        .getKeysCount());
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN",
        () -> keys().listKeys(ListKeysRequest.newBuilder().setPageToken("!!!").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST",
        () -> keys().listKeys(ListKeysRequest.newBuilder().setPageSize(5000).build()));
  }

  // ---- UpdateKey --------------------------------------------------------------------------------

  @Test
  void updateKey_labelsAndSchedule_withEtagCheck() {
    String key = create("upd", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
    Key before = keys().getKey(GetKeyRequest.newBuilder().setKey(key).build()).getKey();
    assertNotEquals(0, before.getEtag());
    Key after = keys().updateKey(UpdateKeyRequest.newBuilder().setKey(key).addUpdateMask("labels")
        .addUpdateMask("rotation_period").putLabels("owner", "alice")
        .setRotationPeriod(Duration.newBuilder().setSeconds(86400 * 30)).setEtag(before.getEtag()).build()).getKey();
    assertEquals("alice", after.getLabelsMap().get("owner"));
    assertEquals(86400 * 30, after.getRotationPeriod().getSeconds());
    assertTrue(after.hasNextRotationTime());
    assertNotEquals(before.getEtag(), after.getEtag());
    // a stale etag loses
    assertStatus(Status.Code.ABORTED, "ETAG_MISMATCH", () -> keys().updateKey(UpdateKeyRequest.newBuilder()
        .setKey(key).addUpdateMask("labels").setEtag(before.getEtag()).build()));
    // clearing the period clears the schedule
    Key cleared = keys().updateKey(UpdateKeyRequest.newBuilder().setKey(key).addUpdateMask("rotation_period").build())
        .getKey();
    assertFalse(cleared.hasRotationPeriod());
    assertFalse(cleared.hasNextRotationTime());
    assertEquals("alice", cleared.getLabelsMap().get("owner"), "labels were not in the mask");
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_UPDATE_MASK",
        () -> keys().updateKey(UpdateKeyRequest.newBuilder().setKey(key).addUpdateMask("purpose").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_UPDATE_MASK",
        () -> keys().updateKey(UpdateKeyRequest.newBuilder().setKey(key).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_ROTATION_PERIOD",
        () -> keys().updateKey(UpdateKeyRequest.newBuilder().setKey(key).addUpdateMask("next_rotation_time")
            .setNextRotationTime(Timestamp.newBuilder().setSeconds(Instant.now().getEpochSecond() + 60)).build()));
  }

  // ---- versions ---------------------------------------------------------------------------------

  @Test
  void versions_listGetSetPrimary() {
    String key = create("ver", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
    for (int i = 0; i < 4; i++) keys().rotateKey(RotateKeyRequest.newBuilder().setKey(key).build());
    ListKeyVersionsResponse first = keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key)
        .setPageSize(2).build());
    assertEquals(List.of(1, 2), first.getVersionsList().stream().map(KeyVersion::getVersion).toList());
    ListKeyVersionsResponse rest = keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key)
        .setPageSize(10).setPageToken(first.getNextPageToken()).build());
    assertEquals(List.of(3, 4, 5), rest.getVersionsList().stream().map(KeyVersion::getVersion).toList());
    assertTrue(rest.getNextPageToken().isEmpty());
    assertTrue(rest.getVersions(2).getPrimary());

    Key k = keys().setPrimaryVersion(SetPrimaryVersionRequest.newBuilder().setKey(key).setVersion(2).build()).getKey();
    assertEquals(2, k.getPrimaryVersion());
    assertEquals(2, keys().encrypt(EncryptRequest.newBuilder().setKey(key).setPlaintext(ByteString.copyFromUtf8("x"))
        .build()).getVersion(), "encrypt uses the primary");
    assertTrue(keys().getKeyVersion(GetKeyVersionRequest.newBuilder().setKey(key).setVersion(2).build())
        .getVersion().getPrimary());

    // disabling a version that is no longer primary works; making a disabled version primary does not
    keys().disableKeyVersion(DisableKeyVersionRequest.newBuilder().setKey(key).setVersion(5).build());
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_VERSION_NOT_ENABLED", () -> keys().setPrimaryVersion(
        SetPrimaryVersionRequest.newBuilder().setKey(key).setVersion(5).build()));
    // repeating a transition already in effect is not an error
    assertEquals(KeyVersionState.DISABLED, keys().disableKeyVersion(
        DisableKeyVersionRequest.newBuilder().setKey(key).setVersion(5).build()).getVersion().getState());
    assertStatus(Status.Code.NOT_FOUND, "KEY_VERSION_NOT_FOUND", () -> keys().getKeyVersion(
        GetKeyVersionRequest.newBuilder().setKey(key).setVersion(99).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_VERSION", () -> keys().getKeyVersion(
        GetKeyVersionRequest.newBuilder().setKey(key).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_DESTROY_DELAY", () -> keys().scheduleKeyVersionDestruction(
        ScheduleKeyVersionDestructionRequest.newBuilder().setKey(key).setVersion(3)
            .setDelay(Duration.newBuilder().setSeconds(86400L * 365)).build()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "ILLEGAL_STATE_TRANSITION", () -> keys().restoreKeyVersion(
        RestoreKeyVersionRequest.newBuilder().setKey(key).setVersion(3).build()));
  }

  @Test
  void rotateKey_concurrently_everyRotationGetsItsOwnVersion() throws Exception {
    String key = create("conc", KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256);
    int n = 12;
    List<CompletableFuture<RotateKeyResponse>> calls = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      calls.add(CompletableFuture.supplyAsync(() -> keys().rotateKey(RotateKeyRequest.newBuilder().setKey(key).build())));
    }
    Set<Integer> versions = new HashSet<>();
    for (var c : calls) versions.add(c.get(60, TimeUnit.SECONDS).getVersion().getVersion());
    assertEquals(n, versions.size(), "each rotation made a distinct version");
    Key k = keys().getKey(GetKeyRequest.newBuilder().setKey(key).build()).getKey();
    assertEquals(n + 1, k.getPrimaryVersion());
    List<KeyVersion> all = keys().listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key).build())
        .getVersionsList();
    assertEquals(n + 1, all.size());
    assertEquals(1, all.stream().filter(KeyVersion::getPrimary).count(), "exactly one primary");
    all.forEach(v -> assertEquals(KeyVersionState.ENABLED, v.getState()));
  }

  // ---- use --------------------------------------------------------------------------------------

  @Test
  void encrypt_limitsAndWrongPurpose() {
    String aes = create("use", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
    String mac = create("use", KeyPurpose.MAC, Algorithm.HMAC_SHA256);
    ByteString big = ByteString.copyFrom(new byte[64 * 1024 + 1]);
    assertStatus(Status.Code.INVALID_ARGUMENT, "PLAINTEXT_TOO_LARGE",
        () -> keys().encrypt(EncryptRequest.newBuilder().setKey(aes).setPlaintext(big).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "AAD_TOO_LARGE", () -> keys().encrypt(EncryptRequest.newBuilder()
        .setKey(aes).setAdditionalAuthenticatedData(big).build()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "WRONG_KEY_PURPOSE",
        () -> keys().encrypt(EncryptRequest.newBuilder().setKey(mac).build()));
    // the largest allowed plaintext and an empty one both round-trip
    for (ByteString pt : List.of(ByteString.copyFrom(new byte[64 * 1024]), ByteString.EMPTY)) {
      ByteString ct = keys().encrypt(EncryptRequest.newBuilder().setKey(aes).setPlaintext(pt).build()).getCiphertext();
      assertEquals(pt, keys().decrypt(DecryptRequest.newBuilder().setKey(aes).setCiphertext(ct).build()).getPlaintext());
    }
  }

  @Test
  void decrypt_malformedOrTampered_invalidArgument() {
    String aes = create("use", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
    String other = create("use", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
    byte[] ct = keys().encrypt(EncryptRequest.newBuilder().setKey(aes).setPlaintext(ByteString.copyFromUtf8("secret"))
        .build()).getCiphertext().toByteArray();
    byte[] flipped = ct.clone();
    flipped[flipped.length - 1] ^= 1;
    assertStatus(Status.Code.INVALID_ARGUMENT, "DECRYPTION_FAILED", () -> keys().decrypt(
        DecryptRequest.newBuilder().setKey(aes).setCiphertext(ByteString.copyFrom(flipped)).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "DECRYPTION_FAILED", () -> keys().decrypt(
        DecryptRequest.newBuilder().setKey(other).setCiphertext(ByteString.copyFrom(ct)).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "CIPHERTEXT_INVALID", () -> keys().decrypt(
        DecryptRequest.newBuilder().setKey(aes).setCiphertext(ByteString.copyFrom(new byte[] {1, 0})).build()));
    byte[] otherFormat = ct.clone();
    otherFormat[0] = 7;
    assertStatus(Status.Code.INVALID_ARGUMENT, "CIPHERTEXT_INVALID", () -> keys().decrypt(
        DecryptRequest.newBuilder().setKey(aes).setCiphertext(ByteString.copyFrom(otherFormat)).build()));
    byte[] otherVersion = ct.clone();
    otherVersion[4] = 9;
    assertStatus(Status.Code.INVALID_ARGUMENT, "CIPHERTEXT_INVALID", () -> keys().decrypt(
        DecryptRequest.newBuilder().setKey(aes).setCiphertext(ByteString.copyFrom(otherVersion)).build()));
    byte[] truncated = java.util.Arrays.copyOf(ct, 20);
    assertStatus(Status.Code.INVALID_ARGUMENT, "DECRYPTION_FAILED", () -> keys().decrypt(
        DecryptRequest.newBuilder().setKey(aes).setCiphertext(ByteString.copyFrom(truncated)).build()));
  }

  @Test
  void generateDataKey_plaintextDecryptsFromCiphertext() {
    String aes = create("env", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
    ByteString aad = ByteString.copyFromUtf8("bucket/object");
    GenerateDataKeyResponse dk = keys().generateDataKey(GenerateDataKeyRequest.newBuilder().setKey(aes)
        .setAdditionalAuthenticatedData(aad).build());
    assertEquals(32, dk.getPlaintext().size());
    assertEquals(dk.getPlaintext(), keys().decrypt(DecryptRequest.newBuilder().setKey(aes)
        .setCiphertext(dk.getCiphertext()).setAdditionalAuthenticatedData(aad).build()).getPlaintext());
    GenerateDataKeyResponse dk16 = keys().generateDataKey(GenerateDataKeyRequest.newBuilder().setKey(aes)
        .setLengthBytes(16).setOmitPlaintext(true).build());
    assertTrue(dk16.getPlaintext().isEmpty());
    assertEquals(16, keys().decrypt(DecryptRequest.newBuilder().setKey(aes).setCiphertext(dk16.getCiphertext())
        .build()).getPlaintext().size());
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_LENGTH", () -> keys().generateDataKey(
        GenerateDataKeyRequest.newBuilder().setKey(aes).setLengthBytes(20).build()));
  }

  @Test
  void signVerify_dataAndDigest_badSignatureIsInvalidNotError() throws Exception {
    String ec = create("sig", KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P384_SHA384);
    ByteString data = ByteString.copyFromUtf8("payload");
    SignResponse s = keys().sign(SignRequest.newBuilder().setKey(ec).setData(data).build());
    ByteString digest = ByteString.copyFrom(MessageDigest.getInstance("SHA-384").digest(data.toByteArray()));
    SignResponse sd = keys().sign(SignRequest.newBuilder().setKey(ec).setDigest(digest).build());
    for (SignResponse r : List.of(s, sd)) {
      assertTrue(keys().verify(VerifyRequest.newBuilder().setKey(ec).setVersion(1).setData(data)
          .setSignature(r.getSignature()).build()).getValid());
      assertTrue(keys().verify(VerifyRequest.newBuilder().setKey(ec).setVersion(1).setDigest(digest)
          .setSignature(r.getSignature()).build()).getValid());
    }
    assertFalse(keys().verify(VerifyRequest.newBuilder().setKey(ec).setVersion(1)
        .setData(ByteString.copyFromUtf8("other")).setSignature(s.getSignature()).build()).getValid());
    assertFalse(keys().verify(VerifyRequest.newBuilder().setKey(ec).setVersion(1).setData(data)
        .setSignature(ByteString.copyFromUtf8("garbage")).build()).getValid());
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_DIGEST", () -> keys().sign(SignRequest.newBuilder()
        .setKey(ec).setDigest(ByteString.copyFrom(new byte[32])).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST",
        () -> keys().sign(SignRequest.newBuilder().setKey(ec).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_VERSION", () -> keys().verify(VerifyRequest.newBuilder()
        .setKey(ec).setData(data).setSignature(s.getSignature()).build()));
    assertStatus(Status.Code.NOT_FOUND, "KEY_VERSION_NOT_FOUND", () -> keys().verify(VerifyRequest.newBuilder()
        .setKey(ec).setVersion(7).setData(data).setSignature(s.getSignature()).build()));
    String aes = create("sig", KeyPurpose.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM);
    assertStatus(Status.Code.FAILED_PRECONDITION, "WRONG_KEY_PURPOSE",
        () -> keys().sign(SignRequest.newBuilder().setKey(aes).setData(data).build()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "WRONG_KEY_PURPOSE",
        () -> keys().getPublicKey(GetPublicKeyRequest.newBuilder().setKey(aes).build()));
  }

  @Test
  void disabledVersion_cannotSign_andCannotVerify() {
    String ec = create("sig", KeyPurpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256);
    ByteString data = ByteString.copyFromUtf8("payload");
    ByteString sig = keys().sign(SignRequest.newBuilder().setKey(ec).setData(data).build()).getSignature();
    keys().rotateKey(RotateKeyRequest.newBuilder().setKey(ec).build());
    keys().disableKeyVersion(DisableKeyVersionRequest.newBuilder().setKey(ec).setVersion(1).build());
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_VERSION_NOT_ENABLED", () -> keys().sign(
        SignRequest.newBuilder().setKey(ec).setVersion(1).setData(data).build()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_VERSION_NOT_ENABLED", () -> keys().verify(
        VerifyRequest.newBuilder().setKey(ec).setVersion(1).setData(data).setSignature(sig).build()));
  }

  @Test
  void mac_signAndVerify_constantTimeCompare() {
    String mac = create("mac", KeyPurpose.MAC, Algorithm.HMAC_SHA256);
    ByteString data = ByteString.copyFromUtf8("webhook body");
    MacSignResponse m = keys().macSign(MacSignRequest.newBuilder().setKey(mac).setData(data).build());
    assertEquals(32, m.getMac().size());
    assertEquals(m.getMac(), keys().macSign(MacSignRequest.newBuilder().setKey(mac).setData(data).build()).getMac());
    assertTrue(keys().macVerify(MacVerifyRequest.newBuilder().setKey(mac).setVersion(1).setData(data)
        .setMac(m.getMac()).build()).getValid());
    byte[] bad = m.getMac().toByteArray();
    bad[0] ^= 1;
    assertFalse(keys().macVerify(MacVerifyRequest.newBuilder().setKey(mac).setVersion(1).setData(data)
        .setMac(ByteString.copyFrom(bad)).build()).getValid());
    keys().rotateKey(RotateKeyRequest.newBuilder().setKey(mac).build());
    assertEquals(2, keys().macSign(MacSignRequest.newBuilder().setKey(mac).setData(data).build()).getVersion());
    assertTrue(keys().macVerify(MacVerifyRequest.newBuilder().setKey(mac).setVersion(1).setData(data)
        .setMac(m.getMac()).build()).getValid(), "old MACs verify after rotation");
  }

  @Test
  void generateRandom_lengthsAndBounds() {
    ByteString a = keys().generateRandom(GenerateRandomRequest.newBuilder().setLengthBytes(32).build()).getData();
    ByteString b = keys().generateRandom(GenerateRandomRequest.newBuilder().setLengthBytes(32).build()).getData();
    assertEquals(32, a.size());
    assertNotEquals(a, b);
    assertEquals(1024, keys().generateRandom(GenerateRandomRequest.newBuilder().setLengthBytes(1024).build())
        .getData().size());
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_LENGTH",
        () -> keys().generateRandom(GenerateRandomRequest.newBuilder().setLengthBytes(0).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_LENGTH",
        () -> keys().generateRandom(GenerateRandomRequest.newBuilder().setLengthBytes(1025).build()));
    assertStatus(Status.Code.UNIMPLEMENTED, "PROTECTION_LEVEL_UNAVAILABLE", () -> keys().generateRandom(
        GenerateRandomRequest.newBuilder().setLengthBytes(8).setProtectionLevel(ProtectionLevel.TPM).build()));
  }

  // ---- standard services ------------------------------------------------------------------------

  @Test
  void healthService_answersServing() {
    HealthCheckResponse r = HealthGrpc.newBlockingStub(client.channel).withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(HealthCheckRequest.newBuilder().build());
    assertEquals(HealthCheckResponse.ServingStatus.SERVING, r.getStatus());
  }

  @Test
  void reflectionService_listsKeyService() throws Exception {
    CompletableFuture<ServerReflectionResponse> answer = new CompletableFuture<>();
    StreamObserver<ServerReflectionRequest> req = ServerReflectionGrpc.newStub(client.channel)
        .serverReflectionInfo(new StreamObserver<>() {
          @Override public void onNext(ServerReflectionResponse v) { answer.complete(v); }
          @Override public void onError(Throwable t) { answer.completeExceptionally(t); }
          @Override public void onCompleted() {}
        });
    req.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
    ServerReflectionResponse r = answer.get(10, TimeUnit.SECONDS);
    req.onCompleted();
    assertTrue(r.getListServicesResponse().getServiceList().stream()
        .anyMatch(s -> s.getName().equals("tpmkms.key.v1.KeyService")), r.toString());
  }

  static void same(byte[] a, byte[] b) { assertArrayEquals(a, b); }
}
