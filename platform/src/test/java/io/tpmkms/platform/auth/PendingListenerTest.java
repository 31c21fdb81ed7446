package io.tpmkms.platform.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.ServerCall;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class PendingListenerTest {
  static final class Recording extends ServerCall.Listener<String> {
    final List<String> seen = new ArrayList<>();
    @Override public void onMessage(String m) { seen.add("message:" + m); }
    @Override public void onHalfClose() { seen.add("halfClose"); }
    @Override public void onCancel() { seen.add("cancel"); }
    @Override public void onComplete() { seen.add("complete"); }
    @Override public void onReady() { seen.add("ready"); }
  }

  @Test
  void callbacksBeforeStart_areReplayedInOrder_thenDelivered() {
    PendingListener<String> pending = new PendingListener<>();
    pending.onReady();
    pending.onMessage("a");
    pending.onHalfClose();
    Recording real = new Recording();
    assertEquals(List.of(), real.seen);
    pending.start(real);
    assertEquals(List.of("ready", "message:a", "halfClose"), real.seen);
    pending.onComplete();
    assertEquals(List.of("ready", "message:a", "halfClose", "complete"), real.seen);
  }

  @Test
  void callbacksRacingStart_areNeitherLostNorReordered() throws Exception {
    for (int round = 0; round < 200; round++) {
      PendingListener<String> pending = new PendingListener<>();
      Recording real = new Recording();
      CountDownLatch go = new CountDownLatch(1);
      Thread transport = new Thread(() -> {
        try {
          go.await();
        } catch (InterruptedException e) {
          return;
        }
        for (int i = 0; i < 50; i++) pending.onMessage(Integer.toString(i));
      });
      transport.start();
      go.countDown();
      pending.start(real);
      transport.join(TimeUnit.SECONDS.toMillis(10));
      List<String> expected = new ArrayList<>();
      for (int i = 0; i < 50; i++) expected.add("message:" + i);
      synchronized (real) {
        assertEquals(expected, real.seen, "round " + round);
      }
    }
  }

  @Test
  void principal_roundTripsThroughTheProto_andNamesItselfForTheAudit() {
    Principal p = new Principal("3f2c", "alice", "tpmkms-cli", List.of("tpmkms-user"),
        List.of("tpmkms-policy-service/authorizer"), List.of("/payments"), "http://kc/realms/tpmkms");
    assertEquals(p, Principal.fromProto(p.toProto()));
    assertEquals("3f2c (alice)", p.auditName());
    assertEquals(true, p.hasClientRole("tpmkms-policy-service", "authorizer"));
    assertEquals(true, Principal.ANONYMOUS.anonymous());
  }
}
