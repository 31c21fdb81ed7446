package io.tpmkms.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.Code;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.tpmkms.proto.key.v1.RotateKeyRequest;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The client's retries, re-authentication and error mapping, against a key service on a socket. */
class TpmkmsClientTest {
  FakeKeyService service;
  ManagedChannel channel;
  final List<Duration> waits = new ArrayList<>();

  @BeforeEach
  void start() throws Exception {
    service = new FakeKeyService();
    channel = service.channel();
  }

  @AfterEach
  void stop() throws Exception {
    channel.shutdownNow();
    service.close();
  }

  TpmkmsClient client(TokenSource tokens, RetryPolicy retries) {
    return TpmkmsClient.builder().channel(channel).credentials(tokens).retries(retries).sleeper(waits::add).build();
  }

  static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void encryptDecrypt_roundTrip_withTheTokenOnEveryCall() {
    try (TpmkmsClient c = client(() -> "tok-1", RetryPolicy.DEFAULT)) {
      byte[] ct = c.encrypt("t/k", b("hello"), b("aad"));
      assertArrayEquals(b("hello"), c.decrypt("t/k", ct, b("aad")));
    }
    assertEquals(List.of("Bearer tok-1", "Bearer tok-1"), service.tokens);
  }

  @Test
  void unavailable_retriedWithBackoff_forACallSafeToRepeat() {
    service.failures.add(Status.UNAVAILABLE.withDescription("restarting").asRuntimeException());
    service.failures.add(FakeKeyService.failure(Code.ABORTED, "CONCURRENT_CHANGE"));
    try (TpmkmsClient c = client(() -> "t", RetryPolicy.DEFAULT)) {
      byte[] ct = c.encrypt("t/k", b("x"), null);
      assertEquals(3, service.calls.get(), "two failures, then the answer");
      assertArrayEquals(b("x"), c.decrypt("t/k", ct, null));
    }
    assertEquals(2, waits.size());
    for (int i = 0; i < waits.size(); i++) {
      long bound = (long) (100 * Math.pow(2, i));
      assertTrue(waits.get(i).toMillis() <= bound, "wait " + i + " " + waits.get(i) + " within " + bound + " ms");
    }
  }

  @Test
  void aChange_isNeverRepeated_byTheLibrary() {
    service.failures.add(Status.UNAVAILABLE.asRuntimeException());
    try (TpmkmsClient c = client(() -> "t", RetryPolicy.DEFAULT)) {
      TpmkmsException e = assertThrows(TpmkmsException.class,
          () -> c.call(false, s -> s.rotateKey(RotateKeyRequest.newBuilder().setKey("t/k").build())));
      assertEquals(Status.Code.UNAVAILABLE, e.code());
      assertEquals(1, e.attempts());
    }
    assertEquals(1, service.calls.get(), "sent once: the first attempt may have rotated the key");
  }

  @Test
  void retries_stopAtMaxAttempts_andTheExceptionSaysHowMany() {
    for (int i = 0; i < 10; i++) service.failures.add(Status.UNAVAILABLE.asRuntimeException());
    RetryPolicy three = new RetryPolicy(3, Duration.ofMillis(10), Duration.ofMillis(50), 2);
    try (TpmkmsClient c = client(() -> "t", three)) {
      TpmkmsException e = assertThrows(TpmkmsException.class, () -> c.encrypt("t/k", b("x"), null));
      assertEquals(3, e.attempts());
      assertTrue(e.getMessage().contains("after 3 attempts"), e.getMessage());
    }
    assertEquals(3, service.calls.get());
  }

  @Test
  void aRefusal_isTypedWithTheStableReason_andNotRetried() {
    service.failures.add(FakeKeyService.failure(Code.FAILED_PRECONDITION, "KEY_VERSION_NOT_ENABLED"));
    try (TpmkmsClient c = client(() -> "t", RetryPolicy.DEFAULT)) {
      TpmkmsException e = assertThrows(TpmkmsException.class, () -> c.encrypt("t/k", b("x"), null));
      assertEquals(Status.Code.FAILED_PRECONDITION, e.code());
      assertEquals("KEY_VERSION_NOT_ENABLED", e.reason());
      assertEquals("t/k", e.metadata().get("key"));
    }
    assertEquals(1, service.calls.get());
  }

