package com.cachee.client;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The refs of hits read from the segment, until the client reports them with
 * RecordAccess. Recording never blocks and never allocates.
 *
 * <p>Lossy on purpose: each stripe is a ring of {@link #RING} refs, and a stripe that
 * fills between two flushes overwrites its oldest. The sidecar's policy needs a fair
 * sample of the hot keys, not every hit, and reporting every hit of a tight read loop
 * would cost the sidecar more than the reads; the count of hits the sample does not name
 * is reported too, so the sidecar's hit count stays exact.
 */
final class AccessBuffer {
  static final int RING = 256;
  /** Keeps a flush within RecordAccess's limit of 65536 refs. */
  private static final int MAX_STRIPES = 64;
  /** Longs between two stripes' heads: 128 bytes, so that they share no cache line. */
  private static final int PAD = 16;

  private final int mask;
  private final AtomicLongArray heads; // positions claimed per stripe; their sum is the hit count
  private final AtomicLongArray slots; // RING refs per stripe
  private final long[] tails; // the flusher's positions; only the flusher uses them
  private long accounted; // the hit count at the last flush; only the flusher uses it
  final AtomicLong dropped = new AtomicLong();
  final AtomicLong sent = new AtomicLong();
  /** Set when a stripe half fills, so that the flusher goes early. */
  volatile boolean full;

  AccessBuffer() {
    int n = 1;
    while (n < 2 * Runtime.getRuntime().availableProcessors() && n < MAX_STRIPES) {
      n *= 2;
    }
    mask = n - 1;
    heads = new AtomicLongArray(n * PAD);
    slots = new AtomicLongArray(n * RING);
    tails = new long[n];
  }

  /** Notes one hit. Threads mostly keep to their own stripe (picked by thread id). */
  @SuppressWarnings("deprecation") // Thread.threadId is Java 19+
  void record(long ref) {
    int s = (int) ((Thread.currentThread().getId() * 0x9e3779b97f4a7c15L) >>> 40) & mask;
    long i = heads.getAndIncrement(s * PAD);
    int at = s * RING + (int) (i & (RING - 1));
    // A hot key writes the ref its slot already holds from the last lap: skip that store.
    if (slots.getPlain(at) != ref) {
      slots.setRelease(at, ref);
    }
    if ((i & (RING / 2 - 1)) == RING / 2 - 1) {
      full = true;
    }
  }

  /** The number of hits recorded so far. */
  long hits() {
    long n = 0;
    for (int s = 0; s <= mask; s++) {
      n += heads.get(s * PAD);
    }
    return n;
  }

  /** A flush's content: the refs and the hits since the last flush that they do not name. */
  record Batch(long[] refs, int count, long unreported) {}

  /**
   * Takes the refs recorded since the last drain into {@code buf} (grown as needed). Only
   * the flusher calls it. A writer that claimed a position but has not stored its ref
   * yet leaves a zero, which is skipped: its ref is picked up a lap later, or lost.
   */
  Batch drain(long[] buf) {
    full = false;
    int count = 0;
    for (int s = 0; s <= mask; s++) {
      long h = heads.get(s * PAD);
      long t = tails[s];
      if (h - t > RING) {
        dropped.addAndGet(h - t - RING);
        t = h - RING;
      }
      for (; t < h; t++) {
        long ref = slots.getAndSet(s * RING + (int) (t & (RING - 1)), 0);
        if (ref != 0) {
          if (count == buf.length) {
            buf = java.util.Arrays.copyOf(buf, Math.max(64, 2 * buf.length));
          }
          buf[count++] = ref;
        }
      }
      tails[s] = h;
    }
    long total = hits();
    long delta = total - accounted;
    if (count > delta) {
      // A ref left in its slot by a writer that stored it after an earlier drain passed
      // it is taken again a lap later: more refs than hits since the last flush. Send
      // only as many as there were hits, so that the sidecar's count stays exact.
      count = (int) Math.max(0, delta);
    }
    accounted = total;
    return new Batch(buf, count, delta - count);
  }
}
