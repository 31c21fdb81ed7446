package io.tpmkms.key.lifecycle;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import io.agroal.api.AgroalDataSource;
import io.grpc.Status;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.key.v1.*;
// the API's types, not this package's namesakes
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.KeyVersionState;
import jakarta.inject.Inject;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The whole life of a key through the real gRPC server and PostgreSQL: create,
 * use, rotate, use old and new, disable, schedule destruction, restore,
 * destroy, revoke — checking state and behaviour after each step.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
class KeyLifecycleScenarioTest extends GrpcTest {
  @Inject AgroalDataSource db;

  @Test
  void encryptionKey_fullLifecycle() throws Exception {
    var keys = client.keys();
    String key = "scenario/orders";
    Key created = keys.createKey(CreateKeyRequest.newBuilder().setNamespace("scenario").setName("orders")
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).putLabels("team", "payments").build()).getKey();
    assertEquals(key, created.getName());
    assertEquals(1, created.getPrimaryVersion());
    assertEquals(Algorithm.AES_256_GCM, created.getAlgorithm());
    assertEquals(ProtectionLevel.SOFTWARE, created.getProtectionLevel());
    assertEquals(KeyVersionState.ENABLED, created.getPrimary().getState());

    // use
    ByteString aad = ByteString.copyFromUtf8("order-42");
    EncryptResponse ct1 = encrypt(key, "card 4111", aad);
    assertEquals(1, ct1.getVersion());
    assertEquals("card 4111", decrypt(key, ct1.getCiphertext(), aad));
    assertStatus(Status.Code.INVALID_ARGUMENT, "DECRYPTION_FAILED",
        () -> client.keys().decrypt(DecryptRequest.newBuilder().setKey(key).setCiphertext(ct1.getCiphertext())
            .setAdditionalAuthenticatedData(ByteString.copyFromUtf8("order-43")).build()));

    // rotate; use old and new
    RotateKeyResponse rotated = keys.rotateKey(RotateKeyRequest.newBuilder().setKey(key).build());
    assertEquals(2, rotated.getKey().getPrimaryVersion());
    assertEquals(2, rotated.getVersion().getVersion());
    EncryptResponse ct2 = encrypt(key, "card 5500", aad);
    assertEquals(2, ct2.getVersion());
    assertEquals("card 4111", decrypt(key, ct1.getCiphertext(), aad));
    assertEquals("card 5500", decrypt(key, ct2.getCiphertext(), aad));

    // disable the old version: its ciphertexts stop decrypting; the primary cannot be disabled
    assertEquals(KeyVersionState.DISABLED, keys.disableKeyVersion(
        DisableKeyVersionRequest.newBuilder().setKey(key).setVersion(1).build()).getVersion().getState());
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_VERSION_NOT_ENABLED",
        () -> client.keys().decrypt(DecryptRequest.newBuilder().setKey(key).setCiphertext(ct1.getCiphertext())
            .setAdditionalAuthenticatedData(aad).build()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "PRIMARY_VERSION_PROTECTED",
        () -> client.keys().disableKeyVersion(DisableKeyVersionRequest.newBuilder().setKey(key).setVersion(2).build()));

