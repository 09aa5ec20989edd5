package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * An OVERLOADED refusal from the real sidecar, and the same calls retried until it has
 * room. The sidecar's client memory budget is set to its smallest, little more than one
 * call of the largest message; concurrent Gets of a large value each reserve the value's
 * bytes for their answer, and those that find no room are refused before anything is
 * sent.
 */
class OverloadedTest {
  static final byte[] KEY = "ov:big".getBytes();
  static final byte[] VALUE = new byte[700 << 10];

  static CacheeClient client(CacheeServer s, RetryPolicy retry) {
    var c = CacheeClient.builder().address("unix://" + s.sock).withoutShm().retry(retry).timeout(Duration.ofSeconds(60)).build();
    c.stats(); // connected now: a new connection also needs room in the budget
    return c;
  }

  /** Runs calls Gets of KEY on pool at once and waits for them all. */
  static void concurrently(ExecutorService pool, int calls, Runnable get) throws Exception {
    List<Future<?>> fs = new ArrayList<>();
    for (int i = 0; i < calls; i++) {
      fs.add(pool.submit(get));
    }
    for (Future<?> f : fs) {
      f.get();
    }
  }

  @Test
  void aRefusedCallIsRetriedUntilTheSidecarHasRoom() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try (var s = CacheeServer.start("--max-client-memory=2334720"); // the least the 8mb sidecar takes
        var once = client(s, RetryPolicy.NONE);
        var patient = client(s, new RetryPolicy(50, Duration.ofMillis(10), Duration.ofMillis(100), 2.0))) {
      java.util.Arrays.fill(VALUE, (byte) 7);
      once.set(KEY, VALUE);
      // Without retries: the refusal itself, typed.
      AtomicReference<CacheeException.Overloaded> refused = new AtomicReference<>();
      for (int round = 0; round < 20 && refused.get() == null; round++) {
        concurrently(pool, 64, () -> {
          try {
            once.get(KEY);
          } catch (CacheeException.Overloaded e) {
            refused.compareAndSet(null, e);
          }
        });
      }
      CacheeException.Overloaded e = refused.get();
      assertNotNull(e, "the sidecar refused no call: OVERLOADED was not exercised");
      assertEquals("OVERLOADED", e.reason());
      assertInstanceOf(CacheeException.Unavailable.class, e);
      // With retries, under the same contention: every call gets the value.
      for (int round = 0; round < 5; round++) {
        concurrently(pool, 64, () -> assertArrayEquals(VALUE, patient.get(KEY).orElseThrow()));
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
