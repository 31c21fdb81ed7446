package io.tpmkms.platform.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import io.tpmkms.proto.audit.v1.AppendEventsRequest;
import io.tpmkms.proto.audit.v1.AuditEvent;
import io.tpmkms.proto.audit.v1.Decision;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The forwarder's hand-made AppendEventsRequest is the one protobuf would have made. */
class AppendRequestTest {
  @Test
  void rawRequest_parsesToTheSameEvents() throws Exception {
    List<byte[]> payloads = new ArrayList<>();
    AppendEventsRequest.Builder expected = AppendEventsRequest.newBuilder();
    for (int i = 0; i < 300; i++) {
      AuditEvent e = AuditEvent.newBuilder().setEventId(CallInfo.randomId())
          .setTime(Timestamp.newBuilder().setSeconds(1_700_000_000L + i).setNanos(i))
          .setService("key-service").setPrincipal("p" + "x".repeat(i)).setOperation("tpmkms.key.v1.KeyService/Encrypt")
          .setKey("ns/k" + i).setKeyVersion(i).setDecision(Decision.ALLOW).setOutcome("OK")
          .setRequestDigest(ByteString.copyFrom(new byte[32])).build();
      payloads.add(e.toByteArray());
      expected.addEvents(e);
    }
    byte[] raw = AuditForwarder.appendRequest(payloads);
    assertEquals(expected.build(), AppendEventsRequest.parseFrom(raw));
    assertEquals(expected.build().toByteArray().length, raw.length);
    assertEquals(0, AuditForwarder.appendRequest(List.of()).length);
  }
}
