package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.cachee.v1.ErrorReason;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

class CacheeClientTest {
  private static final AtomicInteger N = new AtomicInteger();
  private static CacheeServer server;
  private static CacheeClient c;

  @BeforeAll
  static void start() throws Exception {
    // Room for the 50 concurrent calls below whatever the machine's load: the budget
    // --max-memory=8mb derives is one large message's.
    server = CacheeServer.start("--max-client-memory=64mb");
    c = CacheeClient.builder().address("unix://" + server.sock).timeout(Duration.ofSeconds(10)).build();
  }

  @AfterAll
  static void stop() throws Exception {
    c.close();
    server.close();
  }

  private static String key(TestInfo t) {
    return "java:" + t.getDisplayName() + ":" + N.incrementAndGet();
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void getSetDelete(TestInfo t) {
    String key = key(t);
    assertTrue(c.get(key).isEmpty());
    byte[] value = new byte[120];
    for (int i = 0; i < value.length; i++) {
      value[i] = (byte) new int[] {0, 1, 0xff}[i % 3]; // binary-safe
    }
    assertTrue(c.set(utf8(key), value, SetOptions.ttl(Duration.ofHours(1))));
    assertArrayEquals(value, c.get(key).orElseThrow());
    assertTrue(c.set(key, "text"));
    assertEquals(Optional.of("text"), c.getString(key));
    assertTrue(c.delete(key));
    assertFalse(c.delete(key));
    assertTrue(c.get(key).isEmpty());
  }

  @Test
  void emptyValueIsAHit(TestInfo t) {
    String key = key(t);
    c.set(utf8(key), new byte[0]);
    assertArrayEquals(new byte[0], c.get(key).orElseThrow());
  }

  @Test
  void conditions(TestInfo t) {
    String key = key(t);
    assertFalse(c.set(key, "x", SetOptions.onlyIfPresent()));
    assertTrue(c.set(key, "1", SetOptions.onlyIfAbsent()));
    assertFalse(c.set(key, "2", SetOptions.onlyIfAbsent()));
    assertTrue(c.set(key, "3", SetOptions.onlyIfPresent().withTtl(Duration.ofMinutes(1))));
    assertEquals(Optional.of("3"), c.getString(key));
    assertThrows(IllegalArgumentException.class, () -> new SetOptions(null, true, true));
  }

  @Test
  void ttlExpires(TestInfo t) throws InterruptedException {
    String key = key(t);
    c.set(key, "v", SetOptions.ttl(Duration.ofMillis(50)));
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (c.get(key).isPresent()) { // expiry runs on the server's clock
      assertTrue(System.nanoTime() < deadline, "key did not expire");
      Thread.sleep(20);
    }
  }

  @Test
  void batches(TestInfo t) {
    String k = key(t);
    assertEquals(List.of(true, true, false), c.setMany(List.of(
        Item.of(k + "0", "a"), Item.of(k + "1", "b", SetOptions.ttl(Duration.ofMinutes(1))), Item.of(k + "0", "z", SetOptions.onlyIfAbsent()))));
    List<Optional<byte[]>> got = c.getMany(List.of(utf8(k + "1"), utf8(k + "2"), utf8(k + "0"), utf8(k + "1")));
    List<String> text = new ArrayList<>();
    got.forEach(v -> text.add(v.map(b -> new String(b, StandardCharsets.UTF_8)).orElse(null)));
    assertEquals(java.util.Arrays.asList("b", null, "a", "b"), text);
  }

  @Test
  void stats(TestInfo t) {
    Stats before = c.stats();
    String key = key(t);
    c.set(key, "v");
    c.get(key);
    c.get(key + ":absent");
    Stats s = c.stats();
    assertTrue(s.sets() >= before.sets() + 1 && s.hits() >= before.hits() + 1 && s.misses() >= before.misses() + 1);
    assertTrue(s.entries() >= 1 && s.memoryLimitBytes() > 0 && !s.uptime().isZero());
    assertEquals("cachee-lfu", s.eviction());
  }

  @Test
  void prewarmWithoutSourceIsFailedPrecondition() {
    var e = assertThrows(CacheeException.PrewarmNotConfigured.class, () -> c.prewarm(p -> {}));
    assertEquals(io.grpc.Status.Code.FAILED_PRECONDITION, e.code());
    assertEquals("PREWARM_NOT_CONFIGURED", e.reason());
  }

  @Test
  void invalidArgumentsCarryTheReason(TestInfo t) {
    String key = key(t);
    assertEquals("KEY_EMPTY", assertThrows(CacheeException.KeyEmpty.class, () -> c.get(new byte[0])).reason());
    // An oversized set raises the typed error, with its reason from the ErrorReason enum.
    var big = assertThrows(CacheeException.ValueTooLarge.class, () -> c.set(utf8(key), new byte[(1 << 20) + 1]));
    assertInstanceOf(CacheeException.InvalidArgument.class, big);
    assertEquals(ErrorReason.ERROR_REASON_VALUE_TOO_LARGE, big.errorReason());
    assertEquals("value", big.metadata().get("field"));
    assertInstanceOf(io.grpc.StatusRuntimeException.class, big.getCause(), "the gRPC failure is the cause");
    assertEquals("INVALID_TTL", assertThrows(CacheeException.InvalidTTL.class,
        () -> c.set(key, "x", SetOptions.ttl(Duration.ofMillis(-1500)))).reason());
    assertEquals("BATCH_TOO_LARGE", assertThrows(CacheeException.BatchTooLarge.class,
        () -> c.getMany(Collections.nCopies(1001, utf8("k")))).reason());
  }

  @Test
  void aMessageOverTheSizeLimitIsMessageTooLarge(TestInfo t) {
    var e = assertThrows(CacheeException.MessageTooLarge.class, () -> c.set(utf8(key(t)), new byte[5 << 20]));
    assertTrue(e.reason() == null || e.reason().equals("MESSAGE_TOO_LARGE"), e.toString());
  }

  @Test
  void passedDeadlineFailsWithoutACall(TestInfo t) {
    assertThrows(CacheeException.DeadlineExceeded.class, () -> c.get(utf8(key(t)), Duration.ZERO));
  }

  @Test
  void concurrentCallsShareTheChannel(TestInfo t) {
    String key = key(t);
    c.set(key, "v");
    List<CompletableFuture<Optional<String>>> fs = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      fs.add(CompletableFuture.supplyAsync(() -> c.getString(key)));
    }
    fs.forEach(f -> assertEquals(Optional.of("v"), f.join()));
  }

