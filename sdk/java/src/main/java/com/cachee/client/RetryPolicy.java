package com.cachee.client;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Retries of calls that failed with UNAVAILABLE (the server is restarting or not up
 * yet), with exponential backoff and jitter. Calls safe to repeat (get, getMany, stats,
 * set without a condition) are retried on any UNAVAILABLE; a conditional set, delete and
 * setMany only when the server refused them unapplied (reason OVERLOADED or SHUTTING_DOWN),
 * since a connection reset may follow an applied write. No retry waits past the call's deadline:
 * when the next wait would end after it, the last error is thrown.
 */
public record RetryPolicy(int maxAttempts, Duration initialBackoff, Duration maxBackoff, double multiplier) {
  public static final RetryPolicy DEFAULT = new RetryPolicy(4, Duration.ofMillis(50), Duration.ofSeconds(1), 2.0);
  public static final RetryPolicy NONE = new RetryPolicy(1, Duration.ZERO, Duration.ZERO, 1.0);

  public RetryPolicy {
    if (maxAttempts < 1) {
      throw new IllegalArgumentException("maxAttempts must be at least 1");
    }
  }

  /** The wait before retry number {@code retry} (1-based), jittered over its upper half. */
  long backoffNanos(int retry) {
    double step = Math.min(maxBackoff.toNanos(), initialBackoff.toNanos() * Math.pow(multiplier, retry - 1));
    return (long) (step / 2 + ThreadLocalRandom.current().nextDouble() * step / 2);
  }
}
