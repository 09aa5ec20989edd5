package com.cachee.client;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * How often, and after what waits, a failed call is sent again (docs/sdk-contract.md,
 * sections 4 and 5). Which failures are retried does not depend on the policy: calls the
 * sidecar refused unapplied (OVERLOADED, SHUTTING_DOWN) and contended reads always, a lost
 * connection only for calls safe to repeat (get, getMany, stats, delete, and writes
 * without a condition) and not while the sidecar is known to be down, never a prewarm.
 * No retry waits past the call's deadline: when the next wait would end after it, the
 * last error is thrown.
 *
 * @param maxAttempts attempts in all, the first included (default 3)
 * @param initialBackoff the wait before the first retry, at most (default 10 ms)
 * @param maxBackoff the longest wait (default 200 ms)
 * @param multiplier growth of the wait per retry (default 2); each wait is uniform in its upper half
 */
public record RetryPolicy(int maxAttempts, Duration initialBackoff, Duration maxBackoff, double multiplier) {
  public static final RetryPolicy DEFAULT = new RetryPolicy(3, Duration.ofMillis(10), Duration.ofMillis(200), 2.0);
  public static final RetryPolicy NONE = new RetryPolicy(1, Duration.ZERO, Duration.ZERO, 1.0);

  public RetryPolicy {
    if (maxAttempts < 1) {
      throw new IllegalArgumentException("maxAttempts must be at least 1");
    }
  }

  /** The wait before retry number {@code retry} (1-based): uniform in [d/2, d], d = min(initial × multiplier^(retry−1), max). */
  long backoffNanos(int retry) {
    double step = Math.min(maxBackoff.toNanos(), initialBackoff.toNanos() * Math.pow(multiplier, retry - 1));
    return (long) (step / 2 + ThreadLocalRandom.current().nextDouble() * step / 2);
  }
}
