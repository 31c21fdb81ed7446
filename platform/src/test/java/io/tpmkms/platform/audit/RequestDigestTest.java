package io.tpmkms.platform.audit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import io.tpmkms.proto.key.v1.EncryptRequest;
import io.tpmkms.proto.key.v1.GetKeyRequest;
import io.tpmkms.proto.key.v1.SignRequest;
import java.security.MessageDigest;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The request digest of the audit trail (docs/audit.md): SHA-256 of the request's deterministic
 * serialization with plaintext, data and digest cleared — checked against the plain protobuf
 * computation, so the fast path in {@link CallInfo#request} cannot drift from the documented one.
 */
class RequestDigestTest {
  private static byte[] documented(Message cleared) throws Exception {
    return MessageDigest.getInstance("SHA-256").digest(cleared.toByteArray());
  }

  /** Digested with the secret fields the key service declares for these RPCs (KeyRpcs). */
  private static CallInfo digested(Message request) {
    CallInfo info = new CallInfo("tpmkms.key.v1.KeyService/Test", "client", "req", null);
    var d = request.getDescriptorForType();
    com.google.protobuf.Descriptors.FieldDescriptor[] secret = switch (d.getName()) {
      case "EncryptRequest" -> new com.google.protobuf.Descriptors.FieldDescriptor[] {
          d.findFieldByNumber(EncryptRequest.PLAINTEXT_FIELD_NUMBER)};
      case "SignRequest" -> new com.google.protobuf.Descriptors.FieldDescriptor[] {
          d.findFieldByNumber(SignRequest.DATA_FIELD_NUMBER), d.findFieldByNumber(SignRequest.DIGEST_FIELD_NUMBER)};
      default -> new com.google.protobuf.Descriptors.FieldDescriptor[0];
    };
    info.request(request, secret, "ns/key");
    return info;
  }

  @Test
  void encrypt_digestLeavesThePlaintextOut() throws Exception {
    EncryptRequest a = EncryptRequest.newBuilder().setKey("ns/k").setPlaintext(ByteString.copyFromUtf8("secret one"))
        .setAdditionalAuthenticatedData(ByteString.copyFromUtf8("aad")).build();
    EncryptRequest b = a.toBuilder().setPlaintext(ByteString.copyFromUtf8("another secret")).build();
    EncryptRequest otherAad = a.toBuilder().setAdditionalAuthenticatedData(ByteString.copyFromUtf8("aad2")).build();

    CallInfo ia = digested(a);
    assertArrayEquals(documented(a.toBuilder().clearPlaintext().build()), ia.requestDigest());
    assertArrayEquals(ia.requestDigest(), digested(b).requestDigest());
    assertFalse(Arrays.equals(ia.requestDigest(), digested(otherAad).requestDigest()));
    assertEquals("ns/key", ia.key());
  }

  @Test
  void sign_bothSecretInputsLeftOut() throws Exception {
    SignRequest data = SignRequest.newBuilder().setKey("ns/s").setVersion(3)
        .setData(ByteString.copyFromUtf8("message")).build();
    SignRequest digest = SignRequest.newBuilder().setKey("ns/s").setVersion(3)
        .setDigest(ByteString.copyFrom(new byte[32])).build();
    byte[] expected = documented(SignRequest.newBuilder().setKey("ns/s").setVersion(3).build());
    assertArrayEquals(expected, digested(data).requestDigest());
    assertArrayEquals(expected, digested(digest).requestDigest());
  }

  @Test
  void requestWithoutSecrets_digestOfItsBytes_andLargeRequestsToo() throws Exception {
    GetKeyRequest get = GetKeyRequest.newBuilder().setKey("ns/" + "k".repeat(120)).build();
    assertArrayEquals(documented(get), digested(get).requestDigest());

    // larger than the per-thread buffer: it grows, the digest stays the documented one
    EncryptRequest big = EncryptRequest.newBuilder().setKey("ns/k").setPlaintext(ByteString.copyFrom(new byte[70_000]))
        .setAdditionalAuthenticatedData(ByteString.copyFrom(new byte[65_536])).build();
    assertArrayEquals(documented(big.toBuilder().clearPlaintext().build()), digested(big).requestDigest());
    // and a small one after it still gets its own digest, not leftovers of the big one
    assertArrayEquals(documented(get), digested(get).requestDigest());
  }

}
