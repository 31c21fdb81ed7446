package io.tpmkms.key.api;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.agroal.api.AgroalDataSource;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.MetadataUtils;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.platform.audit.AuditJournal;
import org.eclipse.microprofile.config.ConfigProvider;
import io.tpmkms.proto.key.v1.*;
import jakarta.inject.Inject;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.Statement;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Every call leaves exactly one audit event before it answers — state changes
 * in the outbox table (same transaction), everything else in the journal —
 * successes, failures, reads and state changes alike, and a call whose event
 * cannot be made durable is refused and changes nothing (fail closed).
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
class AuditOutboxTest extends GrpcTest {
  @Inject AgroalDataSource db;

  @Test
  void everyCall_leavesOneEvent_withoutSecrets() throws Exception {
    String secret = "the plaintext must never be audited";
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("audit").setName("k1")
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
    Metadata h = new Metadata();
    h.put(Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER), "req-42");
    var stub = client.keys().withInterceptors(MetadataUtils.newAttachHeadersInterceptor(h));
    EncryptResponse ct = stub.encrypt(EncryptRequest.newBuilder().setKey("audit/k1")
        .setPlaintext(ByteString.copyFromUtf8(secret)).build());
    client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey("audit/k1").build());
    assertStatus(Status.Code.NOT_FOUND, "KEY_NOT_FOUND",
        () -> client.keys().encrypt(EncryptRequest.newBuilder().setKey("audit/missing").build()));

    List<AuditEvent> events = events("audit/");
    List<String> ops = events.stream().map(e -> e.getOperation().replace("tpmkms.key.v1.KeyService/", "")
        + ":" + e.getKey() + ":" + e.getKeyVersion() + ":" + e.getOutcome() + ":" + e.getOutcomeReason()).toList();
    assertEquals(List.of("CreateKey:audit/k1:1:OK:", "Encrypt:audit/k1:1:OK:", "RotateKey:audit/k1:2:OK:",
        "Encrypt:audit/missing:0:NOT_FOUND:KEY_NOT_FOUND"), ops);
    AuditEvent enc = events.get(1);
    assertEquals("req-42", enc.getRequestId());
    assertEquals(32, enc.getRequestDigest().size());
    assertEquals("anonymous", enc.getPrincipal());
    assertFalse(enc.getClient().isEmpty());
    assertEquals(4, events.stream().map(AuditEvent::getEventId).distinct().count(), "one event id per call");
    for (byte[] payload : payloads("audit/")) {
      assertFalse(new String(payload, StandardCharsets.ISO_8859_1).contains(secret), "no plaintext audited");
    }
    assertEquals(List.of("CreateKey", "RotateKey"), outboxOnly("audit/"), "state changes: in their transaction");
    assertTrue(ct.getVersion() > 0);
  }

  /** The journal's side of fail closed is in AuditJournalFullTest. */
  @Test
  void eventCannotBeWritten_callRefused_andNothingChanges() throws Exception {
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("auditfc").setName("closed")
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
    sql("ALTER TABLE audit_outbox RENAME TO audit_outbox_away");
    try {
      assertStatus(Status.Code.UNAVAILABLE, "AUDIT_UNAVAILABLE",
          () -> client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey("auditfc/closed").build()));
      assertStatus(Status.Code.UNAVAILABLE, "AUDIT_UNAVAILABLE", () -> client.keys().createKey(
          CreateKeyRequest.newBuilder().setNamespace("auditfc").setName("never").setPurpose(KeyPurpose.MAC).build()));
    } finally {
      sql("ALTER TABLE audit_outbox_away RENAME TO audit_outbox");
    }
    assertEquals(1, client.keys().getKey(GetKeyRequest.newBuilder().setKey("auditfc/closed").build()).getKey()
        .getPrimaryVersion(), "the refused rotation changed nothing");
    assertStatus(Status.Code.NOT_FOUND, "KEY_NOT_FOUND",
        () -> client.keys().getKey(GetKeyRequest.newBuilder().setKey("auditfc/never").build()));
    assertEquals(2, client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey("auditfc/closed").build())
        .getVersion().getVersion(), "and works again once the outbox is back");
  }

  @Test
  void hostileKeyName_isRecordedClipped_soTheAuditServiceAcceptsIt() throws Exception {
    String hostile = "auditx/" + "\u0001bad\n".repeat(300);
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_KEY_NAME",
        () -> client.keys().getKey(GetKeyRequest.newBuilder().setKey(hostile).build()));
    List<AuditEvent> events = events("auditx/");
    assertEquals(1, events.size());
    String recorded = events.get(0).getKey();
    assertEquals(256, recorded.length());
    assertFalse(recorded.contains("\u0001") || recorded.contains("\n"), recorded);
  }

  /** The events of keys starting with the prefix, from the outbox and the journal, in time order. */
  private List<AuditEvent> events(String keyPrefix) throws Exception {
    List<AuditEvent> out = new ArrayList<>();
    for (byte[] p : payloads(keyPrefix)) out.add(AuditEvent.parseFrom(p));
    out.sort(Comparator.comparingLong((AuditEvent e) -> e.getTime().getSeconds())
        .thenComparingInt(e -> e.getTime().getNanos()));
    return out;
  }

  private List<byte[]> payloads(String keyPrefix) throws Exception {
    List<byte[]> out = new ArrayList<>(outbox(keyPrefix));
    for (byte[] p : AuditJournal.pending(journalDir())) {
      if (AuditEvent.parseFrom(p).getKey().startsWith(keyPrefix)) out.add(p);
    }
    return out;
  }

  private List<String> outboxOnly(String keyPrefix) throws Exception {
    List<String> ops = new ArrayList<>();
    for (byte[] p : outbox(keyPrefix)) ops.add(AuditEvent.parseFrom(p).getOperation().replaceAll(".*/", ""));
    return ops;
  }

  private List<byte[]> outbox(String keyPrefix) throws Exception {
    List<byte[]> out = new ArrayList<>();
    try (Connection c = db.getConnection(); Statement st = c.createStatement();
        var rs = st.executeQuery("SELECT payload FROM audit_outbox ORDER BY id")) {
      while (rs.next()) {
        byte[] p = rs.getBytes(1);
        if (AuditEvent.parseFrom(p).getKey().startsWith(keyPrefix)) {
          out.add(p);
        }
      }
    }
    return out;
  }

  private Path journalDir() {
    return Path.of(ConfigProvider.getConfig().getValue("tpmkms.audit.journal.dir", String.class));
  }

  private void sql(String s) throws Exception {
    try (Connection c = db.getConnection(); Statement st = c.createStatement()) {
      st.execute(s);
    }
  }
}
