package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * OVERLOADED refusals from the real sidecar, and their retries. The sidecar's client
 * memory budget is set to its smallest; RESP clients in the middle of a long SET hold
 * their query buffers against it, leaving no room for a gRPC call's charge, so every gRPC
 * call is refused OVERLOADED (and counted in cachee_rejected_total) before it is read.
 */
class OverloadedTest {
  static final int HOGS = 40;
  static final int HOG_BYTES = 30_000;

  static CacheeClient client(CacheeServer s, RetryPolicy retry) {
    var c = CacheeClient.builder().address("unix://" + s.sock).withoutShm().retry(retry).timeout(Duration.ofSeconds(10)).build();
    c.stats(); // connected now: a new connection also needs room in the budget
    return c;
  }

  static long refused(CacheeServer s) {
    return s.metric("cachee_rejected_total", "reason=\"client_memory\"");
  }

  @Test
  void aRefusedCallIsRetriedWhateverItsCondition() throws Exception {
    List<SocketChannel> hogs = new ArrayList<>();
    try (var s = CacheeServer.start("--max-client-memory=3452928");
        var once = client(s, RetryPolicy.NONE);
        var thrice = client(s, new RetryPolicy(3, Duration.ofMillis(10), Duration.ofMillis(20), 2.0))) {
      for (int i = 0; i < HOGS; i++) {
        SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(s.sock));
        ch.write(ByteBuffer.wrap(("*3\r\n$3\r\nSET\r\n$5\r\nhog" + (10 + i) + "\r\n$200000\r\n")
            .getBytes(StandardCharsets.US_ASCII)));
        ch.write(ByteBuffer.wrap(new byte[HOG_BYTES]));
        hogs.add(ch);
      }
      // Without retries: the refusal itself, typed, once the sidecar has read the buffers.
      SharedMemoryTest.await("the refusal", () -> {
        try {
          once.set("ov:c", "x", SetOptions.onlyIfAbsent());
          return false;
        } catch (CacheeException.Overloaded e) {
          assertEquals("OVERLOADED", e.reason());
          assertInstanceOf(CacheeException.Unavailable.class, e);
          return true;
        }
      });
      // A conditional set, which a lost connection would not repeat, is sent three times:
      // the sidecar said it applied nothing.
      long before = refused(s);
      assertThrows(CacheeException.Overloaded.class,
          () -> thrice.set("ov:d".getBytes(), "x".getBytes(), SetOptions.onlyIfAbsent(), Duration.ofSeconds(10)));
      assertEquals(before + 3, refused(s), "attempts the sidecar refused");
      // A prewarm is never retried (it costs the budget nothing, so it is not refused
      // either: it fails for want of a source, once).
      assertThrows(CacheeException.PrewarmNotConfigured.class, () -> thrice.prewarm(p -> {}));
      assertEquals(before + 3, refused(s));
    } finally {
      for (SocketChannel h : hogs) {
        h.close();
      }
    }
  }
}
