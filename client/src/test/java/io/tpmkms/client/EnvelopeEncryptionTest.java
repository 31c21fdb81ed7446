package io.tpmkms.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.ManagedChannel;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class EnvelopeEncryptionTest {
  FakeKeyService service;
  ManagedChannel channel;
  TpmkmsClient client;

  @BeforeEach
  void start() throws Exception {
    service = new FakeKeyService();
    channel = service.channel();
    client = TpmkmsClient.builder().channel(channel).build();
  }

  @AfterEach
  void stop() throws Exception {
    client.close();
    channel.shutdownNow();
    service.close();
  }

  static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void manyMessages_oneDataKey_andDecryptionWithoutAServiceCall() {
    EnvelopeEncryption env = EnvelopeEncryption.of(client, "t/k");
    byte[][] cts = new byte[100][];
    for (int i = 0; i < 100; i++) cts[i] = env.encrypt(b("message " + i), b("ctx"));
    assertEquals(1, env.serviceCalls(), "one GenerateDataKey for 100 messages");
    for (int i = 0; i < 100; i++) assertArrayEquals(b("message " + i), env.decrypt(cts[i], b("ctx")));
    assertEquals(1, env.serviceCalls(), "its own data key is cached for decryption");

    // another instance (another process) unwraps the data key once through the service
    EnvelopeEncryption other = EnvelopeEncryption.of(client, "t/k");
    for (int i = 0; i < 100; i++) assertArrayEquals(b("message " + i), other.decrypt(cts[i], b("ctx")));
    assertEquals(1, other.serviceCalls(), "one Decrypt of the data key");
  }

  @Test
  void tamperingOrOtherAssociatedData_failsAuthentication() {
    EnvelopeEncryption env = EnvelopeEncryption.of(client, "t/k");
    byte[] ct = env.encrypt(b("secret"), b("ctx"));
    assertThrows(IllegalArgumentException.class, () -> env.decrypt(ct, b("other")));
    byte[] flipped = ct.clone();
    flipped[flipped.length - 1] ^= 1;
    assertThrows(IllegalArgumentException.class, () -> env.decrypt(flipped, b("ctx")));
    assertThrows(IllegalArgumentException.class, () -> env.decrypt(new byte[10], b("ctx")));
    byte[] badVersion = ct.clone();
    badVersion[0] = 2;
    assertThrows(IllegalArgumentException.class, () -> env.decrypt(badVersion, b("ctx")));
  }

  @Test
  void dataKeys_areReplacedAfterMaxUsesAndMaxAge() {
    AtomicReference<Instant> now = new AtomicReference<>(Instant.parse("2026-01-01T00:00:00Z"));
    Clock clock = new Clock() {
      @Override public ZoneOffset getZone() { return ZoneOffset.UTC; }
      @Override public Clock withZone(java.time.ZoneId zone) { return this; }
      @Override public Instant instant() { return now.get(); }
    };
    EnvelopeEncryption env = EnvelopeEncryption.of(client, "t/k", Duration.ofMinutes(5), 3, 10, clock);
    byte[] first = env.encrypt(b("1"), null);
    env.encrypt(b("2"), null);
    env.encrypt(b("3"), null);
    assertEquals(1, env.serviceCalls());
    byte[] fourth = env.encrypt(b("4"), null);
    assertEquals(2, env.serviceCalls(), "a new data key after 3 uses");
    int n = ((first[1] & 0xff) << 8) | (first[2] & 0xff);
    assertNotEquals(java.util.Arrays.toString(java.util.Arrays.copyOfRange(first, 3, 3 + n)),
        java.util.Arrays.toString(java.util.Arrays.copyOfRange(fourth, 3, 3 + n)));
    now.set(now.get().plus(Duration.ofMinutes(6)));
    env.encrypt(b("5"), null);
    assertEquals(3, env.serviceCalls(), "a new data key after 5 minutes");
    assertArrayEquals(b("1"), env.decrypt(first, null));
    assertEquals(4, env.serviceCalls(), "an expired cached data key is unwrapped again");
  }

  @Test
  void noReuse_aServiceCallPerMessage() {
    EnvelopeEncryption env = EnvelopeEncryption.of(client, "t/k", Duration.ofMinutes(5), 1, 0);
    byte[] a = env.encrypt(b("a"), null);
    env.encrypt(b("b"), null);
    assertEquals(2, env.serviceCalls());
    assertArrayEquals(b("a"), env.decrypt(a, null));
    assertEquals(3, env.serviceCalls(), "nothing cached");
  }
}
