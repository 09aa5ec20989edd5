package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

class AccessBufferTest {
  /** What the sidecar is told (refs plus hits they do not name) adds up to the hits, exactly, under races. */
  @Test
  void reportedHitsAddUpUnderConcurrentDrains() throws Exception {
    AccessBuffer acc = new AccessBuffer();
    int threads = 4;
    int perThread = 200_000;
    AtomicBoolean done = new AtomicBoolean();
    long[] reported = new long[1];
    long[] refs = new long[1];
    Thread flusher = new Thread(() -> {
      long[] buf = new long[16];
      while (!done.get()) {
        AccessBuffer.Batch b = acc.drain(buf);
        buf = b.refs();
        reported[0] += b.count() + b.unreported();
        refs[0] += b.count();
        for (int i = 0; i < b.count(); i++) {
          assertTrue(b.refs()[i] >= 1 && b.refs()[i] <= 3, "ref " + b.refs()[i]);
        }
      }
    });
    flusher.start();
    List<Thread> ts = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      ts.add(new Thread(() -> {
        for (int i = 0; i < perThread; i++) {
          acc.record(1 + i % 3);
        }
      }));
    }
    ts.forEach(Thread::start);
    for (Thread t : ts) {
      t.join();
    }
    done.set(true);
    flusher.join();
    AccessBuffer.Batch last = acc.drain(new long[16]);
    reported[0] += last.count() + last.unreported();
    assertEquals((long) threads * perThread, acc.hits());
    assertEquals((long) threads * perThread, reported[0]);
    assertTrue(refs[0] + last.count() > 0);
  }
}
