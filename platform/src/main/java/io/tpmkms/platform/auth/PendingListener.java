package io.tpmkms.platform.auth;

import io.grpc.ServerCall;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The listener of a call whose authentication finishes later: callbacks that
 * arrive before then are kept in order and replayed on the real listener once
 * {@link #start} gives it. gRPC never calls one listener concurrently; the
 * only race is between a transport callback and {@link #start}, handled under
 * the lock (the replay itself runs outside it, on the thread of start).
 */
final class PendingListener<Q> extends ServerCall.Listener<Q> {
  private List<Consumer<ServerCall.Listener<Q>>> pending = new ArrayList<>();
  private ServerCall.Listener<Q> delegate;

  void start(ServerCall.Listener<Q> listener) {
    while (true) {
      List<Consumer<ServerCall.Listener<Q>>> toRun;
      synchronized (this) {
        if (pending.isEmpty()) {
          delegate = listener;
          return;
        }
        toRun = pending;
        pending = new ArrayList<>();
      }
      for (Consumer<ServerCall.Listener<Q>> c : toRun) c.accept(listener);
    }
  }

  private void deliver(Consumer<ServerCall.Listener<Q>> callback) {
    ServerCall.Listener<Q> d;
    synchronized (this) {
      d = delegate;
      if (d == null) {
        pending.add(callback);
        return;
      }
    }
    callback.accept(d);
  }

  @Override public void onMessage(Q message) { deliver(l -> l.onMessage(message)); }
  @Override public void onHalfClose() { deliver(ServerCall.Listener::onHalfClose); }
  @Override public void onCancel() { deliver(ServerCall.Listener::onCancel); }
  @Override public void onComplete() { deliver(ServerCall.Listener::onComplete); }
  @Override public void onReady() { deliver(ServerCall.Listener::onReady); }
}
