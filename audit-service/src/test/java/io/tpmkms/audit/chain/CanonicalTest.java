package io.tpmkms.audit.chain;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** The worked example of docs/audit.md, byte for byte (computed there independently, in Python). */
class CanonicalTest {
  private static final HexFormat HEX = HexFormat.of();

  static final Event EXAMPLE = new Event("0b5c6a6e-3f3c-4d38-9a39-2f8e2b1b6a01", 1735689600L, 123456789,
      "key-service", "alice", "127.0.0.1:50412", "tpmkms.key.v1.KeyService/Encrypt", "payments/card-data", 3, 1,
      "rule payments-users", "OK", "", "req-42", new byte[0]);

  @Test
  void record_example_matchesTheDocumentedBytesAndHash() {
    Canonical.Encoder e = new Canonical.Encoder(16); // grows
    Canonical.record(e, 1, EXAMPLE);
    assertEquals("0000001674706d6b6d732f61756469742f7265636f72642f763100000000000000010000002430623563366136652d33"
        + "6633632d346433382d396133392d3266386532623162366130310000000067748580075bcd150000000b6b65792d736572766963"
        + "6500000005616c6963650000000f3132372e302e302e313a35303431320000002074706d6b6d732e6b65792e76312e4b65795365"
        + "72766963652f456e6372797074000000127061796d656e74732f636172642d646174610000000000000003000000000000000100"
        + "00001372756c65207061796d656e74732d7573657273000000024f4b00000000000000067265712d343200000000",
        HEX.formatHex(Arrays.copyOf(e.buffer(), e.length())));
    byte[] hash = Canonical.recordHash(Canonical.sha256(), e, Canonical.genesis(), 1, EXAMPLE);
    assertEquals("6747aa43e9c87b0b5153e4b61a10871fbde8dbed1bc89cb7bedf1c38fb475450", HEX.formatHex(hash));
  }

  /** The same event as a version-2 record (ADR 0023): v2 domain, then details "" and delivered_by. */
  @Test
  void recordV2_example_addsDetailsAndDeliverer_andMatchesTheDocumentedHash() {
    Event v2 = new Event(EXAMPLE.eventId(), EXAMPLE.seconds(), EXAMPLE.nanos(), EXAMPLE.service(),
        EXAMPLE.principal(), EXAMPLE.client(), EXAMPLE.operation(), EXAMPLE.key(), EXAMPLE.keyVersion(),
        EXAMPLE.decision(), EXAMPLE.decisionReason(), EXAMPLE.outcome(), EXAMPLE.outcomeReason(),
        EXAMPLE.requestId(), EXAMPLE.requestDigest(), "", "tpmkms-key-service", 2);
    Canonical.Encoder e = new Canonical.Encoder();
    Canonical.record(e, 1, v2);
    assertEquals(276, e.length());
    assertEquals("0000001674706d6b6d732f61756469742f7265636f72642f7632",
        HEX.formatHex(Arrays.copyOf(e.buffer(), 26)));
    assertEquals("00000000" + "00000012" + HEX.formatHex("tpmkms-key-service".getBytes()),
        HEX.formatHex(Arrays.copyOfRange(e.buffer(), 250, 276)));
    byte[] hash = Canonical.recordHash(Canonical.sha256(), e, Canonical.genesis(), 1, v2);
    assertEquals("5e0db2a7d50a02346b996d1f8b807bbb15844495da63b4977effad20992682c8", HEX.formatHex(hash));
  }

  @Test
  void checkpoint_andNvExtend_example() {
    byte[] head = HEX.parseHex("6747aa43e9c87b0b5153e4b61a10871fbde8dbed1bc89cb7bedf1c38fb475450");
    byte[] cp = Canonical.checkpoint(1, head, 1735689610L, 500000, "tpm-nv");
    assertEquals("294ca99abaa9fbe6ca72c10e0932834836f7b1181915db379a2d94075a023b1e",
        HEX.formatHex(Canonical.sha256().digest(cp)));
    assertEquals("b131cb2913be8900eeea52bb5995db4b7cd21b396673300e1f04c09e90a21574",
        HEX.formatHex(Canonical.extend(Canonical.genesis(), head)));
  }

  @Test
  void nonAscii_isUtf8_withByteLength() {
    Canonical.Encoder e = new Canonical.Encoder();
    e.str("é€");
    assertEquals("00000005c3a9e282ac", HEX.formatHex(Arrays.copyOf(e.buffer(), e.length())));
  }
}
