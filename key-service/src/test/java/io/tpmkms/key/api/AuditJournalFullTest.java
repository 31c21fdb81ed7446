package io.tpmkms.key.api;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.tpmkms.testing.GrpcClient;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.key.v1.CreateKeyRequest;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import io.tpmkms.proto.key.v1.KeyPurpose;
import io.tpmkms.proto.key.v1.RotateKeyRequest;
import io.tpmkms.platform.audit.AuditJournal;
import java.nio.file.Path;
import java.util.Map;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;

/**
 * Fail closed on the journal's side: with no audit service taking the
 * journal's events and a small backlog bound, calls that change no state are
 * refused with UNAVAILABLE AUDIT_UNAVAILABLE once the bound is reached — no
 * ciphertext leaves without its record — while state changes, whose events go
 * to the outbox in their own transaction, go on.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
@TestProfile(AuditJournalFullTest.SmallBacklog.class)
class AuditJournalFullTest {
  public static class SmallBacklog implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
      return Map.of("tpmkms.audit.journal.max-backlog-bytes", "4096");
    }
  }

  @Test
  void fullBacklog_refusesUse_untilForwarded() throws Exception {
    try (GrpcClient client = new GrpcClient()) {
      client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("full").setName("k")
          .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
      EncryptRequest enc = EncryptRequest.newBuilder().setKey("full/k").setPlaintext(ByteString.copyFromUtf8("x")).build();
      int answered = 0;
      StatusRuntimeException refused = null;
      for (int i = 0; i < 1000 && refused == null; i++) {
        try {
          client.keys().encrypt(enc);
          answered++;
        } catch (StatusRuntimeException e) {
          refused = e;
        }
      }
      assertTrue(refused != null, "never refused after " + answered + " calls");
      int answeredBeforeRefusal = answered;
      assertStatus(Status.Code.UNAVAILABLE, "AUDIT_UNAVAILABLE", () -> client.keys().encrypt(enc));
      assertStatus(Status.Code.UNAVAILABLE, "AUDIT_UNAVAILABLE",
          () -> client.keys().getKey(GetKeyRequest.newBuilder().setKey("full/k").build()));

      Path dir = Path.of(ConfigProvider.getConfig().getValue("tpmkms.audit.journal.dir", String.class));
      long encrypts = AuditJournal.pending(dir).stream().map(AuditJournalFullTest::parse)
          .filter(e -> e.getOperation().endsWith("/Encrypt")).count();
      assertEquals(answeredBeforeRefusal, encrypts, "every answered Encrypt is journaled, no refused one is");
      assertTrue(answeredBeforeRefusal > 5, "the bound let " + answeredBeforeRefusal + " calls through");

      assertEquals(2, client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey("full/k").build())
          .getVersion().getVersion(), "state changes are audited in their transaction and go on");
    }
  }

  private static AuditEvent parse(byte[] p) {
    try {
      return AuditEvent.parseFrom(p);
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      throw new AssertionError(e);
    }
  }
}
