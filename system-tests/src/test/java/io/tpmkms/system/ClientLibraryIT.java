package io.tpmkms.system;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.crypto.tink.Aead;
import com.google.crypto.tink.aead.AeadConfig;
import com.google.crypto.tink.aead.KmsEnvelopeAead;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import io.grpc.Status;
import io.tpmkms.client.EnvelopeEncryption;
import io.tpmkms.client.RetryPolicy;
import io.tpmkms.client.TokenSource;
import io.tpmkms.client.TpmkmsClient;
import io.tpmkms.client.TpmkmsException;
import io.tpmkms.client.tink.TpmkmsKmsClient;
import io.tpmkms.devtools.Keycloak;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.ProtectionLevel;
import io.tpmkms.proto.key.v1.RotateKeyRequest;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java client library (issue 21) against the packaged services over mutual TLS with a real
 * Keycloak: client-credentials tokens fetched and refreshed, Tink's envelope AEAD through a
 * tpmkms key across a rotation, the envelope helper, a token that expires mid-stream, and retries
 * over a killed and restarted key service (never of a change).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClientLibraryIT {
  static final String REALM = SharedKeycloak.REALM;
  static final String CLIENT_ID = "it-client-library";
  static final String SECRET = "it-client-library-secret-0123456789";
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;
  static Keycloak keycloak;
  static ThreeServices stack;

  @BeforeAll
  static void start() throws Exception {
    keycloak = SharedKeycloak.get();
    ObjectNode client = JSON.createObjectNode().put("clientId", CLIENT_ID).put("enabled", true)
        .put("publicClient", false).put("clientAuthenticatorType", "client-secret").put("secret", SECRET)
        .put("serviceAccountsEnabled", true).put("standardFlowEnabled", false)
        .put("directAccessGrantsEnabled", false);
    client.putObject("attributes").put("access.token.lifespan", "6"); // tokens expire during the tests
    var mappers = client.putArray("protocolMappers");
    ObjectNode m = mappers.addObject().put("name", "audience key service").put("protocol", "openid-connect")
        .put("protocolMapper", "oidc-audience-mapper");
    m.putObject("config").put("included.client.audience", "tpmkms-key-service").put("access.token.claim", "true");
    String id = keycloak.createClient(REALM, client);
    var user = keycloak.adminGet("/realms/" + REALM + "/clients/" + id + "/service-account-user");
    var roles = JSON.createArrayNode();
    for (String role : List.of("tpmkms-admin", "tpmkms-user")) {
      roles.add(keycloak.adminGet("/realms/" + REALM + "/roles/" + role));
    }
    keycloak.adminPost("/realms/" + REALM + "/users/" + user.get("id").asText() + "/role-mappings/realm", roles);
    stack = ThreeServices.start(dir, keycloak, REALM, Map.of(), Map.of(), Map.of("TPMKMS_AUTHZ_CACHE_TTL", "1s"));
    try (TpmkmsClient c = client(RetryPolicy.DEFAULT)) {
      for (String name : List.of("tink", "envelope", "load")) {
        c.call(false, s -> s.createKey(CreateKeyRequest.newBuilder().setNamespace("cl").setName(name)
            .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setProtectionLevel(ProtectionLevel.SOFTWARE).build()));
      }
    }
  }

  @AfterAll
  static void stop() throws Exception {
    if (stack != null) stack.close();
  }

  static TpmkmsClient client(RetryPolicy retries) {
    return client(TokenSource.clientCredentials(URI.create(keycloak.issuer(REALM)), CLIENT_ID, SECRET), retries);
  }

  static TpmkmsClient client(TokenSource tokens, RetryPolicy retries) {
    return TpmkmsClient.builder().target("localhost:" + stack.keyPort).tls(SystemTls.client()).credentials(tokens)
        .retries(retries).deadline(Duration.ofSeconds(20)).build();
  }

  static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  @Order(1)
  void tinksEnvelopeAead_throughATpmkmsKey_acrossARotation() throws Exception {
    AeadConfig.register();
    try (TpmkmsClient c = client(RetryPolicy.DEFAULT)) {
      Aead envelope = KmsEnvelopeAead.create(PredefinedAeadParameters.AES256_GCM,
          new TpmkmsKmsClient(c).getAead("tpmkms://cl/tink"));
      byte[] before = envelope.encrypt(b("written before the rotation"), b("row 7"));
      assertEquals(1, c.encryptResponse("cl/tink", b("x"), null).getVersion());
      c.call(false, s -> s.rotateKey(RotateKeyRequest.newBuilder().setKey("cl/tink").build()));
      assertEquals(2, c.encryptResponse("cl/tink", b("x"), null).getVersion(), "new data keys under v2");
      assertArrayEquals(b("written before the rotation"), envelope.decrypt(before, b("row 7")));
      byte[] after = envelope.encrypt(b("after"), b("row 8"));
      assertArrayEquals(b("after"), envelope.decrypt(after, b("row 8")));
      assertThrows(java.security.GeneralSecurityException.class, () -> envelope.decrypt(before, b("row 8")));
    }
  }

  @Test
  @Order(2)
  void envelopeHelper_oneServiceCallForManyMessages_andTypedRefusals() {
    try (TpmkmsClient c = client(RetryPolicy.DEFAULT)) {
      EnvelopeEncryption env = EnvelopeEncryption.of(c, "cl/envelope");
      byte[][] cts = new byte[200][];
      for (int i = 0; i < cts.length; i++) cts[i] = env.encrypt(b("record " + i), b("table t"));
      EnvelopeEncryption reader = EnvelopeEncryption.of(c, "cl/envelope");
      for (int i = 0; i < cts.length; i++) assertArrayEquals(b("record " + i), reader.decrypt(cts[i], b("table t")));
      assertEquals(1, env.serviceCalls());
      assertEquals(1, reader.serviceCalls());

      TpmkmsException e = assertThrows(TpmkmsException.class, () -> c.encrypt("cl/no-such-key", b("x"), null));
      assertEquals(Status.Code.NOT_FOUND, e.code());
      assertEquals("KEY_NOT_FOUND", e.reason());
      assertEquals(1, e.attempts(), "a refusal is not retried");
    }
  }

  /** A token source that keeps its token until told it was refused: the library's reactive path. */
  static final class UntilRefused implements TokenSource {
    final Set<String> used = ConcurrentHashMap.newKeySet();
    String token;

    @Override
    public synchronized String token() {
      if (token == null) {
        try {
          token = keycloak.clientCredentials(REALM, CLIENT_ID, SECRET).accessToken();
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      }
      used.add(token);
      return token;
    }

    @Override
    public synchronized void invalidate() {
      token = null;
    }
  }

  @Test
  @Order(3)
  void tokensExpiringMidStream_noCallFails() throws Exception {
    UntilRefused reactive = new UntilRefused();
    try (TpmkmsClient proactive = client(RetryPolicy.NONE); TpmkmsClient onRefusal = client(reactive,
        RetryPolicy.NONE)) {
      long end = System.nanoTime() + Duration.ofSeconds(14).toNanos();
      int calls = 0;
      while (System.nanoTime() < end) {
        byte[] ct = proactive.encrypt("cl/load", b("p" + calls), null);
        assertArrayEquals(b("p" + calls), onRefusal.decrypt("cl/load", ct, null));
        calls++;
        Thread.sleep(200);
      }
      assertTrue(calls > 30, "calls: " + calls);
    }
    // 6-second tokens over 14 s: the service refused the expired ones, and the library fetched new ones
    assertTrue(reactive.used.size() >= 2, "tokens used: " + reactive.used.size());
  }

  @Test
  @Order(4)
  void killedKeyService_callsSafeToRepeatSucceedAfterTheRestart_aChangeIsNotRepeated() throws Exception {
    RetryPolicy patient = new RetryPolicy(60, Duration.ofMillis(200), Duration.ofSeconds(2), 2);
    try (TpmkmsClient c = client(patient)) {
      byte[] ct = c.encrypt("cl/load", b("before the kill"), null);
      stack.key.kill9();
      TpmkmsException change = assertThrows(TpmkmsException.class,
          () -> c.call(false, s -> s.rotateKey(RotateKeyRequest.newBuilder().setKey("cl/load").build())));
      assertEquals(Status.Code.UNAVAILABLE, change.code());
      assertEquals(1, change.attempts(), "a change is sent once");
      Thread restarter = new Thread(() -> {
        try {
          Thread.sleep(1_000);
          stack.key.restart();
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      });
      restarter.start();
      long t0 = System.nanoTime();
      assertArrayEquals(b("before the kill"), c.decrypt("cl/load", ct, null), "retried until the service was back");
      long waited = (System.nanoTime() - t0) / 1_000_000;
      restarter.join();
      assertTrue(waited > 1_000, "the call waited for the restart: " + waited + " ms");
      assertEquals(1, c.encryptResponse("cl/load", b("x"), null).getVersion(), "the refused rotation did not happen");
    }
  }
}
