package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The reader over segments that the real binary writes. */
class SegmentTest {
  private static CacheeServer server;
  private static CacheeClient c;

  @BeforeAll
  static void start() throws Exception {
    server = CacheeServer.start();
    c = CacheeClient.builder().address("unix://" + server.sock).withoutShm().timeout(Duration.ofSeconds(10)).build();
  }

  @AfterAll
  static void stop() throws Exception {
    c.close();
    server.close();
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static Segment open(AtomicLong now) throws Exception {
    return Segment.open(server.shm, now::get);
  }

  @Test
  void hashVectors() throws Exception {
    // docs/segment-format.md's test vectors.
    assertEquals(0x1d4738214b98f74fL, com.dynatrace.hash4j.hashing.Hashing.xxh3_64(42).hashBytesToLong(utf8("user:42")));
    assertEquals(0x2d06800538d394c2L, com.dynatrace.hash4j.hashing.Hashing.xxh3_64(0).hashBytesToLong(new byte[0]));
    assertEquals(0xd7aa4e081cbf1f58L,
        com.dynatrace.hash4j.hashing.Hashing.xxh3_64(0x9e3779b97f4a7c15L).hashBytesToLong(utf8("x".repeat(300))));
  }

  @Test
  void readsWhatTheServerStored() throws Exception {
    Segment s = open(new AtomicLong(System.currentTimeMillis()));
    Segment.Read r = new Segment.Read();
    for (int n : new int[] {0, 1, 7, 8, 9, 100, 4095, 70000}) {
      byte[] key = utf8("seg:" + n);
      byte[] v = new byte[n];
      new Random(n).nextBytes(v);
      assertTrue(c.set(key, v));
      assertEquals(Segment.HIT, s.get(key, null, r), "key of " + n);
      assertArrayEquals(v, r.value);
      assertEquals(n, r.length);
      assertEquals(s.hash(key) >>> 32, r.ref >>> 32, "the ref is the slot word, whose top half is the tag");
      // Into a buffer, at its position.
      ByteBuffer dst = ByteBuffer.allocateDirect(n + 3).position(3);
      assertEquals(Segment.HIT, s.get(key, dst, r));
      assertEquals(n + 3, dst.position());
      byte[] got = new byte[n];
      dst.get(3, got);
      assertArrayEquals(v, got);
      // A buffer too small is left as it was, and the length says what it needs.
      if (n > 0) {
        ByteBuffer small = ByteBuffer.allocate(n - 1);
        assertEquals(Segment.HIT, s.get(key, small, r));
        assertEquals(n, r.length);
        assertEquals(0, small.position());
      }
    }
    assertEquals(Segment.MISS, s.get(utf8("seg:absent"), null, r));
    assertEquals(Segment.KEY_INVALID, s.get(new byte[0], null, r));
    // Many keys: they spread over tables, splits and overflow windows.
    for (int i = 0; i < 3000; i++) {
      c.set(utf8("many:" + i), utf8("v" + i));
    }
    int hits = 0;
    for (int i = 0; i < 3000; i++) {
      int res = s.get(utf8("many:" + i), null, r);
      if (res == Segment.HIT) {
        assertArrayEquals(utf8("v" + i), r.value);
        hits++;
      } else {
        assertEquals(Segment.MISS, res); // evicted from the 8 MB store
      }
    }
    assertTrue(hits > 1000, "hits " + hits);
  }

  @Test
  void expiryFollowsTheSegmentClockAndNearItTheReadersOwn() throws Exception {
    AtomicLong now = new AtomicLong(System.currentTimeMillis());
    Segment s = open(now);
    Segment.Read r = new Segment.Read();
    byte[] near = utf8("ttl:near");
    byte[] far = utf8("ttl:far");
    c.set(near, utf8("n"), SetOptions.ttl(Duration.ofMillis(800)));
    c.set(far, utf8("f"), SetOptions.ttl(Duration.ofSeconds(30)));
    assertEquals(Segment.HIT, s.get(near, null, r));
    // Within NEAR_MS of the segment clock, the reader's own clock decides.
    now.set(System.currentTimeMillis() + 900);
    assertEquals(Segment.MISS, s.get(near, null, r));
    // Further than NEAR_MS ahead, the deadline cannot have been reached yet.
    now.set(System.currentTimeMillis() + 60_000);
    assertEquals(Segment.HIT, s.get(far, null, r));
    assertEquals(Segment.MISS, s.get(near, null, r));
    // Once the segment's clock passes the deadline, it is expired whatever the reader's clock.
    now.set(0);
    Thread.sleep(1000);
    assertEquals(Segment.MISS, s.get(near, null, r));
    assertTrue(s.expired(1));
    assertTrue(!s.expired(0));
  }

  @Test
  void geometryAgreesWithTheWriterAtEverySize() throws Exception {
    for (String size : new String[] {"256kb", "1mb", "3mb", "64mb"}) {
      try (var srv = CacheeServer.start("--max-memory=" + size)) {
        Segment s = Segment.open(srv.shm, System::currentTimeMillis);
        assertEquals(Files.size(srv.shm.resolve(Segment.FILE)), s.size);
      }
    }
  }

  @Test
  void staleWhenStateOrGenerationMoves() throws Exception {
    ByteBuffer b = snapshot();
    Segment s = Segment.of(b, System::currentTimeMillis);
    Segment.Read r = new Segment.Read();
    c.set("stale:k", "v");
    b = snapshot();
    s = Segment.of(b, System::currentTimeMillis);
    assertEquals(Segment.HIT, s.get(utf8("stale:k"), null, r));
    b.putInt(Segment.H_STATE, Segment.STATE_RETIRED);
    assertEquals(Segment.STALE, s.get(utf8("stale:k"), null, r));
    b.putInt(Segment.H_STATE, Segment.STATE_ACTIVE);
    b.putLong(Segment.H_GENERATION, s.generation + 1);
    assertEquals(Segment.STALE, s.get(utf8("stale:k"), null, r));
    b.putLong(Segment.H_GENERATION, s.generation);
    // An odd index version held still: the reader gives up and asks the sidecar.
    b.putLong(Segment.H_INDEX_VER, b.getLong(Segment.H_INDEX_VER) | 1);
    assertEquals(Segment.RETRY, s.get(utf8("stale:k"), null, r));
  }

  @Test
  void refusesHeadersThatDescribeAnotherFile() throws Exception {
    for (int[] field : new int[][] {{Segment.H_MAGIC, 8}, {Segment.H_VERSION, 4}, {Segment.H_SEG_SIZE, 8},
        {Segment.H_BUCKETS_LOG2, 4}, {Segment.H_DIR_OFFSET, 8}, {Segment.H_DIR_MAX_DEPTH, 4},
        {Segment.H_ARENA_OFFSET, 8}, {Segment.H_ARENA_SIZE, 8}, {Segment.H_STATE, 4}}) {
      ByteBuffer b = snapshot();
      b.put(field[0], (byte) (b.get(field[0]) ^ 0x10));
      var e = assertThrows(Segment.SegmentException.class, () -> Segment.of(b, System::currentTimeMillis));
      assertEquals(field[0] == Segment.H_STATE, e.stale, e.getMessage());
    }
  }

  @Test
  void writerLockIsSeenInProcLocks() throws Exception {
    Map<String, Object> st = Files.readAttributes(server.shm.resolve(Segment.FILE), "unix:ino,dev");
    long dev = (Long) st.get("dev");
    long ino = (Long) st.get("ino");
    // The server runs in this process's pid namespace, so its lock is visible.
    assertEquals(WriterLock.Seen.HELD, WriterLock.probe(dev, ino));
    assertEquals(WriterLock.Seen.NOT_SEEN, WriterLock.probe(dev, ino + 1));
    String id = WriterLock.devIno(dev, ino);
    assertTrue(WriterLock.find("1: FLOCK  ADVISORY  WRITE 7 " + id + " 0 EOF\n", dev, ino));
    assertTrue(!WriterLock.find("1: FLOCK  ADVISORY  READ 7 " + id + " 0 EOF\n", dev, ino));
    assertTrue(!WriterLock.find("1: -> FLOCK  ADVISORY  WRITE 7 " + id + " 0 EOF\n", dev, ino));
    assertTrue(!WriterLock.find("1: POSIX  ADVISORY  WRITE 7 " + id + " 0 EOF\n", dev, ino));
    assertEquals("fe:00:12", WriterLock.devIno(0xfe00, 12));
    // glibc's makedev(0x103, 2) and makedev(8, 0x100).
    assertEquals("103:02:5", WriterLock.devIno(0x10302, 5));
    assertEquals("08:100:5", WriterLock.devIno(0x100800, 5));
  }

  @Test
  void probeDeclinesWhatIsNotALiveSegment() throws Exception {
    assertNull(SharedMemory.probe(server.shm.resolve(Segment.FILE)));
    var dir = Files.createTempDirectory("cachee-probe");
    try {
      var f = dir.resolve(Segment.FILE);
      assertTrue(SharedMemory.probe(f).contains("NoSuchFile"));
      Files.write(f, new byte[10]);
      assertTrue(SharedMemory.probe(f).contains("short header"));
      Files.write(f, new byte[4096]);
      assertTrue(SharedMemory.probe(f).contains("bad magic"));
    } finally {
      try (var p = Files.walk(dir)) {
        p.sorted(java.util.Collections.reverseOrder()).forEach(x -> x.toFile().delete());
      }
    }
  }

  @Test
  void shmDirComesFromTheOptionThenTheEnvironment() {
    assertEquals("/x", SharedMemory.dir("/x", Map.of("CACHEE_SHM", "/y")).toString());
    assertNull(SharedMemory.dir("", Map.of("CACHEE_SHM", "/y")));
    assertEquals("/y", SharedMemory.dir(null, Map.of("CACHEE_SHM", "/y")).toString());
    assertNull(SharedMemory.dir(null, Map.of("CACHEE_SHM", "")));
    assertEquals("/dev/shm/cachee", SharedMemory.dir(null, Map.of()).toString());
  }

  /** A copy of the live segment in memory, which the test may change. */
  static ByteBuffer snapshot() throws Exception {
    byte[] bytes = Files.readAllBytes(server.shm.resolve(Segment.FILE));
    return ByteBuffer.allocateDirect(bytes.length).order(ByteOrder.LITTLE_ENDIAN).put(bytes).clear();
  }
}