  @Test
  void environmentSelectsTcp(TestInfo t) {
    String[] hp = server.tcp.split(":");
    String target = CacheeClient.target(null, Map.of("CACHE_HOST", hp[0], "CACHE_PORT", hp[1]));
    assertEquals(server.tcp, target);
    try (var tcp = CacheeClient.builder().address(target).withoutShm().timeout(Duration.ofSeconds(10)).build()) {
      String key = key(t);
      assertTrue(tcp.set(key, "over tcp"));
      assertEquals(Optional.of("over tcp"), c.getString(key));
    }
  }

  @Test
  void untilTheServerIsUpCallsFailUnavailableThenTheClientReconnects() throws Exception {
    Path dir = Files.createTempDirectory(Path.of("/tmp"), "cachee-java");
    Path sock = dir.resolve("late.sock");
    try (var late1 = CacheeClient.builder().address(sock.toString()).withoutShm().timeout(Duration.ofSeconds(10)).build()) {
      assertThrows(CacheeException.Unavailable.class, () -> late1.set("late", "v"));
      try (var late = new CacheeServer(sock)) {
        // The client reconnects in the background; calls fail at once meanwhile.
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
          try {
            assertTrue(late1.set("late", "v"));
            break;
          } catch (CacheeException.Unavailable | CacheeException.DeadlineExceeded e) {
            assertTrue(System.nanoTime() < deadline, "never reconnected: " + e);
            Thread.sleep(10);
          }
        }
      }
    } finally {
      Files.deleteIfExists(sock);
      Files.deleteIfExists(dir);
    }
  }

  @Test
  void retriesStopAtTheDeadline() {
    // Uncapped, these retries would wait about 1000 x 0.5 s.
    var retry = new RetryPolicy(1000, Duration.ofMillis(500), Duration.ofMillis(500), 1.0);
    try (var absent = CacheeClient.builder().address("/tmp/cachee-java-absent/none.sock").retry(retry).build()) {
      long t0 = System.nanoTime();
      // The last attempt's UNAVAILABLE, or DEADLINE_EXCEEDED when the deadline ran out
      // during an attempt (a slow first connect on a loaded machine): either way, no
      // retry went past the deadline.
      var e = assertThrows(CacheeException.class, () -> absent.get(utf8("k"), Duration.ofSeconds(1)));
      assertTrue(
          e instanceof CacheeException.Unavailable || e instanceof CacheeException.DeadlineExceeded,
          "unexpected " + e);
      // Generous slack for a loaded machine: it stopped near 1 s, not after many retries.
      assertTrue(System.nanoTime() - t0 < Duration.ofSeconds(5).toNanos());
    }
  }
}
