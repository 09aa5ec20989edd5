package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/** CacheeClient reading the segment of a real sidecar, and surviving what happens to it. */
class SharedMemoryTest {
  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static void await(String what, BooleanSupplier cond) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(5);
    }
  }

  static CacheeClient shmClient(CacheeServer s) {
    return CacheeClient.builder().address("unix://" + s.sock).shmDir(s.shm.toString()).timeout(Duration.ofSeconds(10)).build();
  }

  static CacheeClient grpcClient(CacheeServer s) {
    return CacheeClient.builder().address("unix://" + s.sock).withoutShm().timeout(Duration.ofSeconds(10)).build();
  }

  @Test
  void shmHitsEqualGrpcResultsAndCountInTheSidecarsStats() throws Exception {
    try (var s = CacheeServer.start(); var c = shmClient(s); var g = grpcClient(s)) {
      await("the segment", c::readingSharedMemory);
      Random rnd = new Random(1);
      List<byte[]> keys = new ArrayList<>();
      for (int i = 0; i < 300; i++) {
        byte[] key = utf8("eq:" + i + ":" + "k".repeat(i % 40));
        byte[] v = new byte[rnd.nextInt(3000)];
        rnd.nextBytes(v);
        g.set(key, v, i % 3 == 0 ? SetOptions.ttl(Duration.ofMinutes(5)) : SetOptions.NONE);
        keys.add(key);
      }
      SharedMemory shm = c.sharedMemory();
      long before = g.stats().hits();
      long fallbacks = shm.fallbacks.get();
      for (byte[] key : keys) {
        assertArrayEquals(g.get(key).orElseThrow(), c.get(key).orElseThrow());
      }
      assertEquals(fallbacks, shm.fallbacks.get(), "every hit came from the segment");
      // A miss asks the sidecar.
      assertTrue(c.get(utf8("eq:absent")).isEmpty());
      assertEquals(fallbacks + 1, shm.fallbacks.get());
      ByteBuffer dst = ByteBuffer.allocateDirect(16);
      assertEquals(-1, c.get(utf8("eq:absent"), dst));
      // The 300 shared-memory hits reach the sidecar's count (+300 gRPC gets of g, +1 of its miss... not hits).
      await("the hits reported", () -> g.stats().hits() >= before + 2 * keys.size());
      assertEquals(before + 2 * keys.size(), g.stats().hits());
    }
  }

  @Test
  void getIntoABufferAllocatesNothingOnAHit() throws Exception {
    try (var s = CacheeServer.start(); var c = shmClient(s)) {
      await("the segment", c::readingSharedMemory);
      byte[] key = utf8("alloc:k");
      byte[] v = new byte[100];
      new Random(2).nextBytes(v);
      c.set(key, v);
      ByteBuffer dst = ByteBuffer.allocateDirect(128);
      var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
      for (int round = 0; ; round++) {
        for (int i = 0; i < 20_000; i++) { // warm up: the JIT, the thread's read state
          dst.clear();
          c.get(key, dst);
        }
        long fallbacks = c.sharedMemory().fallbacks.get();
        long a0 = mx.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < 10_000; i++) {
          dst.clear();
          if (c.get(key, dst) != 100) {
            throw new AssertionError("not a hit");
          }
        }
        long allocated = mx.getCurrentThreadAllocatedBytes() - a0;
        byte[] got = new byte[100];
        dst.flip().get(got);
        assertArrayEquals(v, got);
        if (c.sharedMemory().fallbacks.get() != fallbacks && round < 5) {
          continue; // the segment was dropped for a moment (a loaded machine): measure again
        }
        assertTrue(allocated < 1000, allocated + " bytes allocated by 10000 hits");
        break;
      }
    }
  }

  /** A value that says whether it is whole: its first 8 bytes give the rest. */
  static byte[] selfChecking(long seq, int len) {
    ByteBuffer b = ByteBuffer.allocate(len);
    b.putLong(seq);
    for (int i = 8; i < len; i++) {
      b.put((byte) (seq * 31 + i * 7));
    }
    return b.array();
  }

  static boolean whole(byte[] v) {
    if (v.length < 8) {
      return false;
    }
    return java.util.Arrays.equals(v, selfChecking(ByteBuffer.wrap(v).getLong(), v.length));
  }

  @Test
  void survivesKillRestartStopNewGenerationAndRetirement() throws Exception {
    CacheeServer s = CacheeServer.start();
    var sock = s.sock;
    var shmDir = s.shm;
    List<CacheeServer> servers = new ArrayList<>(List.of(s));
    var retry = new RetryPolicy(3, Duration.ofMillis(20), Duration.ofMillis(100), 2.0);
    var c = CacheeClient.builder().address("unix://" + sock).shmDir(shmDir.toString()).retry(retry)
        .timeout(Duration.ofSeconds(2)).build();
    var w = CacheeClient.builder().address("unix://" + sock).withoutShm().retry(retry).timeout(Duration.ofSeconds(2)).build();
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong reads = new AtomicLong();
    AtomicLong torn = new AtomicLong();
    ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
    List<Thread> threads = new ArrayList<>();
    threads.add(new Thread(() -> {
      for (long seq = 1; !stop.get(); seq++) {
        try {
          w.set(utf8("sv:" + seq % 64), selfChecking(seq, 100 + (int) (seq % 200)));
        } catch (CacheeException e) {
          // The sidecar is down or stopped.
        } catch (Throwable t) {
          failures.add(t);
        }
      }
    }));
    for (int t = 0; t < 2; t++) {
      int id = t;
      threads.add(new Thread(() -> {
        ByteBuffer dst = ByteBuffer.allocate(512);
        for (long i = 0; !stop.get(); i++) {
          try {
            byte[] key = utf8("sv:" + i % 64);
            byte[] v;
            if (id == 0) {
              v = c.get(key).orElse(null);
            } else {
              dst.clear();
              int n = c.get(key, dst);
              v = n < 0 ? null : java.util.Arrays.copyOf(dst.array(), n);
            }
            reads.incrementAndGet();
            if (v != null && !whole(v)) {
              torn.incrementAndGet();
            }
          } catch (CacheeException e) {
            // The sidecar is down or stopped: the read went to gRPC and failed.
          } catch (Throwable e) {
            failures.add(e);
          }
        }
      }));
    }
    threads.forEach(Thread::start);
    SharedMemory shm = c.sharedMemory();
    try {
      await("the segment", c::readingSharedMemory);
      long maps = shm.maps.get();

      // SIGSTOP: the clock stops; the reader drops the segment, then maps it again.
      s.signal("STOP");
      await("the stopped sidecar's segment dropped", () -> !c.readingSharedMemory());
      s.signal("CONT");
      long m1 = maps;
      await("the segment again after SIGCONT", () -> shm.maps.get() > m1 && c.readingSharedMemory());

      // SIGKILL and restart on the same segment: a new generation.
      long gen = shm.held.generation;
      s.kill();
      await("the dead sidecar's segment dropped", () -> !c.readingSharedMemory());
      s = new CacheeServer(sock, shmDir);
      servers.add(s);
      await("the new generation", () -> c.readingSharedMemory() && shm.held.generation != gen);

      // A sidecar of another size retires the segment and renames a new one over it.
      long ino = shm.held.ino;
      s.kill();
      s = new CacheeServer(sock, shmDir, "--max-memory=16mb");
      servers.add(s);
      await("the new segment", () -> c.readingSharedMemory() && shm.held.ino != ino);

      // A clean stop closes the segment.
      s.signal("TERM");
      s.awaitExit();
      await("the closed segment dropped", () -> !c.readingSharedMemory());
      s = new CacheeServer(sock, shmDir, "--max-memory=16mb");
      servers.add(s);
      await("the segment after a clean restart", c::readingSharedMemory);
      long r0 = reads.get();
      await("reads after the restarts", () -> reads.get() > r0 + 1000);
    } finally {
      stop.set(true);
      for (Thread t : threads) {
        t.join();
      }
      c.close();
      w.close();
      for (CacheeServer x : servers) {
        x.close();
      }
    }
    assertEquals(0, torn.get(), "torn values");
    assertTrue(failures.isEmpty(), "failures: " + failures);
    assertTrue(shm.stale.get() >= 3, "drops " + shm.stale.get());
    assertFalse(reads.get() == 0);
  }
}
