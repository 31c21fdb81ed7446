package io.tpmkms.kmsplugin;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.tpmkms.client.RetryPolicy;
import io.tpmkms.client.TokenSource;
import io.tpmkms.client.TpmkmsClient;
import io.tpmkms.kmsplugin.v2.DecryptRequest;
import io.tpmkms.kmsplugin.v2.EncryptRequest;
import io.tpmkms.kmsplugin.v2.EncryptResponse;
import io.tpmkms.kmsplugin.v2.KeyManagementServiceGrpc;
import io.tpmkms.kmsplugin.v2.StatusRequest;
import io.tpmkms.kmsplugin.v2.StatusResponse;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The plugin on a real UNIX socket, called through a stub generated from the KMS v2 contract (the
 * calls kube-apiserver makes), in front of a fake key service on a TCP port.
 */
class KmsPluginTest {
  static final String KEY = "k8s/etcd";
  static final RetryPolicy QUICK = new RetryPolicy(3, Duration.ofMillis(10), Duration.ofMillis(50), 2);

  @TempDir Path dir;
  FakeKeyService tpmkms;
  ManagedChannel toTpmkms;
  TpmkmsConnection connection;
  TpmkmsClient kms;
  KmsPluginServer plugin;
  ManagedChannel channel;
  KeyManagementServiceGrpc.KeyManagementServiceBlockingStub apiServer;

  @BeforeEach
  void start() throws Exception {
    tpmkms = new FakeKeyService(KEY, "other/key");
    toTpmkms = Grpc.newChannelBuilder(tpmkms.target(), InsecureChannelCredentials.create()).build();
    connection = TpmkmsConnection.over(toTpmkms, TokenSource.none(), Duration.ofSeconds(5), QUICK,
        Duration.ofSeconds(2));
    kms = connection.calls();
    plugin = KmsPluginServer.start(dir.resolve("kms.sock"), KEY, "cluster-a".getBytes(StandardCharsets.UTF_8),
        Duration.ofSeconds(2), connection);
    channel = Grpc.newChannelBuilder(plugin.target(), InsecureChannelCredentials.create()).build();
    apiServer = KeyManagementServiceGrpc.newBlockingStub(channel);
  }

