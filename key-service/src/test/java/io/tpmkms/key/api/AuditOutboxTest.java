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

  /**
   * Batches (issue 21): each item answered on its own with the error the single call gives, one
   * journal event per item (operation the batch's, key and version the item's, "item i of n"), no
   * event of the batch itself, no plaintext anywhere; a malformed batch is refused as one call.
   */
  @Test
  void batch_eachItemAnsweredOnItsOwn_oneEventPerItem_noPlaintext() throws Exception {
    String secret = "a batch plaintext that must never be audited";
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("auditb").setName("aes")
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("auditb").setName("mac")
        .setPurpose(KeyPurpose.MAC).build());
    EncryptRequest good = EncryptRequest.newBuilder().setKey("auditb/aes").setPlaintext(ByteString.copyFromUtf8(secret))
        .build();
    EncryptRequest withAad = good.toBuilder().setAdditionalAuthenticatedData(ByteString.copyFromUtf8("ctx")).build();
    EncryptRequest missing = good.toBuilder().setKey("auditb/missing").build();
    EncryptRequest wrongPurpose = good.toBuilder().setKey("auditb/mac").build();
    BatchEncryptResponse enc = client.keys().batchEncrypt(BatchEncryptRequest.newBuilder()
        .addItems(good).addItems(missing).addItems(withAad).addItems(wrongPurpose).build());
    assertEquals(4, enc.getResultsCount());
    assertTrue(enc.getResults(0).hasResponse() && enc.getResults(2).hasResponse(), enc.toString());
    assertEquals(1, enc.getResults(0).getResponse().getVersion());
    assertItemFailedAsTheSingleCall(enc.getResults(1).getError(), () -> client.keys().encrypt(missing));
    assertItemFailedAsTheSingleCall(enc.getResults(3).getError(), () -> client.keys().encrypt(wrongPurpose));

    ByteString ct0 = enc.getResults(0).getResponse().getCiphertext();
    ByteString ct2 = enc.getResults(2).getResponse().getCiphertext();
    DecryptRequest tampered = DecryptRequest.newBuilder().setKey("auditb/aes")
        .setCiphertext(ct0.substring(0, ct0.size() - 1).concat(ByteString.copyFrom(new byte[] {(byte) (ct0.byteAt(ct0.size() - 1) ^ 1)})))
        .build();
    BatchDecryptResponse dec = client.keys().batchDecrypt(BatchDecryptRequest.newBuilder()
        .addItems(DecryptRequest.newBuilder().setKey("auditb/aes").setCiphertext(ct0))
        .addItems(DecryptRequest.newBuilder().setKey("auditb/aes").setCiphertext(ct2)
            .setAdditionalAuthenticatedData(ByteString.copyFromUtf8("ctx")))
        .addItems(tampered).build());
    assertEquals(secret, dec.getResults(0).getResponse().getPlaintext().toStringUtf8());
    assertEquals(secret, dec.getResults(1).getResponse().getPlaintext().toStringUtf8());
    assertItemFailedAsTheSingleCall(dec.getResults(2).getError(), () -> client.keys().decrypt(tampered));

    MacSignRequest mac = MacSignRequest.newBuilder().setKey("auditb/mac").setData(ByteString.copyFromUtf8(secret)).build();
    BatchMacSignResponse macs = client.keys().batchMacSign(BatchMacSignRequest.newBuilder().addItems(mac).build());
    assertEquals(client.keys().macSign(mac).getMac(), macs.getResults(0).getResponse().getMac(),
        "the item's MAC is the single call's");

    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST",
        () -> client.keys().batchEncrypt(BatchEncryptRequest.getDefaultInstance()));
    BatchEncryptRequest.Builder tooMany = BatchEncryptRequest.newBuilder();
    for (int i = 0; i <= KeyRpcs.MAX_BATCH_ITEMS; i++) tooMany.addItems(EncryptRequest.newBuilder().setKey("auditb/aes"));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> client.keys().batchEncrypt(tooMany.build()));

    List<AuditEvent> events = events("auditb/");
    List<String> batch = events.stream().filter(e -> e.getOperation().contains("/Batch"))
        .map(e -> e.getOperation().replace("tpmkms.key.v1.KeyService/", "") + ":" + e.getKey() + ":"
            + e.getKeyVersion() + ":" + e.getOutcome() + ":" + e.getDetails()).toList();
    assertEquals(List.of(
        "BatchEncrypt:auditb/aes:1:OK:item 1 of 4", "BatchEncrypt:auditb/missing:0:NOT_FOUND:item 2 of 4",
        "BatchEncrypt:auditb/aes:1:OK:item 3 of 4", "BatchEncrypt:auditb/mac:0:" + Status.fromCodeValue(
            enc.getResults(3).getError().getCode()).getCode().name() + ":item 4 of 4",
        "BatchDecrypt:auditb/aes:1:OK:item 1 of 3", "BatchDecrypt:auditb/aes:1:OK:item 2 of 3",
        "BatchDecrypt:auditb/aes:0:" + Status.fromCodeValue(dec.getResults(2).getError().getCode()).getCode().name()
            + ":item 3 of 3",
        "BatchMacSign:auditb/mac:1:OK:item 1 of 1"), batch, "in the order of the items");
    for (byte[] payload : payloads("auditb/")) {
      assertFalse(new String(payload, StandardCharsets.ISO_8859_1).contains(secret), "no plaintext audited");
    }
  }

  private static void assertItemFailedAsTheSingleCall(com.google.rpc.Status item,
      org.junit.jupiter.api.function.Executable single) throws Exception {
    io.grpc.StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(
        io.grpc.StatusRuntimeException.class, single);
    assertEquals(e.getStatus().getCode().value(), item.getCode(), item.toString());
    com.google.rpc.Status whole = io.grpc.protobuf.StatusProto.fromThrowable(e);
    assertEquals(reasonOf(whole), reasonOf(item), "the item's ErrorInfo reason is the single call's");
    assertFalse(reasonOf(item).isEmpty());
  }

  private static String reasonOf(com.google.rpc.Status s) throws Exception {
    for (var any : s.getDetailsList()) {
      if (any.is(com.google.rpc.ErrorInfo.class)) return any.unpack(com.google.rpc.ErrorInfo.class).getReason();
    }
    return "";
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
