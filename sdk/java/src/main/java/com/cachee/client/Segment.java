package com.cachee.client;

import com.dynatrace.hash4j.hashing.Hasher64;
import com.dynatrace.hash4j.hashing.Hashing;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * A read-only view of the sidecar's shared-memory segment (docs/segment-format.md is
 * the contract; the Go reader is store/view.go). It never writes the segment and takes
 * no lock: every word it reads is an acquire load through a {@link VarHandle}, bracketed
 * by the writer's sequence words, and every offset read from the file is checked
 * against the arena before it is used, so a hostile or corrupt file yields {@link
 * #CORRUPT}, never a read outside the mapping. Safe for concurrent use.
 *
 * <p>A {@link MappedByteBuffer} holds at most 2 GiB, and a segment may be up to 16 GiB
 * (the sidecar's --max-memory), so the file is mapped in 1 GiB chunks. Every word a
 * reader loads is 8-byte aligned and so lies in one chunk; a value that straddles two
 * is copied in two parts. The mapping is released when the garbage collector collects
 * the buffers (Java 17 cannot unmap one safely while another thread may read it), so a
 * dropped segment's memory lingers until then; reads racing a drop read valid memory.
 *
 * <p>Residual risk, as for every reader: a third party that truncates the file (the
 * sidecar never does) makes a read fault; the JVM turns that into an {@link
 * InternalError}, which the client takes for a corrupt segment.
 */
final class Segment {
  static final String FILE = "cachee.seg";

  // Header fields (store/layout.go).
  static final long MAGIC = 0x4753454548434143L;
  static final int VERSION = 1;
  static final int HEADER_SIZE = 4096;
  static final int H_MAGIC = 0, H_VERSION = 8, H_HEADER_SIZE = 12, H_SEG_SIZE = 16, H_GENERATION = 24, H_SEED = 32,
      H_BUCKETS_LOG2 = 52, H_DIR_OFFSET = 56, H_DIR_MAX_DEPTH = 64, H_ARENA_OFFSET = 72, H_ARENA_SIZE = 80,
      H_CLOCK = 128, H_INDEX_VER = 192, H_GLOBAL_DEPTH = 200, H_STATE = 204;
  static final int STATE_INIT = 0, STATE_ACTIVE = 1, STATE_CLOSED = 2, STATE_RETIRED = 3;

  /** Sizes the writer accepts (store.MinMemory, store.MaxMemory). */
  static final long MIN_SIZE = 256 << 10, MAX_SIZE = 16L << 30;

  private static final int UNIT = 8, CACHE_LINE = 64, BUCKET_BYTES = 64, SLOTS = 7, PROBE_WINDOW = 4;
  private static final long CTRL_SEQ_ONE = 1 << 16, CTRL_OVF_MASK = 0xffff;
  private static final int MAX_DIR_DEPTH = 24, ENTRY_HEADER = 24, MIN_BLOCK = 32;
  private static final long W0_FREE = 1L << 58, W1_EXP_MASK = (1L << 48) - 1;
  /** The longest key the format can describe (20 bits of key length). */
  static final int MAX_KEY = 0xfffff;
  /** Attempts before a read gives up and asks the sidecar. */
  static final int MAX_READ_RETRIES = 64;
  /** An expiry further than this past the segment's clock cannot have been reached yet. */
  static final long NEAR_MS = 1000;

  /** Results of {@link #get}. */
  static final int MISS = 0, HIT = 1, RETRY = 2, CORRUPT = 3, STALE = 4, OTHER_TYPE = 5, KEY_INVALID = 6;

  /** Chunks of 1 GiB: every offset in a chunk fits an int, and a MappedByteBuffer holds it. */
  static final int CHUNK_SHIFT = 30;

  private static final VarHandle LONG =
      MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle INT =
      MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle KEY_LONG =
      MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

  private final ByteBuffer[] chunks;
  /** log2 of the chunk size: CHUNK_SHIFT, except in tests that cut a segment finer. */
  private final int chunkShift;
  private final long chunkMask;
  final Path path;
  final long size;
  final long generation;
  final long ino;
  final long dev;
  private final long dirOff;
  private final int maxDepth;
  private final int nbLog2;
  private final long lo;
  private final long hi;
  private final Hasher64 hasher;
  /** The reader's own real-time clock, unix ms; tests inject the fixtures' "now". */
  private final LongSupplier realtime;

  /** What a successful {@link #get} found: the entry's ref and the value's length. */
  static final class Read {
    long ref;
    int length;
    /** The value, when the caller passed no buffer. */
    byte[] value;
  }

  private Segment(Path path, ByteBuffer[] chunks, int chunkShift, long size, long ino, long dev, LongSupplier realtime)
      throws SegmentException {
    this.path = path;
    this.chunks = chunks;
    this.chunkShift = chunkShift;
    this.chunkMask = (1L << chunkShift) - 1;
    this.size = size;
    this.ino = ino;
    this.dev = dev;
    this.realtime = realtime;
    if (load(H_MAGIC) != MAGIC) {
      throw new SegmentException("bad magic");
    }
    if (load32(H_VERSION) != VERSION) {
      throw new SegmentException("version " + load32(H_VERSION) + ", this reader knows " + VERSION);
    }
    if (load32(H_HEADER_SIZE) != HEADER_SIZE || load(H_SEG_SIZE) != size) {
      throw new SegmentException("header describes another size");
    }
    Geometry g = Geometry.of(size);
    if (load32(H_BUCKETS_LOG2) != g.nbLog2 || load32(H_DIR_MAX_DEPTH) != g.maxDepth
        || load(H_DIR_OFFSET) != g.dirOff || load(H_ARENA_OFFSET) != g.arenaOff
        || load(H_ARENA_SIZE) != size - g.arenaOff) {
      throw new SegmentException("header describes another layout");
    }
    int st = load32(H_STATE);
    if (st != STATE_ACTIVE) {
      throw new SegmentException("state " + st, true);
    }
    this.nbLog2 = g.nbLog2;
    this.maxDepth = g.maxDepth;
    this.dirOff = g.dirOff;
    this.lo = g.arenaOff;
    this.hi = size;
    this.hasher = Hashing.xxh3_64(load(H_SEED));
    this.generation = load(H_GENERATION);
  }

  /** The layout that a segment's size fixes (store.geometry). */
  record Geometry(int nbLog2, int maxDepth, long dirOff, long arenaOff) {
    static Geometry of(long size) {
      long est = size - HEADER_SIZE;
      long nb = est / 256 / BUCKET_BYTES; // a table is about 1/256 of the segment
      int nbLog2 = Math.min(Math.max(63 - Long.numberOfLeadingZeros(nb), 3), 8);
      long tables = est / 40 / (((long) SLOTS << nbLog2) * 2 / 5) + 1;
      int maxDepth = 64 - Long.numberOfLeadingZeros(tables) + 1;
      maxDepth = Math.min(Math.max(maxDepth, 4), MAX_DIR_DEPTH);
      long dirOff = HEADER_SIZE;
      long arenaOff = (dirOff + (4L << maxDepth) + CACHE_LINE - 1) & ~(long) (CACHE_LINE - 1);
      return new Geometry(nbLog2, maxDepth, dirOff, arenaOff);
    }
  }

  /** A file that is not a segment this reader can use. */
  static final class SegmentException extends Exception {
    /** The file is a segment, but not one to read now (not active, no writer). */
    final boolean stale;

    SegmentException(String message) {
      this(message, false);
    }

    SegmentException(String message, boolean stale) {
      super(message, null, false, false);
      this.stale = stale;
    }
  }

  /** Maps dir/cachee.seg read-only and validates its header. */
  static Segment open(Path dir, LongSupplier realtime) throws IOException, SegmentException {
    Path path = dir.resolve(FILE);
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
      Map<String, Object> st = Files.readAttributes(path, "unix:mode,ino,dev", LinkOption.NOFOLLOW_LINKS);
      long size = ch.size();
      if (!Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS) || size < MIN_SIZE || size > MAX_SIZE || size % 4096 != 0) {
        throw new SegmentException(path + " is not a segment (" + size + " bytes)");
      }
      ByteBuffer[] chunks = new ByteBuffer[(int) ((size + (1L << CHUNK_SHIFT) - 1) >>> CHUNK_SHIFT)];
      for (int i = 0; i < chunks.length; i++) {
        long pos = (long) i << CHUNK_SHIFT;
        chunks[i] = ch.map(FileChannel.MapMode.READ_ONLY, pos, Math.min(size - pos, 1L << CHUNK_SHIFT));
      }
      // The mapping outlives the channel.
      return new Segment(path, chunks, CHUNK_SHIFT, size, (Long) st.get("ino"), (Long) st.get("dev"), realtime);
    }
  }

  /** A segment over bytes in memory, for tests that read fixtures and hostile bytes. */
  static Segment of(ByteBuffer bytes, LongSupplier realtime) throws SegmentException {
    return of(bytes, realtime, CHUNK_SHIFT);
  }

  /**
   * A segment over bytes in memory cut into chunks of {@code 1 << chunkShift} bytes (at
   * least 64), so that tests reach the paths of a segment over 1 GiB with small ones.
   */
  static Segment of(ByteBuffer bytes, LongSupplier realtime, int chunkShift) throws SegmentException {
    long size = bytes.capacity();
    if (size < MIN_SIZE || size % 4096 != 0 || !bytes.isDirect() || chunkShift < 6 || chunkShift > CHUNK_SHIFT) {
      throw new SegmentException("not a segment (" + size + " bytes)");
    }
    int n = (int) ((size + (1L << chunkShift) - 1) >>> chunkShift);
    ByteBuffer[] chunks = new ByteBuffer[n];
    for (int i = 0; i < n; i++) {
      int from = i << chunkShift;
      chunks[i] = bytes.slice(from, (int) Math.min(size - from, 1L << chunkShift)).order(ByteOrder.LITTLE_ENDIAN);
    }
    return new Segment(Path.of(FILE), chunks, chunkShift, size, 0, 0, realtime);
  }

  long load(long off) {
    return (long) LONG.getAcquire(chunks[(int) (off >>> chunkShift)], (int) (off & chunkMask));
  }

  int load32(long off) {
    return (int) INT.getAcquire(chunks[(int) (off >>> chunkShift)], (int) (off & chunkMask));
  }

  int state() {
    return load32(H_STATE);
  }

  long currentGeneration() {
    return load(H_GENERATION);
  }

  /** The writer's clock, unix ms. */
  long clock() {
    return load(H_CLOCK);
  }

  /** The hash of a key, as the writer computes it. */
  long hash(byte[] key) {
    return hasher.hashBytesToLong(key);
  }

  /**
   * Looks {@code key} up. On {@link #HIT}, {@code r} holds the ref and length; the value
   * is copied into {@code dst} at its position (which advances) when it fits there, or,
   * when {@code dst} is null, into a new array in {@code r.value}. A hit whose value does
   * not fit {@code dst} leaves {@code dst} as it was and {@code r.length} says what it
   * needs. Any result other than HIT and MISS means: ask the sidecar.
   */
  int get(byte[] key, ByteBuffer dst, Read r) {
    if (load32(H_STATE) != STATE_ACTIVE || load(H_GENERATION) != generation) {
      return STALE;
    }
    if (key.length == 0 || key.length > MAX_KEY) {
      return KEY_INVALID;
    }
    return lookup(hasher.hashBytesToLong(key), key, dst, r);
  }

  private long tableAt(long h, int depth) {
    if (depth < 0 || depth > maxDepth) {
      return -1;
    }
    long t = (load32(dirOff + (h & ((1L << depth) - 1)) * 4) & 0xffffffffL) * UNIT;
    if (t < lo || t % CACHE_LINE != 0 || t + ((long) BUCKET_BYTES << nbLog2) > hi) {
      return -1;
    }
    return t;
  }

  private int lookup(long h, byte[] key, ByteBuffer dst, Read r) {
    long nb = 1L << nbLog2;
    long home = h >>> (64 - nbLog2);
    long tag = h >>> 32;
    for (int attempt = 0; attempt < MAX_READ_RETRIES; attempt++) {
      if (attempt > 0 && attempt % 8 == 0) {
        Thread.yield();
      }
      long ver = load(H_INDEX_VER);
      if ((ver & 1) != 0) {
        continue;
      }
      long t = tableAt(h, load32(H_GLOBAL_DEPTH));
      if (t < 0) {
        if (load(H_INDEX_VER) == ver) {
          return CORRUPT;
        }
        continue;
      }
      long ovf = 0;
      boolean retry = false;
      probe:
      for (long p = 0; p < PROBE_WINDOW; p++) {
        long b = t + ((home + p) & (nb - 1)) * BUCKET_BYTES;
        long c = load(b);
        if ((c & CTRL_SEQ_ONE) != 0) {
          retry = true;
          break;
        }
        if (p == 0) {
          ovf = c & CTRL_OVF_MASK;
        }
        for (int i = 0; i < SLOTS; i++) {
          long s = load(b + 8 + i * 8L);
          if (s == 0 || (s >>> 32) != tag) {
            continue;
          }
          long e = (s & 0xffffffffL) * UNIT;
          long w0 = 0;
          long blockSize = 0;
          boolean valid = e >= lo && e + MIN_BLOCK <= hi;
          if (valid) {
            w0 = load(e);
            blockSize = (w0 & 0xffffffffL) * UNIT;
            valid = (w0 & W0_FREE) == 0 && kind(w0) == 0 && e + blockSize <= hi
                && ENTRY_HEADER + klen(w0) + pad(w0) <= blockSize;
          }
          if (!valid) {
            // A writer recovering the segment rewrites buckets under the index version
            // alone, so both must hold still to call this corruption.
            if (load(b) != c || load(H_INDEX_VER) != ver) {
              retry = true;
              break probe;
            }
            return CORRUPT;
          }
          if (klen(w0) != key.length || !keyEquals(e + ENTRY_HEADER, key)) {
            continue;
          }
          long w1 = load(e + 8);
          long vlen = blockSize - ENTRY_HEADER - key.length - pad(w0);
          int vtype = (int) (w0 >>> 61);
          if (vlen > Integer.MAX_VALUE - 16) {
            if (load(b) != c || load(H_INDEX_VER) != ver) {
              retry = true;
              break probe;
            }
            return CORRUPT; // no Java array holds it; the sidecar would refuse it anyway
          }
          int n = (int) vlen;
          long voff = e + ENTRY_HEADER + key.length;
          byte[] arr = null;
          boolean copied = false;
          if (vtype == 0) {
            if (dst == null) {
              arr = new byte[n];
              copyOut(voff, arr, n);
              copied = true;
            } else if (dst.remaining() >= n) {
              copyOut(voff, dst, n);
              copied = true;
            }
          }
          // The copy must be complete before the sequence is read again.
          VarHandle.acquireFence();
          if (load(b) != c || load(H_INDEX_VER) != ver) {
            retry = true;
            break probe;
          }
          if (vtype != 0) {
            return OTHER_TYPE; // not a string: only the sidecar knows its rules
          }
          if (expired(w1 & W1_EXP_MASK)) {
            r.ref = tag << 32;
            return MISS;
          }
          if (copied && dst != null) {
            dst.position(dst.position() + n);
          }
          r.ref = s;
          r.length = n;
          r.value = arr;
          return HIT;
        }
        // A slot we skipped may have changed under us (an overwrite frees the old
        // entry): only a bucket that held still proves the key is absent.
        if (load(b) != c) {
          retry = true;
          break;
        }
        if (p == 0 && ovf == 0) {
          break;
        }
      }
      if (!retry && load(H_INDEX_VER) == ver) {
        r.ref = tag << 32;
        return MISS;
      }
    }
    return RETRY;
  }

  /** The Expiry rule of docs/segment-format.md: the reader's own clock only near a deadline. */
  boolean expired(long expiry) {
    if (expiry == 0) {
      return false;
    }
    long c = load(H_CLOCK);
    if (expiry <= c) {
      return true;
    }
    if (expiry - c > NEAR_MS) {
      return false;
    }
    return expiry <= realtime.getAsLong();
  }

  private static int klen(long w0) {
    return (int) ((w0 >>> 32) & 0xfffff);
  }

  private static int pad(long w0) {
    return (int) ((w0 >>> 52) & 0x3f);
  }

  private static int kind(long w0) {
    return (int) ((w0 >>> 59) & 0x3);
  }

  /** Whether the key.length bytes at the aligned offset off equal key, by word loads. */
  private boolean keyEquals(long off, byte[] key) {
    int n = key.length;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      if (load(off + i) != (long) KEY_LONG.get(key, i)) {
        return false;
      }
    }
    if (i < n) {
      long w = load(off + i);
      long k = 0;
      for (int j = n - 1; j >= i; j--) {
        k = (k << 8) | (key[j] & 0xffL);
      }
      long mask = (1L << (8 * (n - i))) - 1;
      return (w & mask) == k;
    }
    return true;
  }

  /**
   * Copies n bytes at off into out. A bulk copy reads exactly those bytes, all inside
   * the entry's block, which the caller bounds-checked; only a value across a 1 GiB
   * chunk boundary takes two copies.
   */
  private void copyOut(long off, byte[] out, int n) {
    int done = 0;
    while (done < n) {
      long at = off + done;
      ByteBuffer c = chunks[(int) (at >>> chunkShift)];
      int idx = (int) (at & chunkMask);
      int k = Math.min(n - done, c.capacity() - idx);
      c.get(idx, out, done, k);
      done += k;
    }
  }

  private void copyOut(long off, ByteBuffer out, int n) {
    int pos = out.position();
    int done = 0;
    while (done < n) {
      long at = off + done;
      ByteBuffer c = chunks[(int) (at >>> chunkShift)];
      int idx = (int) (at & chunkMask);
      int k = Math.min(n - done, c.capacity() - idx);
      out.put(pos + done, c, idx, k);
      done += k;
    }
  }
}