    // schedule destruction (default delay 24 h), restore, enable: usable again
    KeyVersion scheduled = keys.scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest.newBuilder()
        .setKey(key).setVersion(1).build()).getVersion();
    assertEquals(KeyVersionState.DESTROY_SCHEDULED, scheduled.getState());
    long inHours = (scheduled.getDestroyTime().getSeconds() - Instant.now().getEpochSecond()) / 3600;
    assertTrue(inHours >= 23 && inHours <= 24, "default delay is 24 h, got " + inHours + " h");
    assertStatus(Status.Code.FAILED_PRECONDITION, "PRIMARY_VERSION_PROTECTED",
        () -> client.keys().scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest.newBuilder()
            .setKey(key).setVersion(2).build()));
    assertEquals(KeyVersionState.DISABLED, keys.restoreKeyVersion(
        RestoreKeyVersionRequest.newBuilder().setKey(key).setVersion(1).build()).getVersion().getState());
    assertEquals(KeyVersionState.ENABLED, keys.enableKeyVersion(
        EnableKeyVersionRequest.newBuilder().setKey(key).setVersion(1).build()).getVersion().getState());
    assertEquals("card 4111", decrypt(key, ct1.getCiphertext(), aad));

    // destroy for real: the scheduler removes the material, the tombstone stays
    keys.scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest.newBuilder()
        .setKey(key).setVersion(1).setDelay(Duration.newBuilder().setSeconds(1)).build());
    KeyVersion destroyed = awaitState(key, 1, KeyVersionState.DESTROYED);
    assertTrue(destroyed.hasDestroyEventTime());
    assertNull(blobOf(key, 1), "destroyed version must have no key blob");
    assertNotNull(blobOf(key, 2));
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_VERSION_DESTROYED",
        () -> client.keys().decrypt(DecryptRequest.newBuilder().setKey(key).setCiphertext(ct1.getCiphertext())
            .setAdditionalAuthenticatedData(aad).build()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "ILLEGAL_STATE_TRANSITION",
        () -> client.keys().restoreKeyVersion(RestoreKeyVersionRequest.newBuilder().setKey(key).setVersion(1).build()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "ILLEGAL_STATE_TRANSITION",
        () -> client.keys().enableKeyVersion(EnableKeyVersionRequest.newBuilder().setKey(key).setVersion(1).build()));
    List<KeyVersion> visible = keys.listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key).build())
        .getVersionsList();
    assertEquals(List.of(2), visible.stream().map(KeyVersion::getVersion).toList());
    List<KeyVersion> all = keys.listKeyVersions(ListKeyVersionsRequest.newBuilder().setKey(key)
        .setIncludeDestroyed(true).build()).getVersionsList();
    assertEquals(List.of(1, 2), all.stream().map(KeyVersion::getVersion).toList());

    // revoke the primary: the key rotates first, the revoked version still decrypts but never encrypts
    RevokeKeyVersionResponse revoked = keys.revokeKeyVersion(
        RevokeKeyVersionRequest.newBuilder().setKey(key).setVersion(2).build());
    assertEquals(KeyVersionState.COMPROMISED, revoked.getVersion().getState());
    assertTrue(revoked.getVersion().hasCompromiseTime());
    assertEquals(3, revoked.getKey().getPrimaryVersion());
    assertEquals("card 5500", decrypt(key, ct2.getCiphertext(), aad));
    EncryptResponse ct3 = encrypt(key, "card 3782", aad);
    assertEquals(3, ct3.getVersion());
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_VERSION_COMPROMISED",
        () -> client.keys().setPrimaryVersion(SetPrimaryVersionRequest.newBuilder().setKey(key).setVersion(2).build()));
    assertStatus(Status.Code.FAILED_PRECONDITION, "ILLEGAL_STATE_TRANSITION",
        () -> client.keys().enableKeyVersion(EnableKeyVersionRequest.newBuilder().setKey(key).setVersion(2).build()));

    // a revoked version scheduled for destruction and restored stays COMPROMISED
    keys.scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest.newBuilder().setKey(key).setVersion(2)
        .setDelay(Duration.newBuilder().setSeconds(3600)).build());
    assertEquals(KeyVersionState.COMPROMISED, keys.restoreKeyVersion(
        RestoreKeyVersionRequest.newBuilder().setKey(key).setVersion(2).build()).getVersion().getState());

    // the key as a whole
    Key finalKey = keys.getKey(GetKeyRequest.newBuilder().setKey(key).build()).getKey();
    assertEquals(3, finalKey.getPrimaryVersion());
    assertEquals("payments", finalKey.getLabelsMap().get("team"));
  }

  @Test
  void signingKey_rotateAndRevoke_oldSignaturesStillVerify() {
    var keys = client.keys();
    String key = "scenario/release-signing";
    keys.createKey(CreateKeyRequest.newBuilder().setNamespace("scenario").setName("release-signing")
        .setPurpose(KeyPurpose.ASYMMETRIC_SIGN).setAlgorithm(Algorithm.EC_SIGN_P256_SHA256).build());
    ByteString msg = ByteString.copyFromUtf8("release 1.0");
    SignResponse s1 = keys.sign(SignRequest.newBuilder().setKey(key).setData(msg).build());
    keys.rotateKey(RotateKeyRequest.newBuilder().setKey(key).build());
    SignResponse s2 = keys.sign(SignRequest.newBuilder().setKey(key).setData(msg).build());
    assertEquals(1, s1.getVersion());
    assertEquals(2, s2.getVersion());
    assertTrue(verify(key, 1, msg, s1.getSignature()));
    assertTrue(verify(key, 2, msg, s2.getSignature()));
    assertFalse(verify(key, 2, msg, s1.getSignature()), "a v1 signature must not verify under v2");

    keys.revokeKeyVersion(RevokeKeyVersionRequest.newBuilder().setKey(key).setVersion(1).build());
    assertTrue(verify(key, 1, msg, s1.getSignature()), "revoked versions still verify");
    assertStatus(Status.Code.FAILED_PRECONDITION, "KEY_VERSION_COMPROMISED",
        () -> client.keys().sign(SignRequest.newBuilder().setKey(key).setVersion(1).setData(msg).build()));
    assertEquals(2, keys.sign(SignRequest.newBuilder().setKey(key).setData(msg).build()).getVersion());
  }

  private boolean verify(String key, int version, ByteString data, ByteString sig) {
    return client.keys().verify(VerifyRequest.newBuilder().setKey(key).setVersion(version).setData(data)
        .setSignature(sig).build()).getValid();
  }

  private EncryptResponse encrypt(String key, String text, ByteString aad) {
    return client.keys().encrypt(EncryptRequest.newBuilder().setKey(key)
        .setPlaintext(ByteString.copyFromUtf8(text)).setAdditionalAuthenticatedData(aad).build());
  }

  private String decrypt(String key, ByteString ct, ByteString aad) {
    return client.keys().decrypt(DecryptRequest.newBuilder().setKey(key).setCiphertext(ct)
        .setAdditionalAuthenticatedData(aad).build()).getPlaintext().toString(StandardCharsets.UTF_8);
  }

  private KeyVersion awaitState(String key, int version, KeyVersionState state) throws InterruptedException {
    long deadline = System.nanoTime() + 20_000_000_000L;
    KeyVersion v;
    do {
      v = client.keys().getKeyVersion(GetKeyVersionRequest.newBuilder().setKey(key).setVersion(version).build())
          .getVersion();
      if (v.getState() == state) return v;
      Thread.sleep(200);
    } while (System.nanoTime() < deadline);
    throw new AssertionError("version " + version + " of " + key + " never reached " + state + ", is " + v.getState());
  }

  private byte[] blobOf(String key, int version) throws Exception {
    String[] parts = key.split("/");
    try (Connection c = db.getConnection();
        PreparedStatement ps = c.prepareStatement("SELECT v.key_blob FROM kms_key_version v JOIN kms_key k"
            + " ON k.id = v.key_id WHERE k.namespace = ? AND k.name = ? AND v.number = ?")) {
      ps.setString(1, parts[0]);
      ps.setString(2, parts[1]);
      ps.setInt(3, version);
      try (ResultSet rs = ps.executeQuery()) {
        assertTrue(rs.next());
        return rs.getBytes(1);
      }
    }
  }
}
