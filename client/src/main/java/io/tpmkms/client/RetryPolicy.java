package io.tpmkms.client;

import io.grpc.Status;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * When and how often a call is sent again: only calls that are safe to repeat (reads and
 * cryptographic operations; never CreateKey, RotateKey or another change, whose first attempt may
 * have been carried out), only for UNAVAILABLE (the service or the network is down) and ABORTED
 * (a concurrent change), with exponential backoff and full jitter. UNAUTHENTICATED is handled
 * apart: the token is fetched again once.
 *
 * @param maxAttempts attempts in all, the first included (1: no retry)
 * @param initialBackoff the first wait's upper bound
 * @param maxBackoff no wait is longer
 * @param multiplier growth of the bound per attempt
 */
public record RetryPolicy(int maxAttempts, Duration initialBackoff, Duration maxBackoff, double multiplier) {
  /** 5 attempts, 100 ms doubling up to 5 s: rides out a service restart of a few seconds. */
  public static final RetryPolicy DEFAULT = new RetryPolicy(5, Duration.ofMillis(100), Duration.ofSeconds(5), 2.0);
  /** Every call sent once. */
  public static final RetryPolicy NONE = new RetryPolicy(1, Duration.ZERO, Duration.ZERO, 1.0);

  public RetryPolicy {
    if (maxAttempts < 1) throw new IllegalArgumentException("maxAttempts must be at least 1");
    if (initialBackoff.isNegative() || maxBackoff.isNegative() || multiplier < 1.0) {
      throw new IllegalArgumentException("backoff must not shrink or be negative");
    }
  }

  /** Whether a failure with {@code code} of a call that is safe to repeat is worth another attempt. */
  public static boolean retryable(Status.Code code) {
    return code == Status.Code.UNAVAILABLE || code == Status.Code.ABORTED;
  }

  /** The wait before attempt {@code attempt + 1} (attempt counts from 1): random in [0, bound]. */
  public Duration backoff(int attempt) {
    double bound = initialBackoff.toNanos() * Math.pow(multiplier, attempt - 1);
    long capped = (long) Math.min(bound, maxBackoff.toNanos());
    return Duration.ofNanos(capped <= 0 ? 0 : ThreadLocalRandom.current().nextLong(capped + 1));
  }
}
