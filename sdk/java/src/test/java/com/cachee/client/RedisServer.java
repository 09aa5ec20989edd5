package com.cachee.client;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/** A real redis-server on a free loopback port, for the prewarm source. */
final class RedisServer implements AutoCloseable {
  final int port;
  private final Process proc;

  RedisServer() throws Exception {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    proc = new ProcessBuilder("redis-server", "--port", Integer.toString(port), "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (true) {
      try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
        break;
      } catch (IOException e) {
        if (System.nanoTime() > deadline || !proc.isAlive()) {
          throw new IllegalStateException("redis-server did not start", e);
        }
        Thread.sleep(20);
      }
    }
  }

  String url() {
    return "redis://127.0.0.1:" + port;
  }

  /** Stores n keys "prefix:i" of {@code size} bytes each, pipelined. */
  void fill(String prefix, int n, int size) throws IOException {
    byte[] value = "v".repeat(size).getBytes(StandardCharsets.UTF_8);
    try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
      OutputStream out = new java.io.BufferedOutputStream(s.getOutputStream(), 1 << 16);
      for (int i = 0; i < n; i++) {
        byte[] key = (prefix + ":" + i).getBytes(StandardCharsets.UTF_8);
        out.write(("*3\r\n$3\r\nSET\r\n$" + key.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
        out.write(key);
        out.write(("\r\n$" + value.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
        out.write(value);
        out.write("\r\n".getBytes(StandardCharsets.US_ASCII));
      }
      out.flush();
      // Every SET answers "+OK\r\n": read them all, so that the keys are there on return.
      InputStream in = s.getInputStream();
      long want = 5L * n;
      byte[] buf = new byte[1 << 16];
      for (long got = 0; got < want; ) {
        int r = in.read(buf);
        if (r < 0) {
          throw new IOException("redis-server closed the connection");
        }
        got += r;
      }
    }
  }

  @Override
  public void close() throws InterruptedException {
    proc.destroyForcibly();
    proc.waitFor(30, TimeUnit.SECONDS);
  }
}
