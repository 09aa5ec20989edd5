package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The shared SDK contract's cases (docs/sdk-contract.md, sdk/testdata/contract), every one. */
class ContractTest {
  static final Path DIR = Path.of("../testdata/contract");

  static JsonObject load(String name) throws IOException {
    return JsonParser.parseString(Files.readString(DIR.resolve(name))).getAsJsonObject();
  }

  static String str(JsonObject o, String field) {
    JsonElement e = o.get(field);
    return e == null || e.isJsonNull() ? null : e.getAsString();
  }

  static Map<String, String> env(JsonObject c) {
    Map<String, String> env = new HashMap<>();
    c.getAsJsonObject("env").entrySet().forEach(e -> env.put(e.getKey(), e.getValue().getAsString()));
    return env;
  }

  @Test
  void address() throws IOException {
    JsonObject a = load("address.json");
    assertEquals(Segment.FILE, str(a, "segment_file"));
    int n = 0;
    for (JsonElement e : a.getAsJsonArray("target_cases")) {
      JsonObject c = e.getAsJsonObject();
      assertEquals(str(c, "target"), CacheeClient.target(str(c, "explicit"), env(c)), str(c, "name"));
      n++;
    }
    for (JsonElement e : a.getAsJsonArray("shm_cases")) {
      JsonObject c = e.getAsJsonObject();
      Path dir = SharedMemory.dir(str(c, "explicit"), env(c));
      assertEquals(str(c, "shm_dir"), dir == null ? null : dir.toString(), str(c, "name"));
      n++;
    }
    for (JsonElement e : a.getAsJsonArray("token_cases")) {
      JsonObject c = e.getAsJsonObject();
      String token = CacheeClient.token(str(c, "explicit"), env(c));
      assertEquals(str(c, "metadata"), token == null ? null : "Bearer " + token, str(c, "name"));
      n++;
    }
    assertTrue(n >= 20, "cases " + n);
  }

  @Test
  void retryDefaults() throws IOException {
    JsonObject d = load("retry.json").getAsJsonObject("defaults");
    assertEquals(Duration.ofMillis(d.get("timeout_ms").getAsLong()), CacheeClient.DEFAULT_TIMEOUT);
    assertEquals(Duration.ofMillis(d.get("prewarm_timeout_ms").getAsLong()), CacheeClient.DEFAULT_PREWARM_TIMEOUT);
    RetryPolicy p = RetryPolicy.DEFAULT;
    assertEquals(d.get("max_attempts").getAsInt(), p.maxAttempts());
    assertEquals(Duration.ofMillis(d.get("backoff_initial_ms").getAsLong()), p.initialBackoff());
    assertEquals(Duration.ofMillis(d.get("backoff_max_ms").getAsLong()), p.maxBackoff());
    assertEquals(d.get("backoff_multiplier").getAsDouble(), p.multiplier());
    assertEquals("uniform in [d/2, d]", str(d, "backoff_jitter"));
    for (int retry = 1; retry <= 8; retry++) {
      long dNanos = Math.min(Duration.ofMillis(d.get("backoff_max_ms").getAsLong()).toNanos(),
          (long) (Duration.ofMillis(d.get("backoff_initial_ms").getAsLong()).toNanos() * Math.pow(2, retry - 1)));
      for (int i = 0; i < 100; i++) {
        long w = p.backoffNanos(retry);
        assertTrue(w >= dNanos / 2 && w <= dNanos, "retry " + retry + " waits " + w);
      }
    }
  }

  @Test
  void retryCases() throws IOException {
    JsonObject r = load("retry.json");
    List<String> methods = new ArrayList<>();
    r.getAsJsonArray("methods").forEach(m -> methods.add(m.getAsString()));
    for (CacheeClient.Method m : CacheeClient.Method.values()) {
      assertTrue(methods.contains(m.name()), m.name());
    }
    int n = 0;
    for (JsonElement e : r.getAsJsonArray("cases")) {
      JsonObject c = e.getAsJsonObject();
      boolean got = CacheeClient.mayRetry(CacheeClient.Method.valueOf(str(c, "method")), c.get("conditional").getAsBoolean(),
          Status.Code.valueOf(str(c, "code")), str(c, "reason"), c.get("known_down").getAsBoolean());
      assertEquals(c.get("retry").getAsBoolean(), got, c.toString());
      n++;
    }
    assertTrue(n >= 400, "cases " + n);
  }

  @SuppressWarnings("unchecked")
  static Class<? extends CacheeException> errorClass(String name) throws ClassNotFoundException {
    return (Class<? extends CacheeException>) Class.forName(CacheeException.class.getName() + "$" + name);
  }

