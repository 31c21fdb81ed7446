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
  /** The client's service-account user id: its tokens' subject, the policy's principal. */
  static String serviceAccount;
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
    for (String audience : List.of("tpmkms-key-service", "tpmkms-policy-service", "tpmkms-audit-service")) {
      ObjectNode m = mappers.addObject().put("name", "audience " + audience).put("protocol", "openid-connect")
          .put("protocolMapper", "oidc-audience-mapper");
      m.putObject("config").put("included.client.audience", audience).put("access.token.claim", "true");
    }
    String id = keycloak.createClient(REALM, client);
    var user = keycloak.adminGet("/realms/" + REALM + "/clients/" + id + "/service-account-user");
    var roles = JSON.createArrayNode();
    serviceAccount = user.get("id").asText();
    for (String role : List.of("tpmkms-admin", "tpmkms-user", "tpmkms-auditor")) {
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

  /**
   * Batches through the real stack: each item answered on its own (a key a policy forbids is
   * PERMISSION_DENIED, a missing key NOT_FOUND, a tampered ciphertext DECRYPTION_FAILED, the rest
   * succeed), and the audit service's trail holds exactly one record per item with its own key,
   * outcome and decision.
   */
  @Test
  @Order(5)
  void batches_perItemResults_andOneAuditRecordPerItem() throws Exception {
    TokenSource tokens = TokenSource.clientCredentials(URI.create(keycloak.issuer(REALM)), CLIENT_ID, SECRET);
    io.grpc.ManagedChannel policyChannel = SystemTls.channel(stack.policyPort);
    io.grpc.ManagedChannel auditChannel = SystemTls.channel(stack.auditPort);
    try (TpmkmsClient c = client(tokens, RetryPolicy.DEFAULT)) {
      var policies = io.tpmkms.proto.policy.v1.PolicyServiceGrpc.newBlockingStub(policyChannel)
          .withCallCredentials(bearer(tokens));
      var forbid = policies.createPolicy(io.tpmkms.proto.policy.v1.CreatePolicyRequest.newBuilder()
          .setId("it-batch-forbid").setDescription("no use of namespace cldeny by the client library")
          .setText("forbid(principal == Tpmkms::User::\"" + serviceAccount + "\", action, "
              + "resource in Tpmkms::Namespace::\"cldeny\");").build());
      String batchText = "batch item " + System.nanoTime();
      List<io.tpmkms.proto.key.v1.EncryptRequest> items = new java.util.ArrayList<>();
      for (int i = 0; i < 40; i++) {
        String key = i == 7 ? "cldeny/any" : i == 11 ? "cl/no-such-key" : i % 2 == 0 ? "cl/load" : "cl/envelope";
        items.add(io.tpmkms.proto.key.v1.EncryptRequest.newBuilder().setKey(key)
            .setPlaintext(com.google.protobuf.ByteString.copyFrom(b(batchText + " " + i))).build());
      }
      long t0 = System.nanoTime();
      List<TpmkmsClient.BatchResult<io.tpmkms.proto.key.v1.EncryptResponse>> enc = c.encryptBatch(items);
      while (enc.get(7).ok() || !"PERMISSION_DENIED".equals(enc.get(7).error().reason())) {
        // the policy applies within the decision cache TTL (1 s here) plus the policy service's reload
        assertTrue(System.nanoTime() - t0 < 10_000_000_000L, "the forbid policy never applied: " + enc.get(7));
        Thread.sleep(200);
        enc = c.encryptBatch(items);
      }
      assertEquals(40, enc.size());
      assertEquals("KEY_NOT_FOUND", enc.get(11).error().reason());
      assertEquals(38, enc.stream().filter(TpmkmsClient.BatchResult::ok).count());

      List<io.tpmkms.proto.key.v1.DecryptRequest> back = new java.util.ArrayList<>();
      for (int i = 0; i < 40; i++) {
        if (!enc.get(i).ok()) continue;
        var ct = enc.get(i).response().getCiphertext();
        if (i == 20) ct = ct.substring(0, ct.size() - 1).concat(com.google.protobuf.ByteString.copyFrom(
            new byte[] {(byte) (ct.byteAt(ct.size() - 1) ^ 1)}));
        back.add(io.tpmkms.proto.key.v1.DecryptRequest.newBuilder().setKey(items.get(i).getKey()).setCiphertext(ct)
            .build());
      }
      var dec = c.decryptBatch(back);
      int tampered = 0;
      for (int j = 0; j < back.size(); j++) {
        if (!dec.get(j).ok()) {
          tampered++;
          assertEquals("DECRYPTION_FAILED", dec.get(j).error().reason());
          continue;
        }
        assertTrue(dec.get(j).response().getPlaintext().toStringUtf8().startsWith(batchText), "item " + j);
      }
      assertEquals(1, tampered, "only the tampered item failed");

      // the audit trail: one record per item of the last BatchEncrypt and of the BatchDecrypt, in the audit service
      var audit = io.tpmkms.proto.audit.v1.AuditServiceGrpc.newBlockingStub(auditChannel)
          .withCallCredentials(bearer(tokens));
      long deadline = System.nanoTime() + 30_000_000_000L;
      List<io.tpmkms.proto.audit.v1.AuditRecord> decrypts;
      while (true) {
        decrypts = records(audit, "tpmkms.key.v1.KeyService/BatchDecrypt");
        if (decrypts.size() >= back.size() || System.nanoTime() > deadline) break;
        Thread.sleep(300);
      }
      assertEquals(back.size(), decrypts.size(), "one BatchDecrypt record per item");
      assertEquals(1, decrypts.stream().filter(r -> r.getEvent().getOutcome().equals("INVALID_ARGUMENT")).count());
      assertEquals(back.size(), decrypts.stream().map(r -> r.getEvent().getDetails()).distinct().count(),
          "item i of n, each once");
      List<io.tpmkms.proto.audit.v1.AuditRecord> encrypts = records(audit, "tpmkms.key.v1.KeyService/BatchEncrypt");
      assertEquals(0, encrypts.size() % 40, "whole batches of 40 records: " + encrypts.size());
      var denied = encrypts.stream().filter(r -> r.getEvent().getKey().equals("cldeny/any")).toList();
      assertTrue(denied.stream().anyMatch(r -> r.getEvent().getOutcome().equals("PERMISSION_DENIED")
          && r.getEvent().getDecision() == io.tpmkms.proto.audit.v1.Decision.DENY
          && r.getEvent().getDetails().equals("item 8 of 40")), denied.toString());
      assertTrue(encrypts.stream().filter(r -> r.getEvent().getKey().equals("cl/load"))
          .allMatch(r -> r.getEvent().getOutcome().equals("OK") && r.getEvent().getKeyVersion() == 1));
      policies.deletePolicy(io.tpmkms.proto.policy.v1.DeletePolicyRequest.newBuilder().setId("it-batch-forbid")
          .setExpectedVersion(forbid.getVersion()).build());
    } finally {
      policyChannel.shutdownNow();
      auditChannel.shutdownNow();
    }
  }

  static List<io.tpmkms.proto.audit.v1.AuditRecord> records(
      io.tpmkms.proto.audit.v1.AuditServiceGrpc.AuditServiceBlockingStub audit, String operation) {
    List<io.tpmkms.proto.audit.v1.AuditRecord> out = new java.util.ArrayList<>();
    String token = "";
    do {
      var page = audit.queryRecords(io.tpmkms.proto.audit.v1.QueryRecordsRequest.newBuilder().setOperation(operation)
          .setPageSize(1000).setPageToken(token).build());
      out.addAll(page.getRecordsList());
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return out;
  }

  static io.grpc.CallCredentials bearer(TokenSource tokens) {
    return new io.grpc.CallCredentials() {
      @Override
      public void applyRequestMetadata(RequestInfo info, java.util.concurrent.Executor executor,
          MetadataApplier applier) {
        io.grpc.Metadata m = new io.grpc.Metadata();
        m.put(io.grpc.Metadata.Key.of("authorization", io.grpc.Metadata.ASCII_STRING_MARSHALLER),
            "Bearer " + tokens.token());
        applier.apply(m);
      }
    };
  }
}
