package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.ByteString;
import com.google.rpc.ErrorInfo;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.tpmkms.client.TokenSource;
import io.tpmkms.client.TpmkmsClient;
import io.tpmkms.devtools.Keycloak;
import io.tpmkms.kmsplugin.KmsPlugin;
import io.tpmkms.kmsplugin.v2.DecryptRequest;
import io.tpmkms.kmsplugin.v2.EncryptRequest;
import io.tpmkms.kmsplugin.v2.EncryptResponse;
import io.tpmkms.kmsplugin.v2.KeyManagementServiceGrpc;
import io.tpmkms.kmsplugin.v2.StatusRequest;
import io.tpmkms.kmsplugin.v2.StatusResponse;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.proto.key.v1.RotateKeyRequest;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Kubernetes KMS v2 plugin (issue 21) against the packaged services over mutual TLS with a real
 * Keycloak. The plugin runs in-process from the flags a deployment gives it, on a UNIX socket, and
 * is called through a stub generated from the KMS v2 contract over that socket: the calls
 * kube-apiserver makes. Status's round trip and key_id, a data key's round trip, a rotation (new
 * key_id, old data keys still decrypt), a killed and restarted key service, and a plugin whose
 * service account may not encrypt.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class KmsPluginIT {
  static final String REALM = SharedKeycloak.REALM;
  static final String KEY = "k8s/secrets";
  static final String PLUGIN = "it-kms-plugin";
  static final String ADMIN = "it-kms-plugin-admin";
  static final String VIEWER = "it-kms-plugin-viewer";
  static final ObjectMapper JSON = new ObjectMapper();
  static final Duration STATUS_TIMEOUT = Duration.ofSeconds(5);

  @TempDir static Path dir;
  static Keycloak keycloak;
  static ThreeServices stack;
  static KmsPlugin.Running plugin;
  static ManagedChannel socket;
  static final List<AutoCloseable> closing = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    keycloak = SharedKeycloak.get();
    serviceAccount(PLUGIN, List.of("tpmkms-user"));
    serviceAccount(ADMIN, List.of("tpmkms-admin"));
    serviceAccount(VIEWER, List.of("tpmkms-viewer")); // may read key metadata, not encrypt
    stack = ThreeServices.start(dir, keycloak, REALM, Map.of(), Map.of(), Map.of("TPMKMS_AUTHZ_CACHE_TTL", "1s"));
    try (TpmkmsClient admin = client(ADMIN)) {
      admin.call(false, s -> s.createKey(CreateKeyRequest.newBuilder().setNamespace("k8s").setName("secrets")
          .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setProtectionLevel(ProtectionLevel.SOFTWARE).build()));
    }
    plugin = startPlugin(PLUGIN, dir.resolve("run/kms.sock"));
    socket = Grpc.newChannelBuilder("unix://" + dir.resolve("run/kms.sock"), InsecureChannelCredentials.create())
        .build();
  }

  @AfterAll
  static void stop() throws Exception {
    if (socket != null) socket.shutdownNow();
    for (AutoCloseable c : closing) c.close();
    if (plugin != null) plugin.close();
    if (stack != null) stack.close();
  }

  static String secret(String clientId) {
    return clientId + "-secret-0123456789";
  }

  /** A confidential client with a service account holding {@code roles}, its tokens for the key service. */
  static void serviceAccount(String clientId, List<String> roles) throws Exception {
    ObjectNode client = JSON.createObjectNode().put("clientId", clientId).put("enabled", true)
        .put("publicClient", false).put("clientAuthenticatorType", "client-secret").put("secret", secret(clientId))
        .put("serviceAccountsEnabled", true).put("standardFlowEnabled", false)
        .put("directAccessGrantsEnabled", false);
    ObjectNode m = client.putArray("protocolMappers").addObject().put("name", "audience key service")
        .put("protocol", "openid-connect").put("protocolMapper", "oidc-audience-mapper");
    m.putObject("config").put("included.client.audience", "tpmkms-key-service").put("access.token.claim", "true");
    String id = keycloak.createClient(REALM, client);
    var user = keycloak.adminGet("/realms/" + REALM + "/clients/" + id + "/service-account-user");
    var list = JSON.createArrayNode();
    for (String role : roles) list.add(keycloak.adminGet("/realms/" + REALM + "/roles/" + role));
    keycloak.adminPost("/realms/" + REALM + "/users/" + user.get("id").asText() + "/role-mappings/realm", list);
  }

  static TpmkmsClient client(String clientId) {
    return TpmkmsClient.builder().target("localhost:" + stack.keyPort).tls(SystemTls.client())
        .credentials(TokenSource.clientCredentials(URI.create(keycloak.issuer(REALM)), clientId, secret(clientId)))
        .deadline(Duration.ofSeconds(20)).build();
  }

  /** The plugin as a deployment runs it: these flags, the secret in a file. */
  static KmsPlugin.Running startPlugin(String clientId, Path socketPath) throws Exception {
    Path secretFile = dir.resolve(clientId + ".secret");
    Files.writeString(secretFile, secret(clientId) + "\n");
    Files.setPosixFilePermissions(secretFile, PosixFilePermissions.fromString("rw-------"));
    return KmsPlugin.settings("--socket", socketPath.toString(), "--target", "localhost:" + stack.keyPort,
        "--key", KEY,
        "--tls-ca-file", SystemTls.CA.toString(),
        "--tls-cert-file", SystemTls.DIR.resolve("system-test.crt").toString(),
        "--tls-key-file", SystemTls.DIR.resolve("system-test.key").toString(),
        "--oidc-issuer", keycloak.issuer(REALM), "--oidc-client-id", clientId,
        "--oidc-client-secret-file", secretFile.toString(),
        "--deadline", "10s", "--status-timeout", STATUS_TIMEOUT.toSeconds() + "s", "--aad", "it-cluster").start();
  }

  static KeyManagementServiceGrpc.KeyManagementServiceBlockingStub api() {
    return KeyManagementServiceGrpc.newBlockingStub(socket).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  static byte[] dek() {
    byte[] b = new byte[32];
    new SecureRandom().nextBytes(b);
    return b;
  }

  static EncryptResponse encrypt(KeyManagementServiceGrpc.KeyManagementServiceBlockingStub api, byte[] dek) {
    return api.encrypt(EncryptRequest.newBuilder().setPlaintext(ByteString.copyFrom(dek)).setUid("it").build());
  }

  static byte[] decrypt(EncryptResponse e) {
    return api().decrypt(DecryptRequest.newBuilder().setCiphertext(e.getCiphertext()).setKeyId(e.getKeyId())
        .putAllAnnotations(e.getAnnotationsMap()).setUid("it").build()).getPlaintext().toByteArray();
  }

  static EncryptResponse beforeRotation;
  static byte[] beforeRotationDek;

  @Test
  @Order(1)
  void status_roundTripsThroughTpmkms_okWithTheKeyId() throws Exception {
    assertEquals("rw-------", PosixFilePermissions.toString(
        Files.getPosixFilePermissions(dir.resolve("run/kms.sock"))));
    StatusResponse s = api().status(StatusRequest.getDefaultInstance());
    assertEquals("v2", s.getVersion());
    assertEquals("ok", s.getHealthz());
    assertEquals("tpmkms:k8s/secrets:v1", s.getKeyId());
  }

  @Test
  @Order(2)
  void encryptDecrypt_ofA32ByteDek_roundTrips() {
    beforeRotationDek = dek();
    beforeRotation = encrypt(api(), beforeRotationDek);
    assertEquals("tpmkms:k8s/secrets:v1", beforeRotation.getKeyId());
    assertEquals(ByteString.copyFromUtf8("1"), beforeRotation.getAnnotationsOrThrow("key-version.tpmkms.io"));
    assertEquals(ByteString.copyFromUtf8(KEY), beforeRotation.getAnnotationsOrThrow("key.tpmkms.io"));
    assertTrue(beforeRotation.getCiphertext().size() <= 1024, "size " + beforeRotation.getCiphertext().size());
    assertArrayEquals(beforeRotationDek, decrypt(beforeRotation));
    // a tpmkms ciphertext under the key, bound to the plugin's additional authenticated data
    try (TpmkmsClient direct = client(PLUGIN)) {
      assertArrayEquals(beforeRotationDek, direct.decrypt(KEY, beforeRotation.getCiphertext().toByteArray(),
          "it-cluster".getBytes(StandardCharsets.UTF_8)));
    }
  }

  @Test
  @Order(3)
  void rotation_changesTheKeyId_oldDataKeysStillDecrypt() {
    try (TpmkmsClient admin = client(ADMIN)) {
      admin.call(false, s -> s.rotateKey(RotateKeyRequest.newBuilder().setKey(KEY).build()));
    }
    StatusResponse s = api().status(StatusRequest.getDefaultInstance());
    assertEquals("ok", s.getHealthz());
    assertEquals("tpmkms:k8s/secrets:v2", s.getKeyId(), "the next Status shows the rotation");
    byte[] dek = dek();
    EncryptResponse after = encrypt(api(), dek);
    assertEquals("tpmkms:k8s/secrets:v2", after.getKeyId());
    assertArrayEquals(dek, decrypt(after));
    assertEquals("tpmkms:k8s/secrets:v1", beforeRotation.getKeyId());
    assertArrayEquals(beforeRotationDek, decrypt(beforeRotation), "a data key from before the rotation");
  }

  @Test
  @Order(4)
  void killedKeyService_statusNotOkWithinItsTimeout_okAgainAfterTheRestart() throws Exception {
    stack.key.kill9();
    long t0 = System.nanoTime();
    StatusResponse down = api().status(StatusRequest.getDefaultInstance());
    long ms = (System.nanoTime() - t0) / 1_000_000;
    assertNotEquals("ok", down.getHealthz());
    assertTrue(down.getHealthz().contains("UNAVAILABLE") || down.getHealthz().contains("DEADLINE_EXCEEDED"),
        down.getHealthz());
    assertTrue(ms < STATUS_TIMEOUT.toMillis() + 2_000, "bounded by the status timeout: " + ms + " ms");
    assertEquals("tpmkms:k8s/secrets:v2", down.getKeyId(), "the last known key_id");
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> encrypt(api(), dek()));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());

    stack.key.restart();
    // the API server asks every 10 s while unhealthy; the plugin reconnects at the first question
    t0 = System.nanoTime();
    StatusResponse up = api().status(StatusRequest.getDefaultInstance());
    ms = (System.nanoTime() - t0) / 1_000_000;
    assertEquals("ok", up.getHealthz(), "the first Status after the restart");
    assertEquals("tpmkms:k8s/secrets:v2", up.getKeyId());
    assertArrayEquals(beforeRotationDek, decrypt(beforeRotation));
    System.out.println("KmsPluginIT: Status down answered in the bound; first Status after the restart took "
        + ms + " ms");
  }

  @Test
  @Order(5)
  void aServiceAccountThatMayNotEncrypt_permissionDenied_andStatusSaysSo() throws Exception {
    Path viewerSocket = dir.resolve("run/viewer.sock");
    KmsPlugin.Running viewer = startPlugin(VIEWER, viewerSocket);
    closing.add(viewer);
    ManagedChannel ch = Grpc.newChannelBuilder("unix://" + viewerSocket, InsecureChannelCredentials.create()).build();
    closing.add(ch::shutdownNow);
    var api = KeyManagementServiceGrpc.newBlockingStub(ch).withDeadlineAfter(30, TimeUnit.SECONDS);

    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> encrypt(api, dek()));
    assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode(), e.getStatus().toString());
    assertTrue(e.getStatus().getDescription().startsWith("tpmkms Encrypt with key k8s/secrets: PERMISSION_DENIED"),
        e.getStatus().getDescription());
    assertEquals("PERMISSION_DENIED", reason(e));

    StatusResponse s = api.status(StatusRequest.getDefaultInstance());
    assertNotEquals("ok", s.getHealthz());
    assertTrue(s.getHealthz().contains("PERMISSION_DENIED"), s.getHealthz());
    assertEquals("", s.getKeyId(), "it never encrypted, so it knows no key_id");

    assertEquals("ok", api().status(StatusRequest.getDefaultInstance()).getHealthz(), "the allowed plugin still works");
  }

  static String reason(StatusRuntimeException e) throws Exception {
    for (var any : StatusProto.fromThrowable(e).getDetailsList()) {
      if (any.is(ErrorInfo.class)) return any.unpack(ErrorInfo.class).getReason();
    }
    return "";
  }
}