  @Test
  void errorClasses() throws Exception {
    JsonObject x = load("errors.json");
    List<Class<? extends CacheeException>> classes = new ArrayList<>();
    for (JsonElement e : x.getAsJsonArray("classes")) {
      classes.add(errorClass(e.getAsString()));
    }
    for (JsonElement e : x.getAsJsonArray("cases")) {
      JsonObject c = e.getAsJsonObject();
      RuntimeException cause = new RuntimeException("the gRPC failure");
      CacheeException err = CacheeException.of(Status.Code.valueOf(str(c, "code")), "m", str(c, "reason"), Map.of(), cause);
      checkClasses(classes, err, str(c, "class"), c.getAsJsonArray("also"), c.toString());
      assertSame(cause, err.getCause(), "the error keeps its cause");
      assertEquals(str(c, "reason"), err.reason());
      // It serializes, with a gRPC failure (whose Status is not serializable) as its cause.
      var grpc = io.grpc.Status.fromCode(Status.Code.valueOf(str(c, "code"))).withDescription("m").asRuntimeException();
      CacheeException back = roundTrip(CacheeException.of(Status.Code.valueOf(str(c, "code")), "m", str(c, "reason"), Map.of("k", "v"), grpc));
      checkClasses(classes, back, str(c, "class"), c.getAsJsonArray("also"), "deserialized " + c);
      assertEquals(str(c, "reason"), back.reason());
      assertEquals(Map.of("k", "v"), back.metadata());
      assertTrue(back.getCause().getMessage().contains("m"), back.getCause().toString());
    }
    for (JsonElement e : x.getAsJsonArray("client_cases")) {
      JsonObject c = e.getAsJsonObject();
      String situation = str(c, "situation");
      CacheeException err = switch (situation) {
        case "a call on a closed client" -> CacheeException.closed();
        case "the SDK's default deadline ran out (the caller gave none)" -> CacheeException.defaultDeadline(null);
        case "the caller's own deadline ran out" -> CacheeException.of(Status.Code.DEADLINE_EXCEEDED, "m", null, Map.of(), null);
        default -> throw new AssertionError("a client case this test does not know: " + situation);
      };
      checkClasses(classes, err, str(c, "class"), c.getAsJsonArray("also"), situation);
      checkClasses(classes, roundTrip(err), str(c, "class"), c.getAsJsonArray("also"), "deserialized " + situation);
    }
  }

  static CacheeException roundTrip(CacheeException e) throws Exception {
    var bytes = new java.io.ByteArrayOutputStream();
    try (var out = new java.io.ObjectOutputStream(bytes)) {
      out.writeObject(e);
    }
    try (var in = new java.io.ObjectInputStream(new java.io.ByteArrayInputStream(bytes.toByteArray()))) {
      return (CacheeException) in.readObject();
    }
  }

  /** err is of class {@code want} and the broader ones in {@code also}, and of no other listed class. */
  static void checkClasses(List<Class<? extends CacheeException>> classes, CacheeException err, String want,
      com.google.gson.JsonArray also, String what) throws Exception {
    assertSame(errorClass(want), err.getClass(), what);
    List<Class<? extends CacheeException>> expect = new ArrayList<>(List.of(errorClass(want)));
    for (JsonElement a : also) {
      expect.add(errorClass(a.getAsString()));
    }
    for (Class<? extends CacheeException> k : classes) {
      assertEquals(expect.contains(k), err.is(k), what + ": is " + k.getSimpleName());
    }
  }

  @Test
  void lifecycleAfterClose() throws Exception {
    JsonObject l = load("lifecycle.json");
    // No sidecar at all: a call that tried the network would fail Unavailable, not Closed.
    CacheeClient c = CacheeClient.builder().address("/tmp/cachee-java-absent/none.sock").withoutShm().build();
    c.close();
    assertEquals("ok", str(l, "close_twice"));
    c.close();
    for (JsonElement e : l.getAsJsonArray("after_close")) {
      JsonObject k = e.getAsJsonObject();
      Class<? extends CacheeException> want = errorClass(str(k, "class"));
      Runnable call = switch (CacheeClient.Method.valueOf(str(k, "method"))) {
        case Get -> () -> c.get("k");
        case BatchGet -> () -> c.getMany(List.of(new byte[] {1}));
        case Set -> () -> c.set("k", "v");
        case BatchSet -> () -> c.setMany(List.of(Item.of("k", "v")));
        case Delete -> () -> c.delete("k");
        case Stats -> c::stats;
        case Prewarm -> () -> c.prewarm(p -> {});
        case RecordAccess -> throw new AssertionError("RecordAccess is not the application's to call");
      };
      long t0 = System.nanoTime();
      CacheeException err = org.junit.jupiter.api.Assertions.assertThrows(CacheeException.class, call::run);
      assertInstanceOf(want, err, str(k, "method"));
      assertNull(err.reason());
    }
    JsonObject p = l.getAsJsonObject("prewarm_callback_raises");
    assertEquals("cancelled at once", str(p, "stream"));
    assertEquals("the callback's own exception", str(p, "raises"));
  }
}