  @AfterEach
  void stop() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    plugin.close();
    toTpmkms.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    tpmkms.close();
  }

  KeyManagementServiceGrpc.KeyManagementServiceBlockingStub api() {
    return apiServer.withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  static byte[] dek() {
    byte[] b = new byte[32];
    new SecureRandom().nextBytes(b);
    return b;
  }

  EncryptResponse encrypt(byte[] plaintext) {
    return api().encrypt(EncryptRequest.newBuilder().setPlaintext(ByteString.copyFrom(plaintext)).setUid("uid-1").build());
  }

  static DecryptRequest decryptRequest(EncryptResponse e) {
    return DecryptRequest.newBuilder().setCiphertext(e.getCiphertext()).setKeyId(e.getKeyId())
        .putAllAnnotations(e.getAnnotationsMap()).setUid("uid-2").build();
  }

  @Test
  void status_roundTripsThroughTpmkms_okWithTheCurrentKeyId() {
    StatusResponse s = api().status(StatusRequest.getDefaultInstance());
    assertEquals("v2", s.getVersion());
    assertEquals("ok", s.getHealthz());
    assertEquals("tpmkms:k8s/etcd:v1", s.getKeyId());
    assertEquals(java.util.List.of("Encrypt k8s/etcd", "Decrypt k8s/etcd"), tpmkms.log, "a real round trip");
    api().status(StatusRequest.getDefaultInstance());
    assertEquals(4, tpmkms.calls.get(), "every Status probes again, nothing cached");
  }

  @Test
  void encryptDecrypt_ofA32ByteDek_roundTrips_withKeyIdAndAnnotations() {
    byte[] dek = dek();
    EncryptResponse e = encrypt(dek);
    assertEquals("tpmkms:k8s/etcd:v1", e.getKeyId());
    assertEquals(Map.of("key.tpmkms.io", ByteString.copyFromUtf8(KEY), "key-version.tpmkms.io",
        ByteString.copyFromUtf8("1")), e.getAnnotationsMap());
    assertTrue(e.getCiphertext().size() <= 1024, "fits Kubernetes' 1 KiB: " + e.getCiphertext().size());
    assertFalse(e.getCiphertext().toStringUtf8().contains(new String(dek, StandardCharsets.ISO_8859_1)));
    assertArrayEquals(dek, api().decrypt(decryptRequest(e)).getPlaintext().toByteArray());
    // the annotations alone name the key version too (a key_id is what the API server sends)
    DecryptRequest annotationsOnly = decryptRequest(e).toBuilder().clearKeyId().build();
    assertArrayEquals(dek, api().decrypt(annotationsOnly).getPlaintext().toByteArray());
  }

  @Test
  void rotation_changesStatusKeyIdAndNewEncryptions_oldKeyIdStillDecrypts() {
    byte[] before = dek();
    EncryptResponse old = encrypt(before);
    assertEquals("tpmkms:k8s/etcd:v1", api().status(StatusRequest.getDefaultInstance()).getKeyId());

    assertEquals(2, tpmkms.rotate(KEY));

    StatusResponse s = api().status(StatusRequest.getDefaultInstance());
    assertEquals("ok", s.getHealthz());
    assertEquals("tpmkms:k8s/etcd:v2", s.getKeyId(), "the API server sees the rotation at its next Status");
    byte[] after = dek();
    EncryptResponse fresh = encrypt(after);
    assertEquals("tpmkms:k8s/etcd:v2", fresh.getKeyId());
    assertEquals(ByteString.copyFromUtf8("2"), fresh.getAnnotationsOrThrow("key-version.tpmkms.io"));
    assertArrayEquals(before, api().decrypt(decryptRequest(old)).getPlaintext().toByteArray(), "v1 data key");
    assertArrayEquals(after, api().decrypt(decryptRequest(fresh)).getPlaintext().toByteArray());
  }

  @Test
  void decrypt_keyIdOfAnotherKey_failedPrecondition_tpmkmsNotAsked() {
    EncryptResponse e = encrypt(dek());
    int calls = tpmkms.calls.get();
    DecryptRequest foreign = DecryptRequest.newBuilder().setCiphertext(e.getCiphertext())
        .setKeyId("tpmkms:other/key:v1").build();
    StatusRuntimeException x = assertThrows(StatusRuntimeException.class, () -> api().decrypt(foreign));
    assertEquals(Status.Code.FAILED_PRECONDITION, x.getStatus().getCode());
    assertTrue(x.getStatus().getDescription().contains("serves key k8s/etcd only"), x.getStatus().getDescription());
    assertEquals(calls, tpmkms.calls.get(), "nothing decrypted");
  }

  @Test
  void decrypt_malformedOrContradictoryKeyIds_invalidArgument_tpmkmsNotAsked() {
    tpmkms.rotate(KEY);
    EncryptResponse e = encrypt(dek()); // v2
    int calls = tpmkms.calls.get();
    Map<String, DecryptRequest> bad = Map.of(
        "not a tpmkms key_id", decryptRequest(e).toBuilder().setKeyId("aws:arn:key/1").build(),
        "key_id v1, ciphertext v2", decryptRequest(e).toBuilder().setKeyId("tpmkms:k8s/etcd:v1")
            .removeAnnotations("key-version.tpmkms.io").build(),
        "annotation contradicts", decryptRequest(e).toBuilder()
            .putAnnotations("key-version.tpmkms.io", ByteString.copyFromUtf8("1")).build(),
        "annotated key contradicts", decryptRequest(e).toBuilder()
            .putAnnotations("key.tpmkms.io", ByteString.copyFromUtf8("other/key")).build(),
        "no key_id, no annotations", DecryptRequest.newBuilder().setCiphertext(e.getCiphertext()).build(),
        "empty ciphertext", decryptRequest(e).toBuilder().clearCiphertext().build());
    bad.forEach((what, request) -> {
      StatusRuntimeException x = assertThrows(StatusRuntimeException.class, () -> api().decrypt(request), what);
      assertEquals(Status.Code.INVALID_ARGUMENT, x.getStatus().getCode(), what + ": " + x.getStatus());
    });
    assertEquals(calls, tpmkms.calls.get(), "tpmkms was not asked");
  }

  @Test
  void decrypt_tamperedCiphertext_refusedWithTpmkmsReason() {
    EncryptResponse e = encrypt(dek());
    byte[] ct = e.getCiphertext().toByteArray();
    ct[ct.length - 1] ^= 1;
    StatusRuntimeException x = assertThrows(StatusRuntimeException.class,
        () -> api().decrypt(decryptRequest(e).toBuilder().setCiphertext(ByteString.copyFrom(ct)).build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, x.getStatus().getCode());
    assertEquals("DECRYPTION_FAILED", reason(x));
  }

  @Test
  void encrypt_oversizedOrEmptyPlaintext_invalidArgument_tpmkmsNotAsked() {
    StatusRuntimeException big = assertThrows(StatusRuntimeException.class, () -> encrypt(new byte[513]));
    assertEquals(Status.Code.INVALID_ARGUMENT, big.getStatus().getCode());
    assertTrue(big.getStatus().getDescription().contains("at most 512"), big.getStatus().getDescription());
    StatusRuntimeException empty = assertThrows(StatusRuntimeException.class, () -> encrypt(new byte[0]));
    assertEquals(Status.Code.INVALID_ARGUMENT, empty.getStatus().getCode());
    assertEquals(0, tpmkms.calls.get());
    assertEquals(512, api().decrypt(decryptRequest(encrypt(new byte[512]))).getPlaintext().size(), "512 is fine");
  }

  @Test
  void socket_isMode0600_andRemovedAtStop() throws Exception {
    Path socket = dir.resolve("kms.sock");
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
    try (var entries = Files.list(dir)) {
      assertEquals(java.util.List.of(socket), entries.toList(), "no staging directory left behind");
    }
    plugin.close();
    assertFalse(Files.exists(socket), "removed at stop");
  }

  @Test
  void start_removesAStaleSocket_butNotALiveOneNorAnotherFile() throws Exception {
    Path stale = dir.resolve("stale.sock");
    ServerSocketChannel dead = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    dead.bind(UnixDomainSocketAddress.of(stale));
    dead.close(); // the file stays, nothing listens: a killed plugin's socket
    assertTrue(Files.exists(stale));
    try (KmsPluginServer second = KmsPluginServer.start(stale, KEY, kms)) {
      ManagedChannel ch = Grpc.newChannelBuilder(second.target(), InsecureChannelCredentials.create()).build();
      try {
        assertEquals("ok", KeyManagementServiceGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
            .status(StatusRequest.getDefaultInstance()).getHealthz());
      } finally {
        ch.shutdownNow();
      }
    }

    IllegalStateException live = assertThrows(IllegalStateException.class,
        () -> KmsPluginServer.start(plugin.socket(), KEY, kms));
    assertTrue(live.getMessage().contains("another process serves"), live.getMessage());
    assertEquals("ok", api().status(StatusRequest.getDefaultInstance()).getHealthz(), "the running plugin kept its socket");

    Path file = Files.writeString(dir.resolve("notes.txt"), "mine");
    assertThrows(IllegalStateException.class, () -> KmsPluginServer.start(file, KEY, kms));
    assertEquals("mine", Files.readString(file));
  }

  @Test
  void tpmkmsDown_statusNotOkWithinItsTimeout_encryptUnavailable_thenOkAgain() throws Exception {
    EncryptResponse e = encrypt(dek());
    tpmkms.stop();
    long t0 = System.nanoTime();
    StatusResponse s = api().status(StatusRequest.getDefaultInstance());
    long ms = (System.nanoTime() - t0) / 1_000_000;
    assertNotEquals("ok", s.getHealthz());
    assertTrue(s.getHealthz().contains("UNAVAILABLE"), s.getHealthz());
    assertEquals("tpmkms:k8s/etcd:v1", s.getKeyId(), "the last known key_id");
    assertTrue(ms < 4_000, "bounded by the status timeout: " + ms + " ms");

    StatusRuntimeException x = assertThrows(StatusRuntimeException.class, () -> encrypt(dek()));
    assertEquals(Status.Code.UNAVAILABLE, x.getStatus().getCode());
    assertTrue(x.getStatus().getDescription().contains("after 3 attempts"), x.getStatus().getDescription());

    tpmkms.restart();
    assertEquals("ok", api().status(StatusRequest.getDefaultInstance()).getHealthz());
    assertEquals(32, api().decrypt(decryptRequest(e)).getPlaintext().size());
  }

  @Test
  void tpmkmsHung_statusAnswersWithinItsTimeout() {
    tpmkms.delayMillis = 5_000;
    long t0 = System.nanoTime();
    StatusResponse s = api().status(StatusRequest.getDefaultInstance());
    long ms = (System.nanoTime() - t0) / 1_000_000;
    tpmkms.delayMillis = 0;
    assertTrue(s.getHealthz().contains("DEADLINE_EXCEEDED"), s.getHealthz());
    assertTrue(ms >= 1_900 && ms < 5_000, "the 2 s status timeout: " + ms + " ms");
  }

  @Test
  void permissionDenied_reachesTheApiServer_withTheReason_andStatusSaysSo() {
    tpmkms.failures.add(FakeKeyService.failure(Code.PERMISSION_DENIED, "PERMISSION_DENIED"));
    StatusRuntimeException x = assertThrows(StatusRuntimeException.class, () -> encrypt(dek()));
    assertEquals(Status.Code.PERMISSION_DENIED, x.getStatus().getCode());
    assertEquals("PERMISSION_DENIED", reason(x));
    assertTrue(x.getStatus().getDescription().startsWith("tpmkms Encrypt with key k8s/etcd: PERMISSION_DENIED"),
        x.getStatus().getDescription());
    assertEquals(1, tpmkms.calls.get(), "a refusal is not retried");

    tpmkms.failures.add(FakeKeyService.failure(Code.PERMISSION_DENIED, "PERMISSION_DENIED"));
    StatusResponse s = api().status(StatusRequest.getDefaultInstance());
    assertEquals("tpmkms probe of key k8s/etcd failed: PERMISSION_DENIED PERMISSION_DENIED", s.getHealthz());
  }

  @Test
  void aadIsBound_aPluginWithOtherAadCannotDecrypt() throws Exception {
    EncryptResponse e = encrypt(dek());
    try (KmsPluginServer other = KmsPluginServer.start(dir.resolve("other.sock"), KEY,
        "cluster-b".getBytes(StandardCharsets.UTF_8), Duration.ofSeconds(2), connection)) {
      ManagedChannel ch = Grpc.newChannelBuilder(other.target(), InsecureChannelCredentials.create()).build();
      try {
        StatusRuntimeException x = assertThrows(StatusRuntimeException.class, () -> KeyManagementServiceGrpc
            .newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS).decrypt(decryptRequest(e)));
        assertEquals("DECRYPTION_FAILED", reason(x));
      } finally {
        ch.shutdownNow();
      }
    }
  }

  static String reason(StatusRuntimeException e) throws RuntimeException {
    com.google.rpc.Status s = StatusProto.fromThrowable(e);
    try {
      for (var any : s.getDetailsList()) {
        if (any.is(ErrorInfo.class)) return any.unpack(ErrorInfo.class).getReason();
      }
    } catch (com.google.protobuf.InvalidProtocolBufferException x) {
      throw new IllegalStateException(x);
    }
    return "";
  }
}
