package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Hostile segment bytes: a segment the real binary wrote, with words overwritten by a
 * seeded random mutator (where the reader looks: header, directory, buckets, entry
 * headers). Opening it either succeeds or refuses it with the reader's own exception,
 * and every read ends in one of the reader's results: never another exception, never a
 * read outside the mapping. {@code -Dfuzz.iterations=N} and {@code -Dfuzz.seed=S} run it
 * longer or elsewhere; a failure names the seed and iteration that reproduce it.
 */
class SegmentFuzzTest {
  private static final int KEYS = 200;
  private static CacheeServer server;
  private static byte[] image;

  @BeforeAll
  static void start() throws Exception {
    server = CacheeServer.start("--max-memory=256kb");
    try (var c = CacheeClient.builder().address("unix://" + server.sock).withoutShm().timeout(Duration.ofSeconds(10)).build()) {
      Random rnd = new Random(3);
      for (int i = 0; i < KEYS; i++) {
        byte[] v = new byte[rnd.nextInt(600)];
        rnd.nextBytes(v);
        c.set(key(i), v, i % 4 == 0 ? SetOptions.ttl(Duration.ofMinutes(5)) : SetOptions.NONE);
      }
    }
    image = Files.readAllBytes(server.shm.resolve(Segment.FILE));
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
  }

  static byte[] key(int i) {
    return ("fz:" + i + ":" + "k".repeat(i % 19)).getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void theImageItselfReads() throws Exception {
    Segment s = Segment.of(copy(image), System::currentTimeMillis);
    Segment.Read r = new Segment.Read();
    int hits = 0;
    for (int i = 0; i < KEYS; i++) {
      hits += s.get(key(i), null, r) == Segment.HIT ? 1 : 0;
    }
    assertTrue(hits >= KEYS * 9 / 10, "hits " + hits);
  }

  @Test
  void hostileBytesYieldTheReadersOwnResults() {
    fuzz(image, SegmentFuzzTest::key, KEYS + 20);
  }

  /** Mutates {@code img} many times and reads keys 0..keys-1 of each mutant. */
  static void fuzz(byte[] img, java.util.function.IntFunction<byte[]> keys, int n) {
    long seed = Long.getLong("fuzz.seed", 20240601L);
    int iterations = Integer.getInteger("fuzz.iterations", 400);
    int[] results = new int[Segment.KEY_INVALID + 2]; // the last: segments refused at open
    for (int it = 0; it < iterations; it++) {
      Random rnd = new Random(seed * 1_000_003L + it);
      try {
        once(img, rnd, keys, n, results);
      } catch (Throwable t) {
        throw new AssertionError("seed " + seed + " iteration " + it + ": " + t, t);
      }
    }
    // The mutants reached every kind of answer: the mutator is not too timid to matter.
    for (int res : new int[] {Segment.HIT, Segment.MISS, Segment.CORRUPT, Segment.STALE, results.length - 1}) {
      assertTrue(results[res] > 0, "no result " + res + " in " + java.util.Arrays.toString(results));
    }
  }

  /** Like {@link #fuzz}, without asking every kind of answer of the mutants (a segment that never opens has none). */
  static void fuzzQuietly(byte[] img, java.util.function.IntFunction<byte[]> keys, int n, int iterations) {
    int[] results = new int[Segment.KEY_INVALID + 2];
    for (int it = 0; it < iterations; it++) {
      Random rnd = new Random(20240601L * 1_000_003L + it);
      try {
        once(img, rnd, keys, n, results);
      } catch (Throwable t) {
        throw new AssertionError("iteration " + it + ": " + t, t);
      }
    }
  }

  static ByteBuffer copy(byte[] img) {
    return ByteBuffer.allocateDirect(img.length).order(ByteOrder.LITTLE_ENDIAN).put(img).clear();
  }

  private static void once(byte[] img, Random rnd, java.util.function.IntFunction<byte[]> keys, int n, int[] results) {
    ByteBuffer b = copy(img);
    int words = img.length / 8;
    int before = rnd.nextInt(20);
    int after = rnd.nextInt(4);
    for (int i = 0; i < before; i++) {
      mutate(b, rnd, words);
    }
    Segment s;
    try {
      // One mutant in four over small chunks: the paths of a segment over 1 GiB.
      s = Segment.of(b, System::currentTimeMillis, rnd.nextInt(4) == 0 ? 6 + rnd.nextInt(8) : Segment.CHUNK_SHIFT);
    } catch (Segment.SegmentException e) {
      results[results.length - 1]++;
      return; // refused: the reader's own answer
    }
    // The header may go wrong after opening too, as a writer gone wrong would have it.
    for (int i = 0; i < after; i++) {
      mutate(b, rnd, 4096 / 8);
    }
    Segment.Read r = new Segment.Read();
    ByteBuffer dst = ByteBuffer.allocate(700);
    for (int i = 0; i < n; i++) {
      dst.clear();
      int res = s.get(keys.apply(i), i % 2 == 0 ? null : dst, r);
      if (res < Segment.MISS || res > Segment.KEY_INVALID) {
        throw new AssertionError("result " + res);
      }
      results[res]++;
    }
  }

  /** The header words a reader uses. */
  private static final int[] HEADER_WORDS = {Segment.H_GENERATION, Segment.H_SEED, Segment.H_CLOCK,
      Segment.H_INDEX_VER, Segment.H_GLOBAL_DEPTH, Segment.H_BUCKETS_LOG2 & ~7, Segment.H_DIR_MAX_DEPTH};

  private static void mutate(ByteBuffer b, Random rnd, int words) {
    // Where the reader looks: mostly words it follows (slots, entry headers, the
    // directory), sometimes the header.
    int w = rnd.nextInt(10) != 0 ? rnd.nextInt(words)
        : rnd.nextBoolean() ? rnd.nextInt(4096 / 8)
        : HEADER_WORDS[rnd.nextInt(HEADER_WORDS.length)] / 8;
    long old = b.getLong(w * 8);
    long v = switch (rnd.nextInt(8)) {
      case 0 -> rnd.nextLong();
      case 1 -> old ^ (1L << rnd.nextInt(64)); // one bit
      case 2 -> (old & 0xffffffff00000000L) | rnd.nextInt(words + 64); // an offset in units, in or just past the file
      case 3 -> old + rnd.nextInt(17) - 8;
      case 4 -> (old & ~(0x7L << 58)) | ((long) rnd.nextInt(8) << 58); // free and kind bits
      case 5 -> (old & ~(0x7L << 61)) | ((long) rnd.nextInt(8) << 61); // value type
      case 6 -> (old & 0xffffffffL) | ((long) rnd.nextInt(1 << 20) << 32); // key length
      default -> new long[] {0, -1, 1, Long.MIN_VALUE, Long.MAX_VALUE}[rnd.nextInt(5)];
    };
    b.putLong(w * 8, v);
  }
}
