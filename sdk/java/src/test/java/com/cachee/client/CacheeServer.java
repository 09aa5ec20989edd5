package com.cachee.client;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One real cachee process, started from the system property cachee.bin (set by `make
 * test-java`) or the environment's CACHEE_BIN, or else built with go build. It serves
 * on a socket in a fresh short directory (socket paths are limited to 107 bytes), with
 * free ports chosen by the kernel (--port=0) and read back from its "serving" log line.
 */
final class CacheeServer implements AutoCloseable {
  private static final Pattern ADDR = Pattern.compile("\"addr\":\"[^\"]*:(\\d+)\"");
  private static final Pattern RESP = Pattern.compile("\"resp\":(true|false)");
  private static String built;

  final Path dir;
  final Path sock;
  final Path shm;
  String tcp;
  boolean resp;
  private final Process proc;
  private final List<String> logs = Collections.synchronizedList(new ArrayList<>());

  static synchronized String binary() throws IOException, InterruptedException {
    String bin = System.getProperty("cachee.bin", "");
    if (bin.isEmpty()) {
      bin = System.getenv().getOrDefault("CACHEE_BIN", "");
    }
    if (!bin.isEmpty()) {
      return bin;
    }
    if (built == null) {
      Path dir = Files.createTempDirectory("cachee-bin");
      Path out = dir.resolve("cachee");
      dir.toFile().deleteOnExit(); // registered first, so deleted after the binary
      out.toFile().deleteOnExit();
      Process p = new ProcessBuilder("go", "build", "-o", out.toString(), "./cmd/cachee")
          .directory(Path.of("../..").toAbsolutePath().normalize().toFile())
          .inheritIO()
          .start();
      if (p.waitFor() != 0) {
        throw new IOException("go build failed");
      }
      built = out.toString();
    }
    return built;
  }

  static CacheeServer start(String... args) throws Exception {
    return new CacheeServer(null, args);
  }

  CacheeServer(Path sock, String... args) throws Exception {
    this(sock, null, args);
  }

  /**
   * A server on {@code sock} and the segment directory {@code shm} (both in a fresh
   * directory when null); a later server given the same paths takes over the segment.
   * {@code args} come after the defaults, so a later --max-memory wins.
   */
  CacheeServer(Path sock, Path shm, String... args) throws Exception {
    dir = Files.createTempDirectory(Path.of("/tmp"), "cachee-java");
    this.sock = sock != null ? sock : dir.resolve("c.sock");
    this.shm = shm != null ? shm : Files.createDirectory(dir.resolve("shm"));
    List<String> cmd = new ArrayList<>(List.of(binary(), "--socket=" + this.sock, "--shm=" + this.shm, "--port=0",
        "--http-port=0", "--metrics-port=0", "--max-memory=8mb", "--log-format=json"));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    Map<String, String> env = pb.environment();
    env.keySet().removeIf(k -> k.startsWith("CACHE_") || k.startsWith("CACHEE_"));
    proc = pb.start();
    CountDownLatch serving = new CountDownLatch(1);
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line; (line = r.readLine()) != null; ) {
          logs.add(line);
          if (line.contains("\"msg\":\"serving\"")) {
            Matcher m = ADDR.matcher(line);
            Matcher rm = RESP.matcher(line);
            tcp = m.find() ? "127.0.0.1:" + m.group(1) : "";
            resp = rm.find() && rm.group(1).equals("true");
            serving.countDown();
          }
        }
      } catch (IOException ignored) {
        // The process ended.
      }
    });
    reader.setDaemon(true);
    reader.start();
    if (!serving.await(60, TimeUnit.SECONDS)) {
      close();
      throw new IllegalStateException("cachee did not start:\n" + String.join("\n", logs));
    }
  }

  /** Sends a signal ("STOP", "CONT", "KILL", "TERM") to the server. */
  void signal(String sig) throws IOException, InterruptedException {
    if (new ProcessBuilder("kill", "-" + sig, Long.toString(proc.pid())).inheritIO().start().waitFor() != 0) {
      throw new IOException("kill -" + sig + " failed");
    }
  }

  /** Waits for the process to end (after a signal that ends it). */
  void awaitExit() throws InterruptedException {
    proc.waitFor(30, TimeUnit.SECONDS);
  }

  /** Kills the server but keeps its directory, so that a new server may take over its segment. */
  void kill() throws InterruptedException {
    proc.destroyForcibly();
    proc.waitFor(30, TimeUnit.SECONDS);
  }

  private static final Pattern METRICS = Pattern.compile("\"metrics\":\"[^\"]*:(\\d+)\"");

  /** A counter from the server's metrics endpoint: {@code name{labels} value}, 0 when absent. */
  long metric(String name, String labels) {
    Matcher m = METRICS.matcher(logs());
    if (!m.find()) {
      throw new AssertionError("no metrics address in the log");
    }
    try {
      String body = java.net.http.HttpClient.newHttpClient().send(
          java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + m.group(1) + "/metrics")).build(),
          java.net.http.HttpResponse.BodyHandlers.ofString()).body();
      Matcher v = Pattern.compile(Pattern.quote(name + "{" + labels + "} ") + "(\\d+)").matcher(body);
      return v.find() ? Long.parseLong(v.group(1)) : 0;
    } catch (IOException | InterruptedException e) {
      throw new AssertionError(e);
    }
  }

  String logs() {
    synchronized (logs) {
      return String.join("\n", logs);
    }
  }

  @Override
  public void close() throws IOException {
    proc.destroyForcibly();
    try {
      proc.waitFor(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    try (var paths = Files.walk(dir)) {
      paths.sorted(Collections.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }

}
