package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The SDK contract end to end, against the real binary: prewarm, cancellation, close, the token. */
class LifecycleTest {
  static final String TOKEN = "0123456789abcdef0123";

  static CacheeClient client(CacheeServer s) {
    return CacheeClient.builder().address("unix://" + s.sock).withoutShm().timeout(Duration.ofSeconds(10)).build();
  }

  @Test
  void prewarmReportsProgressAndAThrowingCallbackCancelsTheStreamAtOnce() throws Exception {
    try (var redis = new RedisServer();
        var s = CacheeServer.start("--max-memory=64mb", "--prewarm-source=" + redis.url(),
            "--prewarm-keys=20000", "--prewarm-timeout=60s");
        var c = client(s)) {
      // Filled after the sidecar started, so that its startup prewarm found nothing.
      redis.fill("pw", 20_000, 200);
      long done0 = runs(s, "done"); // the startup prewarm's
      List<PrewarmProgress> seen = new ArrayList<>();
      PrewarmProgress done = c.prewarm(0, null, seen::add, Duration.ofSeconds(60));
      assertTrue(done.done() && done.loaded() > 0 && done.loaded() + done.skipped() + done.failed() == done.requested(),
          done.toString());
      assertTrue(!seen.isEmpty(), "no progress before the final counts");
      for (int i = 1; i < seen.size(); i++) {
        assertTrue(seen.get(i).loaded() >= seen.get(i - 1).loaded(), seen.toString());
      }
      assertEquals(done0 + 1, runs(s, "done"));
    }
    try (var redis = new RedisServer();
        var s = CacheeServer.start("--max-memory=64mb", "--prewarm-source=" + redis.url(),
            "--prewarm-keys=20000", "--prewarm-timeout=60s");
        var c = client(s)) {
      redis.fill("pw", 20_000, 200);
      long done0 = runs(s, "done");
      long failed0 = runs(s, "failed");
      IllegalStateException boom = new IllegalStateException("the application's own failure");
      var thrown = assertThrows(IllegalStateException.class, () -> c.prewarm(0, null, p -> {
        throw boom;
      }, Duration.ofSeconds(60)));
      assertSame(boom, thrown, "the callback's exception, not wrapped");
      // The stream was cancelled at once: the sidecar's prewarm ended failed (its context
      // canceled) after the first of its 100 batches, rather than running on to "done"
      // with nobody reading.
      SharedMemoryTest.await("the cancelled prewarm's end", () -> runs(s, "failed") + runs(s, "done") > failed0 + done0);
      assertEquals(failed0 + 1, runs(s, "failed"), "the cancelled prewarm ran to its end");
      assertTrue(c.stats().entries() < 20_000, "every key was loaded: the prewarm was not cancelled");
      // And the sidecar is free for the next one.
      assertTrue(c.prewarm(0, null, p -> {}, Duration.ofSeconds(60)).done());
    }
  }

  /** cachee_prewarm_runs_total{outcome}. */
  static long runs(CacheeServer s, String outcome) {
    return s.metric("cachee_prewarm_runs_total", "outcome=\"" + outcome + "\"");
  }

  @Test
  void interruptingACallCancelsIt() throws Exception {
    try (var s = CacheeServer.start(); var c = client(s)) {
      c.set("k", "v");
      s.signal("STOP"); // the call below waits for an answer that does not come
      try {
        AtomicReference<Thread> caller = new AtomicReference<>();
        var f = CompletableFuture.supplyAsync(() -> {
          caller.set(Thread.currentThread());
          return c.get("k".getBytes(), Duration.ofSeconds(60));
        });
        SharedMemoryTest.await("the call to start", () -> caller.get() != null);
        Thread.sleep(100);
        caller.get().interrupt();
        var e = assertThrows(java.util.concurrent.CompletionException.class, f::join);
        assertInstanceOf(CacheeException.Canceled.class, e.getCause());
      } finally {
        s.signal("CONT");
      }
      assertEquals("v", c.getString("k").orElseThrow());
    }
  }

  @Test
  void callsAfterCloseFailClosedAndCloseIsFinal() throws Exception {
    try (var s = CacheeServer.start()) {
      var c = client(s);
      c.set("k", "v");
      c.close();
      c.close();
      assertThrows(CacheeException.Closed.class, () -> c.get("k"));
      assertThrows(CacheeException.Closed.class, () -> c.get("k".getBytes(), java.nio.ByteBuffer.allocate(8)));
      assertThrows(CacheeException.Closed.class, () -> c.set("k", "v"));
      assertThrows(CacheeException.Closed.class, c::stats);
      assertThrows(CacheeException.Closed.class, () -> c.prewarm(p -> {}));
    }
  }

  @Test
  void theBearerToken() throws Exception {
    try (var s = CacheeServer.start("--auth-token=" + TOKEN)) {
      try (var none = client(s)) {
        var e = assertThrows(CacheeException.Unauthenticated.class, () -> none.set("k", "v"));
        assertEquals("UNAUTHENTICATED", e.reason());
      }
      try (var wrong = CacheeClient.builder().address("unix://" + s.sock).withoutShm().authToken("nope").timeout(Duration.ofSeconds(10)).build()) {
        assertThrows(CacheeException.Unauthenticated.class, () -> wrong.get("k"));
      }
      try (var with = CacheeClient.builder().address("unix://" + s.sock).shmDir(s.shm.toString()).authToken(TOKEN).timeout(Duration.ofSeconds(10)).build()) {
        assertTrue(with.set("k", "v"));
        assertEquals("v", with.getString("k").orElseThrow());
        // The segment is confirmed with Stats, which carries the token too.
        SharedMemoryTest.await("the segment", with::readingSharedMemory);
      }
    }
  }
}