  @Test
  void unauthenticated_fetchesANewTokenOnce() {
    service.refusedTokens.add("Bearer old");
    AtomicInteger invalidated = new AtomicInteger();
    TokenSource rotating = new TokenSource() {
      String current = "old";

      @Override
      public String token() {
        return current;
      }

      @Override
      public void invalidate() {
        invalidated.incrementAndGet();
        current = "new";
      }
    };
    try (TpmkmsClient c = client(rotating, RetryPolicy.NONE)) {
      c.encrypt("t/k", b("x"), null);
    }
    assertEquals(List.of("Bearer old", "Bearer new"), service.tokens);
    assertEquals(1, invalidated.get());

    // a token refused again is not retried forever
    service.tokens.clear();
    service.refusedTokens.add("Bearer new");
    try (TpmkmsClient c = client(rotating, RetryPolicy.DEFAULT)) {
      TpmkmsException e = assertThrows(TpmkmsException.class, () -> c.encrypt("t/k", b("x"), null));
      assertEquals(Status.Code.UNAUTHENTICATED, e.code());
    }
    assertEquals(2, service.tokens.size());
  }

  @Test
  void batches_splitByCountAndSize_resultsInOrder_itemErrorsTyped() throws Exception {
    try (TpmkmsClient c = client(() -> "tok", RetryPolicy.DEFAULT)) {
      java.util.List<io.tpmkms.proto.key.v1.EncryptRequest> items = new java.util.ArrayList<>();
      for (int i = 0; i < 2500; i++) {
        items.add(io.tpmkms.proto.key.v1.EncryptRequest.newBuilder().setKey(i == 1234 ? "x/missing" : "a/k")
            .setPlaintext(com.google.protobuf.ByteString.copyFromUtf8("p" + i)).build());
      }
      var results = c.encryptBatch(items);
      assertEquals(java.util.List.of(1000, 1000, 500), service.batchSizes, "at most 1,000 items a call");
      assertEquals(2500, results.size());
      assertEquals("p2499", new String(service.open(results.get(2499).orThrow().getCiphertext().toByteArray(),
          new byte[0]), java.nio.charset.StandardCharsets.UTF_8), "results in the items' order");
      var missing = results.get(1234);
      assertFalse(missing.ok());
      assertEquals("KEY_NOT_FOUND", missing.error().reason());
      assertEquals(io.grpc.Status.Code.NOT_FOUND, missing.error().code());
      TpmkmsException thrown = assertThrows(TpmkmsException.class, missing::orThrow);
      assertEquals("KEY_NOT_FOUND", thrown.reason());

      service.batchSizes.clear();
      java.util.List<io.tpmkms.proto.key.v1.EncryptRequest> big = new java.util.ArrayList<>();
      for (int i = 0; i < 20; i++) {
        big.add(io.tpmkms.proto.key.v1.EncryptRequest.newBuilder().setKey("a/k")
            .setPlaintext(com.google.protobuf.ByteString.copyFrom(new byte[64 * 1024])).build());
      }
      assertEquals(20, c.encryptBatch(big).stream().filter(TpmkmsClient.BatchResult::ok).count());
      assertEquals(java.util.List.of(15, 5), service.batchSizes, "about 1 MB a call (the service takes 1 MiB)");
    }
  }

  @Test
  void retryPolicy_backoffGrowsAndIsCapped() {
    RetryPolicy p = new RetryPolicy(10, Duration.ofMillis(100), Duration.ofMillis(400), 2);
    for (int i = 0; i < 200; i++) {
      assertTrue(p.backoff(1).toMillis() <= 100);
      assertTrue(p.backoff(3).toMillis() <= 400);
      assertTrue(p.backoff(9).toMillis() <= 400, "capped");
    }
    assertThrows(IllegalArgumentException.class, () -> new RetryPolicy(0, Duration.ZERO, Duration.ZERO, 1));
  }
}
