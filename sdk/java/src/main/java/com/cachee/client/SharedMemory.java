package com.cachee.client;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;

/**
 * Decides which segment, if any, reads go to, and reports the hits made there. One
 * daemon thread opens, checks and drops segments; reads only load {@link #held}.
 *
 * <p>A segment is read only once all of these hold: the file is a segment in state
 * active, its writer's clock lags real time by at most the lag bound, the writer's lock
 * is held (when this process can see it, {@link WriterLock}), and the sidecar at the
 * client's gRPC target reports the segment's generation in Stats, so that shared-memory
 * reads and gRPC calls reach the same store. It is dropped when a check fails (every
 * check interval) or a read sees the segment closed or re-opened (at once, through
 * {@link #wake}); the thread then maps the segment again, with backoff, once the sidecar
 * is back.
 */
final class SharedMemory implements AutoCloseable {
  static final String DEFAULT_DIR = "/dev/shm/cachee";
  static final Duration DEFAULT_CHECK_INTERVAL = Duration.ofMillis(20);
  static final Duration DEFAULT_MAX_LAG = Duration.ofMillis(500);
  static final Duration DEFAULT_FLUSH_INTERVAL = Duration.ofMillis(50);
  private static final long MIN_MAP_BACKOFF = TimeUnit.MILLISECONDS.toNanos(100);
  private static final long MAX_MAP_BACKOFF = TimeUnit.SECONDS.toNanos(5);

  private static final System.Logger LOG = System.getLogger("com.cachee.client");

  /** What the segment thread needs from the sidecar over gRPC. */
  interface Sidecar {
    /** The sidecar's segment generation (Stats). */
    long generation() throws CacheeException;

    /** Sends RecordAccess without waiting; calls {@code done} when it completes, either way. */
    void recordAccess(long[] refs, int count, long unreported, Runnable done);
  }

  private final Path dir;
  private final Path path;
  private final Sidecar sidecar;
  private final long checkNanos;
  private final long maxLagMs;
  private final long flushNanos;
  private final LongSupplier realtime;
  final AccessBuffer acc = new AccessBuffer();

  /** The segment reads go to; null while there is none to read. */
  volatile Segment held;

  private Segment cand;
  private boolean candLockSeen;
  private boolean heldLockSeen;
  private long nextMap;
  private long mapBackoff;
  private long nextVerify;
  private long verifyWait;
  private String lastReason = "";
  private long nextFlush;
  private long lastFlush;
  private long[] flushBuf = new long[256];
  private final AtomicBoolean flushing = new AtomicBoolean();

  private final Thread thread;
  private volatile boolean closed;
  private volatile boolean woken;

  // Counters, for tests and diagnostics.
  final AtomicLong maps = new AtomicLong();
  final AtomicLong stale = new AtomicLong();
  final AtomicLong fallbacks = new AtomicLong();
  final AtomicLong contended = new AtomicLong();
  final AtomicLong corrupt = new AtomicLong();

  SharedMemory(Path dir, Sidecar sidecar, Duration checkInterval, Duration maxLag, Duration flushInterval, LongSupplier realtime) {
    this.dir = dir;
    this.path = dir.resolve(Segment.FILE);
    this.sidecar = sidecar;
    this.checkNanos = checkInterval.toNanos();
    this.maxLagMs = maxLag.toMillis();
    this.flushNanos = flushInterval.toNanos();
    this.realtime = realtime;
    this.thread = new Thread(this::run, "cachee-shm " + path);
    thread.setDaemon(true);
    thread.start();
  }

  /**
   * The directory of the segment: {@code explicit} when given ("" turns shared memory
   * off), else CACHEE_SHM (set and empty turns it off), else /dev/shm/cachee. Null: off.
   */
  static Path dir(String explicit, Map<String, String> env) {
    String d = explicit != null ? explicit : env.getOrDefault("CACHEE_SHM", DEFAULT_DIR);
    return d.isEmpty() ? null : Path.of(d);
  }

  /** A read saw the segment closed or re-opened: have the thread drop it now. */
  void wake() {
    woken = true;
    LockSupport.unpark(thread);
  }

  /** Counts a read that the segment did not answer, by its result. */
  void fellBack(int res) {
    fallbacks.incrementAndGet();
    switch (res) {
      case Segment.STALE -> wake();
      case Segment.RETRY -> contended.incrementAndGet();
      case Segment.CORRUPT -> corrupt.incrementAndGet();
      default -> {}
    }
  }

  /** A read faulted (a third party truncated the file): drop the segment. */
  void faulted(Throwable t) {
    corrupt.incrementAndGet();
    Segment s = held;
    if (s != null) {
      held = null;
      LOG.log(Level.INFO, "cachee: stopped reading shared memory: a read faulted: " + t);
    }
    wake();
  }

