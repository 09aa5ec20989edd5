package com.cachee.client;

import java.time.Duration;

/**
 * A write's time to live and condition. Immutable:
 * {@code SetOptions.ttl(Duration.ofMinutes(5)).withOnlyIfAbsent()}.
 *
 * @param ttl time to live; null or zero: no expiry
 * @param ifAbsent store only if the key is absent (Redis SET NX)
 * @param ifPresent store only if the key is present (Redis SET XX)
 */
public record SetOptions(Duration ttl, boolean ifAbsent, boolean ifPresent) {
  /** No expiry, no condition. */
  public static final SetOptions NONE = new SetOptions(null, false, false);

  public SetOptions {
    if (ifAbsent && ifPresent) {
      throw new IllegalArgumentException("only-if-absent and only-if-present exclude each other");
    }
  }

  public static SetOptions ttl(Duration ttl) {
    return new SetOptions(ttl, false, false);
  }

  public static SetOptions onlyIfAbsent() {
    return new SetOptions(null, true, false);
  }

  public static SetOptions onlyIfPresent() {
    return new SetOptions(null, false, true);
  }

  public SetOptions withTtl(Duration ttl) {
    return new SetOptions(ttl, ifAbsent, ifPresent);
  }

  public SetOptions withOnlyIfAbsent() {
    return new SetOptions(ttl, true, false);
  }

  public SetOptions withOnlyIfPresent() {
    return new SetOptions(ttl, false, true);
  }
}
