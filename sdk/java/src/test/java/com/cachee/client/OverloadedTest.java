package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * An OVERLOADED refusal from the real sidecar, retried until it has room. The sidecar's
 * client memory budget is set to its smallest; RESP clients in the middle of a long SET
 * hold their query buffers against it (those past it are disconnected), so an answer that
 * must copy a large value out of the store does not fit and is refused OVERLOADED. When
 * the RESP clients go, a retried call gets through.
 */
class OverloadedTest {
  static final int HOGS = 120;
  static final int HOG_BYTES = 30_000;
  static final byte[] VALUE = new byte[600_000];

  static CacheeClient client(CacheeServer s, RetryPolicy retry) {
    var c = CacheeClient.builder().address("unix://" + s.sock).withoutShm().retry(retry).timeout(Duration.ofSeconds(10)).build();
    c.stats(); // connected now: a new connection also needs room in the budget
    return c;
  }

  @Test
  void aRefusedCallIsRetriedUntilTheSidecarHasRoom() throws Exception {
    List<SocketChannel> hogs = new ArrayList<>();
    var later = Executors.newSingleThreadScheduledExecutor();
    try (var s = CacheeServer.start("--max-client-memory=3452928");
        var once = client(s, RetryPolicy.NONE);
        var patient = client(s, new RetryPolicy(1000, Duration.ofMillis(20), Duration.ofMillis(50), 2.0))) {
      java.util.Arrays.fill(VALUE, (byte) 7);
      once.set("ov:big".getBytes(), VALUE);
      for (int i = 0; i < HOGS; i++) {
        SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(s.sock));
        hogs.add(ch);
        try {
          ch.write(ByteBuffer.wrap(("*3\r\n$3\r\nSET\r\n$5\r\nhog" + (100 + i) + "\r\n$200000\r\n")
              .getBytes(StandardCharsets.US_ASCII)));
          ch.write(ByteBuffer.wrap(new byte[HOG_BYTES]));
        } catch (IOException disconnected) {
          // Past the budget: the sidecar let this one go.
        }
      }
      // Without retries: the refusal itself, typed, once the sidecar has read the buffers.
      SharedMemoryTest.await("the refusal", () -> {
        try {
          once.get("ov:big".getBytes());
          return false;
        } catch (CacheeException.Overloaded e) {
          assertEquals("OVERLOADED", e.reason());
          assertInstanceOf(CacheeException.Unavailable.class, e);
          return true;
        }
      });
      // With retries: the RESP clients go after a while, and the retried call gets through.
      later.schedule(() -> hogs.forEach(h -> {
        try {
          h.close();
        } catch (IOException ignored) {
          // Already closed.
        }
      }), 300, TimeUnit.MILLISECONDS);
      assertArrayEquals(VALUE, patient.get("ov:big".getBytes(), Duration.ofSeconds(20)).orElseThrow());
    } finally {
      later.shutdownNow();
      for (SocketChannel h : hogs) {
        h.close();
      }
    }
  }
}
