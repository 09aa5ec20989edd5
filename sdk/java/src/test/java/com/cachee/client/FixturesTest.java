package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The shared segment conformance fixtures (sdk/testdata/segments), every case. */
class FixturesTest {
  static final Path DIR = Path.of("../testdata/segments");

  static JsonObject load(String name) throws IOException {
    return JsonParser.parseString(Files.readString(DIR.resolve(name))).getAsJsonObject();
  }

  /** A key or value: hex, or with len that pattern repeated and cut to len bytes. */
  static byte[] bytes(JsonObject o) {
    byte[] pattern = HexFormat.of().parseHex(o.get("hex").getAsString());
    if (!o.has("len")) {
      return pattern;
    }
    byte[] out = new byte[o.get("len").getAsInt()];
    for (int i = 0; i < out.length; i++) {
      out[i] = pattern[i % pattern.length];
    }
    return out;
  }

  /** What this reader answers for one case, in the fixtures' words. */
  static String read(Path dir, byte[] key, long nowMs, Segment.Read r, ByteBuffer dst, int chunkShift) throws IOException {
    Segment s;
    try {
      if (chunkShift == Segment.CHUNK_SHIFT) {
        s = Segment.open(dir, () -> nowMs);
      } else {
        // The same bytes cut into small chunks: the paths of a segment over 1 GiB.
        s = Segment.of(SegmentFuzzTest.copy(Files.readAllBytes(dir.resolve(Segment.FILE))), () -> nowMs, chunkShift);
      }
    } catch (Segment.SegmentException e) {
      return e.stale ? "stale" : "format";
    }
    return switch (s.get(key, dst, r)) {
      case Segment.HIT -> "hit";
      case Segment.MISS -> "miss";
      case Segment.OTHER_TYPE -> "wrong_type";
      case Segment.RETRY -> "retry";
      case Segment.CORRUPT -> "corrupt";
      case Segment.STALE -> "stale";
      default -> "key invalid";
    };
  }

  @Test
  void everyCase() throws IOException {
    int n = 0;
    for (JsonElement e : load("cases.json").getAsJsonArray("cases")) {
      JsonObject c = e.getAsJsonObject();
      String name = c.get("name").getAsString() + " (" + c.get("why").getAsString() + ")";
      Path dir = DIR.resolve(c.get("segment").getAsString());
      byte[] key = bytes(c.getAsJsonObject("key"));
      long now = c.get("now_ms").getAsLong();
      String expect = c.get("expect").getAsString();
      // Both forms of a read: into a new array, and into a buffer; over one mapping, and
      // over chunks of 64 bytes and 4 KiB.
      for (int chunkShift : new int[] {Segment.CHUNK_SHIFT, 6, 12}) {
        one(c, name + " chunks 2^" + chunkShift, dir, key, now, expect, chunkShift);
      }
      n++;
    }
    assertTrue(n >= 80, "cases " + n);
  }

  private static void one(JsonObject c, String name, Path dir, byte[] key, long now, String expect, int chunkShift)
      throws IOException {
    {
      Segment.Read r = new Segment.Read();
      assertEquals(expect, read(dir, key, now, r, null, chunkShift), name);
      if (expect.equals("hit")) {
        assertArrayEquals(bytes(c.getAsJsonObject("value")), r.value, name);
        assertEquals(Long.parseUnsignedLong(c.get("ref").getAsString().substring(2), 16), r.ref, name);
      }
      ByteBuffer dst = ByteBuffer.allocateDirect(1 << 20);
      Segment.Read rb = new Segment.Read();
      assertEquals(expect, read(dir, key, now, rb, dst, chunkShift), name + " into a buffer");
      if (expect.equals("hit")) {
        byte[] got = new byte[dst.flip().remaining()];
        dst.get(got);
        assertArrayEquals(bytes(c.getAsJsonObject("value")), got, name + " into a buffer");
        assertEquals(r.ref, rb.ref);
      }
    }
  }

