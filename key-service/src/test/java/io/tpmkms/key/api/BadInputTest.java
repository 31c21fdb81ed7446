package io.tpmkms.key.api;

import static io.tpmkms.testing.GrpcClient.assertStatus;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.CodedOutputStream;
import io.grpc.CallOptions;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.stub.ClientCalls;
import io.quarkus.test.common.WithTestResource;
import io.quarkus.test.junit.QuarkusTest;
import io.tpmkms.testing.GrpcTest;
import io.tpmkms.testing.PostgresResource;
import io.tpmkms.proto.key.v1.*;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Malformed requests through the real server (issue 11): NUL and invalid
 * UTF-8 in strings, unparseable bytes. Each is INVALID_ARGUMENT with a
 * stable reason, never INTERNAL or UNKNOWN, and changes nothing.
 */
@QuarkusTest
@WithTestResource(PostgresResource.class)
class BadInputTest extends GrpcTest {

  @Test
  void listKeys_nulInPageToken_invalidString() {
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_CHARACTER", () -> client.keys().listKeys(
        ListKeysRequest.newBuilder().setPageToken("YWJj\0ZGVm").build()));
  }

  @Test
  void createKey_nulInLabelValueOrName_invalidString_andNothingCreated() {
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_CHARACTER", () -> client.keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("nul").setName("k1").setPurpose(KeyPurpose.MAC)
            .putLabels("team", "a\0b").build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_CHARACTER", () -> client.keys().createKey(
        CreateKeyRequest.newBuilder().setNamespace("nul").setName("k1\0").setPurpose(KeyPurpose.MAC).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_CHARACTER", () -> client.keys().updateKey(
        UpdateKeyRequest.newBuilder().setKey("nul/k1").addUpdateMask("labels").addUpdateMask("la\0bels").build()));
    assertEquals(0, client.keys().listKeys(ListKeysRequest.newBuilder().setNamespace("nul").build()).getKeysCount());
  }

  @Test
  void listKeys_invalidUtf8InNamespace_invalidString() throws IOException {
    // field 1 (namespace), length-delimited, bytes that are not UTF-8
    byte[] bad = message(out -> out.writeByteArray(1, new byte[] {'a', (byte) 0xff, (byte) 0xfe}));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_CHARACTER", () -> raw(KeyServiceGrpc.getListKeysMethod(), bad));
  }

  @Test
  void anyRpc_garbageBytes_invalidRequest() {
    byte[] garbage = {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x07, 0x01};
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> raw(KeyServiceGrpc.getEncryptMethod(), garbage));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST",
        () -> raw(KeyServiceGrpc.getCreateKeyMethod(), new byte[] {0x0a, 0x7f, 'x'}));
  }

  @Test
  void listKeys_filtersByPurposeProtectionPrimaryStateAndName_pagedWithinTheFilter() {
    String ns = "filters";
    for (int i = 0; i < 4; i++) {
      client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace(ns).setName("mac-" + i)
          .setPurpose(KeyPurpose.MAC).build());
      client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace(ns).setName("enc-" + i)
          .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).build());
    }
    // no version yet, so no primary: not ENABLED (a primary is always enabled: it cannot be disabled or destroyed)
    client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace(ns).setName("enc-import")
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setImportOnly(true).build());
    java.util.function.Function<ListKeysRequest.Builder, java.util.List<String>> all = q -> {
      java.util.List<String> names = new java.util.ArrayList<>();
      String token = "";
      do {
        var r = client.keys().listKeys(q.setNamespace(ns).setPageSize(3).setPageToken(token).build());
        r.getKeysList().forEach(k -> names.add(k.getName()));
        token = r.getNextPageToken();
      } while (!token.isEmpty());
      return names;
    };
    assertEquals(java.util.List.of(ns + "/mac-0", ns + "/mac-1", ns + "/mac-2", ns + "/mac-3"),
        all.apply(ListKeysRequest.newBuilder().setPurpose(KeyPurpose.MAC)));
    assertEquals(java.util.List.of(),
        all.apply(ListKeysRequest.newBuilder().setPrimaryState(KeyVersionState.DISABLED)));
    assertEquals(java.util.List.of(ns + "/enc-1", ns + "/mac-1"),
        all.apply(ListKeysRequest.newBuilder().setNameContains("-1")));
    assertEquals(java.util.List.of(ns + "/enc-0", ns + "/enc-1", ns + "/enc-2", ns + "/enc-3"),
        all.apply(ListKeysRequest.newBuilder().setPurpose(KeyPurpose.ENCRYPT_DECRYPT)
            .setPrimaryState(KeyVersionState.ENABLED)));
    assertEquals(5, all.apply(ListKeysRequest.newBuilder().setPurpose(KeyPurpose.ENCRYPT_DECRYPT)).size());
    assertEquals(java.util.List.of(), all.apply(ListKeysRequest.newBuilder().setProtectionLevel(ProtectionLevel.TPM)));
    assertEquals(java.util.List.of(), all.apply(ListKeysRequest.newBuilder().setNameContains("%")),
        "a LIKE wildcard is a plain character");
    // keys with a version in a state (not the primary): destructions due
    assertEquals(java.util.List.of(), all.apply(ListKeysRequest.newBuilder()
        .setAnyVersionState(KeyVersionState.DESTROY_SCHEDULED)));
    client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey(ns + "/enc-2").build());
    client.keys().scheduleKeyVersionDestruction(ScheduleKeyVersionDestructionRequest.newBuilder()
        .setKey(ns + "/enc-2").setVersion(1).build());
    assertEquals(java.util.List.of(ns + "/enc-2"), all.apply(ListKeysRequest.newBuilder()
        .setAnyVersionState(KeyVersionState.DESTROY_SCHEDULED)));
    assertEquals(java.util.List.of(), all.apply(ListKeysRequest.newBuilder()
        .setPrimaryState(KeyVersionState.DESTROY_SCHEDULED)), "never the primary's state");
    assertEquals(8, all.apply(ListKeysRequest.newBuilder().setAnyVersionState(KeyVersionState.ENABLED)).size(),
        "every key with a generated version");
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> client.keys().listKeys(
        ListKeysRequest.newBuilder().setNameContains("x".repeat(129)).build()));
    // a page token of one filter does not continue another
    String token = client.keys().listKeys(ListKeysRequest.newBuilder().setNamespace(ns).setPurpose(KeyPurpose.MAC)
        .setPageSize(1).build()).getNextPageToken();
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", () -> client.keys().listKeys(ListKeysRequest
        .newBuilder().setNamespace(ns).setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setPageSize(1).setPageToken(token)
        .build()));
  }

  @Test
  void listKeys_handMadeAlteredOrOtherFilterPageTokens_invalidPageToken() {
    for (int i = 0; i < 3; i++) {
      client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("pages").setName("p" + i)
          .setPurpose(KeyPurpose.MAC).build());
    }
    ListKeysRequest first = ListKeysRequest.newBuilder().setNamespace("pages").setPageSize(1).build();
    String token = client.keys().listKeys(first).getNextPageToken();
    // the issued token pages on
    assertEquals("pages/p1", client.keys().listKeys(first.toBuilder().setPageToken(token).build()).getKeys(0).getName());
    // a hand-made cursor (the old format: base64 of namespace NUL name) was accepted
    String handMade = java.util.Base64.getUrlEncoder().withoutPadding()
        .encodeToString("pages\0p0".getBytes(java.nio.charset.StandardCharsets.UTF_8));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN",
        () -> client.keys().listKeys(first.toBuilder().setPageToken(handMade).build()));
    // an altered one was INTERNAL
    byte[] raw = java.util.Base64.getUrlDecoder().decode(token);
    raw[raw.length - 1] ^= 0x55;
    String altered = java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN",
        () -> client.keys().listKeys(first.toBuilder().setPageToken(altered).build()));
    // a token of one filter set with another
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN",
        () -> client.keys().listKeys(first.toBuilder().setNamespace("other").setPageToken(token).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN",
        () -> client.keys().listKeys(first.toBuilder().putLabels("a", "b").setPageToken(token).build()));
    // a ListKeys token is not a ListKeyVersions token
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", () -> client.keys().listKeyVersions(
        ListKeyVersionsRequest.newBuilder().setKey("pages/p0").setPageToken(token).build()));
  }

  @Test
  void listKeyVersions_tokenOfAnotherKey_invalidPageToken() {
    for (String n : new String[] {"v0", "v1"}) {
      client.keys().createKey(CreateKeyRequest.newBuilder().setNamespace("pages").setName(n)
          .setPurpose(KeyPurpose.MAC).build());
      client.keys().rotateKey(RotateKeyRequest.newBuilder().setKey("pages/" + n).build());
    }
    ListKeyVersionsRequest q = ListKeyVersionsRequest.newBuilder().setKey("pages/v0").setPageSize(1).build();
    String token = client.keys().listKeyVersions(q).getNextPageToken();
    assertEquals(2, client.keys().listKeyVersions(q.toBuilder().setPageToken(token).build()).getVersions(0).getVersion());
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", () -> client.keys().listKeyVersions(
        q.toBuilder().setKey("pages/v1").setPageToken(token).build()));
  }

  @Test
  void createOrUpdateKey_timesAndDurationsBeyondProtobufRange_invalidRequest_andNothingCreated() {
    CreateKeyRequest base = CreateKeyRequest.newBuilder().setNamespace("range").setName("r1")
        .setPurpose(KeyPurpose.ENCRYPT_DECRYPT).setRotationPeriod(com.google.protobuf.Duration.newBuilder()
            .setSeconds(30L * 86_400)).build();
    for (long seconds : new long[] {Long.MAX_VALUE, Long.MIN_VALUE, 253_402_300_800L, -62_135_596_801L}) {
      assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> client.keys().createKey(base.toBuilder()
          .setNextRotationTime(com.google.protobuf.Timestamp.newBuilder().setSeconds(seconds)).build()));
    }
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> client.keys().createKey(base.toBuilder()
        .setRotationPeriod(com.google.protobuf.Duration.newBuilder().setSeconds(Long.MAX_VALUE)
            .setNanos(Integer.MAX_VALUE)).build()));
    assertStatus(Status.Code.INVALID_ARGUMENT, "INVALID_REQUEST", () -> client.keys().createKey(base.toBuilder()
        .setRotationPeriod(com.google.protobuf.Duration.newBuilder().setSeconds(86_400L * 365).setNanos(1_000_000_000))
        .build()));
    assertEquals(0, client.keys().listKeys(ListKeysRequest.newBuilder().setNamespace("range").build()).getKeysCount());
  }

  interface Writer {
    void write(CodedOutputStream out) throws IOException;
  }

  static byte[] message(Writer w) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    CodedOutputStream out = CodedOutputStream.newInstance(bytes);
    w.write(out);
    out.flush();
    return bytes.toByteArray();
  }

  /** Sends these bytes as the whole request message of the method. */
  private byte[] raw(MethodDescriptor<?, ?> method, byte[] request) {
    MethodDescriptor<byte[], byte[]> m = MethodDescriptor.<byte[], byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.UNARY).setFullMethodName(method.getFullMethodName())
        .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
    return ClientCalls.blockingUnaryCall(client.channel, m, CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS),
        request);
  }

  static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) { return new ByteArrayInputStream(value); }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
  };
}
