package com.cachee.bench;

import com.cachee.client.CacheeClient;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One hot key read three ways from one sidecar: the shared-memory segment, gRPC, and a
 * Redis client (Lettuce) over the same Unix socket. The sidecar, its socket
 * (CACHEE_SOCKET), its segment directory (CACHEE_SHM) and the key (BENCH_KEY) come from
 * the environment; each benchmark checks that it reads the key before it is timed.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class ReadPaths {
  static String env(String name) {
    String v = System.getenv(name);
    if (v == null || v.isEmpty()) {
      throw new IllegalStateException(name + " is not set");
    }
    return v;
  }

  static byte[] key() {
    return env("BENCH_KEY").getBytes(StandardCharsets.UTF_8);
  }

  @State(Scope.Thread)
  public static class Shm {
    CacheeClient c;
    byte[] key;
    ByteBuffer dst;

    @Setup(Level.Trial)
    public void setUp() throws InterruptedException {
      c = CacheeClient.builder().address(env("CACHEE_SOCKET")).shmDir(env("CACHEE_SHM")).build();
      key = key();
      dst = ByteBuffer.allocateDirect(1 << 16);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (!c.readingSharedMemory()) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("the client did not map the segment in " + env("CACHEE_SHM"));
        }
        Thread.sleep(10);
      }
      if (c.get(key, dst) < 0) {
        throw new IllegalStateException("BENCH_KEY is not in the cache");
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      c.close();
    }
  }

  @State(Scope.Thread)
  public static class Grpc {
    CacheeClient c;
    byte[] key;

    @Setup(Level.Trial)
    public void setUp() {
      c = CacheeClient.builder().address(env("CACHEE_SOCKET")).withoutShm().timeout(Duration.ofSeconds(5)).build();
      key = key();
      c.get(key).orElseThrow(() -> new IllegalStateException("BENCH_KEY is not in the cache"));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      c.close();
    }
  }

  @State(Scope.Thread)
  public static class Redis {
    RedisClient client;
    StatefulRedisConnection<byte[], byte[]> conn;
    RedisCommands<byte[], byte[]> cmd;
    byte[] key;

    @Setup(Level.Trial)
    public void setUp() {
      client = RedisClient.create(RedisURI.Builder.socket(env("CACHEE_SOCKET")).build());
      conn = client.connect(ByteArrayCodec.INSTANCE);
      cmd = conn.sync();
      key = key();
      if (cmd.get(key) == null) {
        throw new IllegalStateException("BENCH_KEY is not in the cache");
      }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
      conn.close();
      client.shutdown();
    }
  }

  /** A hit read from the segment into a reused buffer: no allocation, no system call. */
  @Benchmark
  public int shm(Shm s) {
    s.dst.clear();
    return s.c.get(s.key, s.dst);
  }

  @Benchmark
  public byte[] grpc(Grpc g) {
    return g.c.get(g.key).orElseThrow();
  }

  @Benchmark
  public byte[] redis(Redis r) {
    return r.cmd.get(r.key);
  }
}