  @Test
  void layoutAgreesWithThisReader() throws IOException {
    JsonObject l = load("layout.json");
    assertEquals(Segment.FILE, l.get("segment_file").getAsString());
    assertEquals(Segment.MAGIC, Long.parseUnsignedLong(l.get("magic").getAsString().substring(2), 16));
    assertEquals(Segment.VERSION, l.get("version").getAsInt());
    assertEquals(Segment.HEADER_SIZE, l.get("header_size").getAsInt());
    assertEquals(Segment.MIN_SIZE, l.get("min_size").getAsLong());
    assertEquals(Segment.MAX_SIZE, l.get("max_size").getAsLong());
    assertEquals(Segment.NEAR_MS, l.get("near_ms").getAsLong());
    assertEquals(Segment.MAX_READ_RETRIES, l.get("max_read_retries").getAsInt());
    assertEquals(Segment.MAX_KEY, l.get("max_key_limit").getAsInt());
    assertEquals(SharedMemory.DEFAULT_MAX_LAG.toMillis(), l.get("max_lag_ms").getAsLong());
    JsonObject h = l.getAsJsonObject("header");
    int[][] fields = {{Segment.H_MAGIC, h.get("magic").getAsInt()}, {Segment.H_VERSION, h.get("version").getAsInt()},
        {Segment.H_HEADER_SIZE, h.get("header_size").getAsInt()}, {Segment.H_SEG_SIZE, h.get("segment_size").getAsInt()},
        {Segment.H_GENERATION, h.get("generation").getAsInt()}, {Segment.H_SEED, h.get("hash_seed").getAsInt()},
        {Segment.H_BUCKETS_LOG2, h.get("buckets_log2").getAsInt()}, {Segment.H_DIR_OFFSET, h.get("dir_offset").getAsInt()},
        {Segment.H_DIR_MAX_DEPTH, h.get("dir_max_depth").getAsInt()}, {Segment.H_ARENA_OFFSET, h.get("arena_offset").getAsInt()},
        {Segment.H_ARENA_SIZE, h.get("arena_size").getAsInt()}, {Segment.H_CLOCK, h.get("clock").getAsInt()},
        {Segment.H_INDEX_VER, h.get("index_version").getAsInt()}, {Segment.H_GLOBAL_DEPTH, h.get("global_depth").getAsInt()},
        {Segment.H_STATE, h.get("state").getAsInt()}};
    for (int[] f : fields) {
      assertEquals(f[1], f[0]);
    }
    JsonObject st = l.getAsJsonObject("states");
    assertEquals(Segment.STATE_INIT, st.get("init").getAsInt());
    assertEquals(Segment.STATE_ACTIVE, st.get("active").getAsInt());
    assertEquals(Segment.STATE_CLOSED, st.get("closed").getAsInt());
    assertEquals(Segment.STATE_RETIRED, st.get("retired").getAsInt());
    int sizes = 0;
    for (JsonElement e : l.getAsJsonArray("geometry")) {
      JsonObject g = e.getAsJsonObject();
      Segment.Geometry mine = Segment.Geometry.of(g.get("size").getAsLong());
      assertEquals(new Segment.Geometry(g.get("buckets_log2").getAsInt(), g.get("dir_max_depth").getAsInt(),
          g.get("dir_offset").getAsLong(), g.get("arena_offset").getAsLong()), mine, g.toString());
      sizes++;
    }
    assertTrue(sizes >= 5);
  }

  /** The seeded mutator of SegmentFuzzTest over every fixture that opens. */
  @Test
  void hostileBytesOverTheFixtures() throws IOException {
    JsonObject cases = load("cases.json");
    for (JsonElement seg : cases.getAsJsonArray("segments")) {
      String name = seg.getAsJsonObject().get("name").getAsString();
      byte[] img = Files.readAllBytes(DIR.resolve(name).resolve(Segment.FILE));
      List<byte[]> keys = new ArrayList<>();
      for (JsonElement e : cases.getAsJsonArray("cases")) {
        keys.add(bytes(e.getAsJsonObject().getAsJsonObject("key")));
      }
      if (img.length < Segment.HEADER_SIZE) {
        continue; // shorter than a header: refused at open, which everyCase checks
      }
      if (name.equals("data")) {
        SegmentFuzzTest.fuzz(img, keys::get, keys.size());
      } else {
        SegmentFuzzTest.fuzzQuietly(img, keys::get, keys.size(), 20);
      }
    }
  }
}
