package io.tpmkms.kmsplugin;

import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.tpmkms.client.RetryPolicy;
import io.tpmkms.client.TokenSource;
import io.tpmkms.client.TpmkmsClient;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * How the plugin reaches tpmkms: a client for Encrypt and Decrypt (the configured deadline and
 * retries), a client for Status's probes (sent once, so Status reports what the probe saw), and a
 * way to reset the channel's reconnect backoff. grpc-java waits up to two minutes between
 * reconnections to a service that was down; the plugin resets that wait after every UNAVAILABLE and
 * sends the call once more, so a restarted key service is used as soon as it answers. Closing the
 * clients is the channel owner's business (they do not own it).
 *
 * @param calls               Encrypt and Decrypt
 * @param probes              Status
 * @param resetConnectBackoff ends the channel's reconnect wait (see {@link #over}); may do nothing
 */
public record TpmkmsConnection(TpmkmsClient calls, TpmkmsClient probes, Runnable resetConnectBackoff) {

  /** Both clients on {@code channel}, with its reconnect backoff reset after UNAVAILABLE. */
  public static TpmkmsConnection over(ManagedChannel channel, TokenSource tokens, Duration deadline,
      RetryPolicy retries, Duration statusTimeout) {
    TpmkmsClient calls = TpmkmsClient.builder().channel(channel).credentials(tokens).deadline(deadline)
        .retries(retries).build();
    TpmkmsClient probes = TpmkmsClient.builder().channel(channel).credentials(tokens).deadline(statusTimeout)
        .retries(RetryPolicy.NONE).build();
    return new TpmkmsConnection(calls, probes, () -> reconnectNow(channel));
  }

  /**
   * Ends the wait of a channel in TRANSIENT_FAILURE and returns once it is connecting (at most 1 s):
   * a call sent then waits for the connection's outcome instead of failing at once.
   */
  static void reconnectNow(ManagedChannel channel) {
    if (channel.getState(false) != ConnectivityState.TRANSIENT_FAILURE) return;
    CountDownLatch changed = new CountDownLatch(1);
    channel.notifyWhenStateChanged(ConnectivityState.TRANSIENT_FAILURE, changed::countDown);
    channel.resetConnectBackoff();
    try {
      changed.await(1, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** One client for everything, nothing to reset (a benchmark's or a test's own client). */
  public static TpmkmsConnection of(TpmkmsClient client) {
    return new TpmkmsConnection(client, client, () -> {});
  }
}