  @Override
  public void close() {
    closed = true;
    held = null;
    LockSupport.unpark(thread);
    try {
      thread.join(TimeUnit.SECONDS.toMillis(5));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void run() {
    long now = System.nanoTime();
    nextFlush = now + flushNanos;
    long nextCheck = now;
    while (!closed) {
      now = System.nanoTime();
      if (woken || now - nextCheck >= 0) {
        woken = false;
        try {
          step(now);
        } catch (RuntimeException e) {
          note("segment check failed: " + e);
        }
        nextCheck = now + checkNanos;
      }
      // Flush on time, or early when a stripe fills, but never more often than five
      // times an interval, so that a hot read loop costs the sidecar a bounded number of calls.
      if (now - nextFlush >= 0 || (acc.full && now - lastFlush >= flushNanos / 5)) {
        flush();
        lastFlush = now;
        nextFlush = now + flushNanos;
      }
      long wait = Math.min(nextCheck, nextFlush) - System.nanoTime();
      if (wait > 0) {
        LockSupport.parkNanos(this, Math.min(wait, acc.full ? flushNanos / 5 : wait));
      }
    }
    held = null;
    flush();
  }

  private void flush() {
    if (!flushing.compareAndSet(false, true)) {
      return; // the last one is still on its way; its refs are not lost, only later
    }
    AccessBuffer.Batch b = acc.drain(flushBuf);
    flushBuf = b.refs();
    if (b.count() == 0 && b.unreported() == 0) {
      flushing.set(false);
      return;
    }
    sidecar.recordAccess(b.refs(), b.count(), b.unreported(), () -> flushing.set(false));
  }

  /** Checks the published segment, or works toward publishing one. */
  private void step(long now) {
    Segment h = held;
    if (h != null) {
      String why = check(h, true);
      if (why == null) {
        return;
      }
      held = null;
      stale.incrementAndGet();
      LOG.log(Level.INFO, "cachee: stopped reading shared memory; reading over gRPC until the sidecar is back: " + why);
      lastReason = why;
    } else if (heldLockSeen) {
      heldLockSeen = false;
    }
    if (cand == null) {
      if (now - nextMap < 0) {
        return;
      }
      String why = probe(path);
      if (why != null) {
        note(why);
        return;
      }
      try {
        cand = Segment.open(dir, realtime);
        candLockSeen = false;
      } catch (IOException | Segment.SegmentException e) {
        mapFailed(now, path + ": " + e.getMessage());
        return;
      }
    }
    String why = check(cand, false);
    if (why != null) {
      cand = null;
      mapFailed(now, why);
      return;
    }
    if (now - nextVerify < 0) {
      return;
    }
    why = verify(cand.generation);
    if (why != null) {
      verifyWait = Math.min(Math.max(2 * verifyWait, checkNanos), TimeUnit.SECONDS.toNanos(1));
      nextVerify = now + verifyWait;
      note(why);
      return;
    }
    heldLockSeen = candLockSeen;
    held = cand;
    cand = null;
    mapBackoff = 0;
    verifyWait = 0;
    nextMap = now;
    nextVerify = now;
    lastReason = "";
    maps.incrementAndGet();
    LOG.log(Level.INFO, "cachee: reading shared memory " + path + " generation " + Long.toHexString(held.generation));
  }

  /**
   * Why {@code s} no longer reflects a live writer, or null when it does: it was closed
   * or replaced, the writer restarted on it, the writer's lock is gone (once seen), or
   * the writer's clock lags real time by more than the bound.
   */
  private String check(Segment s, boolean isHeld) {
    int st = s.state();
    if (st != Segment.STATE_ACTIVE) {
      return "segment state " + st;
    }
    if (s.currentGeneration() != s.generation) {
      return "writer restarted";
    }
    try {
      Map<String, Object> a = Files.readAttributes(path, "unix:ino,dev", LinkOption.NOFOLLOW_LINKS);
      if ((Long) a.get("ino") != s.ino || (Long) a.get("dev") != s.dev) {
        return "segment file replaced";
      }
    } catch (IOException | RuntimeException e) {
      return "segment file gone: " + e.getMessage();
    }
    boolean seen = WriterLock.probe(s.dev, s.ino) == WriterLock.Seen.HELD;
    boolean seenBefore = isHeld ? heldLockSeen : candLockSeen;
    if (seen) {
      if (isHeld) {
        heldLockSeen = true;
      } else {
        candLockSeen = true;
      }
    } else if (seenBefore) {
      return "no writer holds the segment's lock";
    }
    long lag = realtime.getAsLong() - s.clock();
    if (lag > maxLagMs) {
      return "writer clock " + lag + " ms behind";
    }
    return null;
  }

  /** Asks the sidecar for its generation: only the segment it writes is read. */
  private String verify(long gen) {
    long g;
    try {
      g = sidecar.generation();
    } catch (CacheeException e) {
      return "cannot confirm the segment with the sidecar: " + e.getMessage();
    }
    if (g != gen) {
      return String.format("segment %s has generation %016x but the sidecar reports %016x: not its segment (yet)", path, gen, g);
    }
    return null;
  }

  private void mapFailed(long now, String why) {
    mapBackoff = Math.min(Math.max(2 * mapBackoff, MIN_MAP_BACKOFF), MAX_MAP_BACKOFF);
    nextMap = now + mapBackoff;
    note(why);
  }

  /** Logs why shared memory is not in use, once per distinct reason. */
  private void note(String why) {
    if (!why.equals(lastReason)) {
      lastReason = why;
      LOG.log(Level.DEBUG, "cachee: not reading shared memory: " + why);
    }
  }

  /**
   * Why {@code path} does not look like a segment a live sidecar serves, without mapping
   * it, or null when it does: a regular file whose header has the magic and state active.
   */
  static String probe(Path path) {
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
      if (!Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS)) {
        return path + ": not a segment";
      }
      ByteBuffer hdr = ByteBuffer.allocate(Segment.H_STATE + 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      while (hdr.hasRemaining()) {
        if (ch.read(hdr, hdr.position()) < 0) {
          return path + ": not a segment (short header)";
        }
      }
      if (hdr.getLong(Segment.H_MAGIC) != Segment.MAGIC) {
        return path + ": not a segment (bad magic)";
      }
      int st = hdr.getInt(Segment.H_STATE);
      if (st != Segment.STATE_ACTIVE) {
        return path + ": segment not active (state " + st + ")";
      }
      return null;
    } catch (IOException | RuntimeException e) {
      return path + ": " + e;
    }
  }
}
