package com.cachee.client;

import com.cachee.v1.BatchGetRequest;
import com.cachee.v1.BatchGetResult;
import com.cachee.v1.BatchSetItem;
import com.cachee.v1.BatchSetRequest;
import com.cachee.v1.CacheServiceGrpc;
import com.cachee.v1.DeleteRequest;
import com.cachee.v1.GetRequest;
import com.cachee.v1.GetResponse;
import com.cachee.v1.PrewarmCounts;
import com.cachee.v1.PrewarmRequest;
import com.cachee.v1.PrewarmResponse;
import com.cachee.v1.SetCondition;
import com.cachee.v1.SetRequest;
import com.cachee.v1.StatsRequest;
import com.cachee.v1.StatsResponse;
import com.google.protobuf.ByteString;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.ChannelOption;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * A connection to a cachee sidecar over gRPC, on its Unix socket or over TCP. Calls
 * block; the client is thread-safe and one per process is enough. Connecting is lazy:
 * an unreachable server surfaces at the first call, as {@link CacheeException.Unavailable}.
 *
 * <pre>{@code
 * try (var c = CacheeClient.connect()) {
 *   c.set("user:42", "hello", SetOptions.ttl(Duration.ofMinutes(5)));
 *   c.getString("user:42"); // Optional[hello]
 * }
 * }</pre>
 */
public final class CacheeClient implements AutoCloseable {
  public static final String DEFAULT_SOCKET = "/var/run/cachee/cachee.sock";
  public static final int DEFAULT_PORT = 6380;
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(5);
  /** A prewarm runs until the server's own --prewarm-timeout; the call must outlive it. */
  public static final Duration DEFAULT_PREWARM_TIMEOUT = Duration.ofMinutes(1);

  private final String target;
  private final ManagedChannel channel;
  private final CacheServiceGrpc.CacheServiceBlockingStub stub;
  private final Duration timeout;
  private final RetryPolicy retry;

  private CacheeClient(Builder b) {
    this.target = target(b.address, System.getenv());
    this.timeout = b.timeout;
    this.retry = b.retry;
    ManagedChannelBuilder<?> cb =
        Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
            // BatchGet of many large values exceeds gRPC's 4 MiB default; the sidecar is
            // local and bounds what it accepts itself.
            .maxInboundMessageSize(Integer.MAX_VALUE);
    if (cb instanceof NettyChannelBuilder netty && target.startsWith("unix:")) {
      // grpc-java asks every Netty channel for SO_KEEPALIVE, which a Unix socket does
      // not have: Netty then logs a warning at each connect. Unset, it asks nothing.
      netty.withOption(ChannelOption.SO_KEEPALIVE, null);
    }
    this.channel = cb.build();
    this.stub = CacheServiceGrpc.newBlockingStub(channel);
  }

  /** Connects to the address the environment names; see {@link #target}. */
  public static CacheeClient connect() {
    return builder().build();
  }

  /** Connects to {@code address}: {@code unix:///path.sock}, a socket path, or {@code host:port}. */
  public static CacheeClient connect(String address) {
    return builder().address(address).build();
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Options of a client. */
  public static final class Builder {
    private String address;
    private Duration timeout = DEFAULT_TIMEOUT;
    private RetryPolicy retry = RetryPolicy.DEFAULT;

    private Builder() {}

    /** {@code unix:///path.sock}, a socket path, or {@code host:port}; null: from the environment. */
    public Builder address(String address) {
      this.address = address;
      return this;
    }

    /** The deadline of each call not given its own. */
    public Builder timeout(Duration timeout) {
      this.timeout = timeout;
      return this;
    }

    public Builder retry(RetryPolicy retry) {
      this.retry = retry;
      return this;
    }

    public CacheeClient build() {
      return new CacheeClient(this);
    }
  }

  /**
   * The gRPC target to dial. An explicit {@code address} wins. Otherwise CACHE_HOST and
   * CACHE_PORT (set in the sidecar's pod spec) select TCP, then CACHEE_SOCKET (read by
   * cachee's own CLI) a socket, and last the default socket /var/run/cachee/cachee.sock.
   */
  static String target(String address, Map<String, String> env) {
    if (address != null && !address.isEmpty()) {
      return address.startsWith("/") ? "unix://" + address : address;
    }
    String host = env.get("CACHE_HOST");
    String port = env.get("CACHE_PORT");
    if ((host != null && !host.isEmpty()) || (port != null && !port.isEmpty())) {
      host = host == null || host.isEmpty() ? "localhost" : host;
      if (host.contains(":") && !host.startsWith("[")) {
        host = "[" + host + "]"; // an IPv6 literal
      }
      return host + ":" + (port == null || port.isEmpty() ? DEFAULT_PORT : port);
    }
    String sock = env.get("CACHEE_SOCKET");
    return "unix://" + (sock == null || sock.isEmpty() ? DEFAULT_SOCKET : sock);
  }

  /** The target this client dials. */
  public String target() {
    return target;
  }

  @Override
  public void close() {
    channel.shutdownNow();
    try {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** ErrorInfo reasons of an UNAVAILABLE the server sends before it applies anything. */
  private static final Set<String> REFUSED_REASONS = Set.of("OVERLOADED", "SHUTTING_DOWN");

  /**
   * Whether a call that failed with {@code err} may be sent again. Only UNAVAILABLE is
   * retried. {@code safe} calls (get, getMany, stats, set without a condition) give the
   * same result when repeated, so any UNAVAILABLE is retried; any other call (a
   * conditional set, delete, setMany) only when the server refused it before applying it
   * (reason OVERLOADED or SHUTTING_DOWN): a plain UNAVAILABLE, e.g. a connection reset,
   * may follow an applied write.
   */
  static boolean mayRetry(boolean safe, CacheeException err) {
    return err.code() == Status.Code.UNAVAILABLE && (safe || (err.reason() != null && REFUSED_REASONS.contains(err.reason())));
  }

  private <T> T call(Duration callTimeout, Function<CacheServiceGrpc.CacheServiceBlockingStub, T> fn) {
    return call(callTimeout, true, fn);
  }

  /** Calls {@code fn}, retrying as {@link #mayRetry} allows; {@code safe}: it may be repeated after it was applied. */
  private <T> T call(Duration callTimeout, boolean safe, Function<CacheServiceGrpc.CacheServiceBlockingStub, T> fn) {
    long deadline = System.nanoTime() + (callTimeout != null ? callTimeout : timeout).toNanos();
    for (int attempt = 1; ; attempt++) {
      long remaining = deadline - System.nanoTime();
      if (remaining <= 0) {
        throw CacheeException.of(Status.Code.DEADLINE_EXCEEDED, "deadline passed before the call", null, Map.of(), null);
      }
      CacheeException err;
      try {
        return fn.apply(stub.withDeadlineAfter(remaining, TimeUnit.NANOSECONDS));
      } catch (StatusRuntimeException e) {
        err = CacheeException.from(e);
      }
      if (!mayRetry(safe, err) || attempt >= retry.maxAttempts()) {
        throw err;
      }
      long wait = retry.backoffNanos(attempt);
      if (System.nanoTime() + wait >= deadline) {
        throw err;
      }
      try {
        TimeUnit.NANOSECONDS.sleep(wait);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw err;
      }
      // The channel backs off reconnecting on its own (1 s, growing); the retry policy,
      // not that, decides when to try again.
      channel.resetConnectBackoff();
    }
  }

  private static ByteString bytes(byte[] b) {
    return ByteString.copyFrom(b);
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static com.google.protobuf.Duration duration(Duration d) {
    long n = d.toNanos();
    return com.google.protobuf.Duration.newBuilder().setSeconds(n / 1_000_000_000L).setNanos((int) (n % 1_000_000_000L)).build();
  }

  private static Duration duration(com.google.protobuf.Duration d) {
    return Duration.ofSeconds(d.getSeconds(), d.getNanos());
  }

  private static SetCondition condition(SetOptions o) {
    return o.ifAbsent()
        ? SetCondition.SET_CONDITION_IF_ABSENT
        : o.ifPresent() ? SetCondition.SET_CONDITION_IF_PRESENT : SetCondition.SET_CONDITION_UNSPECIFIED;
  }

  /** The value under {@code key}, or empty when it is absent or expired. */
  public Optional<byte[]> get(byte[] key, Duration timeout) {
    GetResponse r = call(timeout, s -> s.get(GetRequest.newBuilder().setKey(bytes(key)).build()));
    return r.getFound() ? Optional.of(r.getValue().toByteArray()) : Optional.empty();
  }

  public Optional<byte[]> get(byte[] key) {
    return get(key, null);
  }

  public Optional<byte[]> get(String key) {
    return get(utf8(key), null);
  }

  /** The value under {@code key} decoded as UTF-8. */
  public Optional<String> getString(String key) {
    return get(utf8(key), null).map(v -> new String(v, StandardCharsets.UTF_8));
  }

  /** Stores {@code value}; false only when a condition was not met. */
  public boolean set(byte[] key, byte[] value, SetOptions options, Duration timeout) {
    SetRequest.Builder req = SetRequest.newBuilder().setKey(bytes(key)).setValue(bytes(value)).setCondition(condition(options));
    if (options.ttl() != null) {
      req.setTtl(duration(options.ttl()));
    }
    SetRequest built = req.build();
    // A conditional set repeated after it was applied would report its own write.
    boolean safe = built.getCondition() == SetCondition.SET_CONDITION_UNSPECIFIED;
    return call(timeout, safe, s -> s.set(built)).getStored();
  }

  public boolean set(byte[] key, byte[] value, SetOptions options) {
    return set(key, value, options, null);
  }

  public boolean set(byte[] key, byte[] value) {
    return set(key, value, SetOptions.NONE, null);
  }

  public boolean set(String key, String value, SetOptions options) {
    return set(utf8(key), utf8(value), options, null);
  }

  public boolean set(String key, String value) {
    return set(utf8(key), utf8(value), SetOptions.NONE, null);
  }

  /** Removes {@code key}; whether it was there. */
  public boolean delete(byte[] key, Duration timeout) {
    return call(timeout, false, s -> s.delete(DeleteRequest.newBuilder().setKey(bytes(key)).build())).getDeleted();
  }

  public boolean delete(byte[] key) {
    return delete(key, null);
  }

  public boolean delete(String key) {
    return delete(utf8(key), null);
  }

  /** Values in the order of {@code keys}, empty where absent; at most 1000 keys. */
  public List<Optional<byte[]>> getMany(List<byte[]> keys, Duration timeout) {
    BatchGetRequest.Builder req = BatchGetRequest.newBuilder();
    keys.forEach(k -> req.addKeys(bytes(k)));
    BatchGetRequest built = req.build();
    List<Optional<byte[]>> out = new ArrayList<>(keys.size());
    for (BatchGetResult r : call(timeout, s -> s.batchGet(built)).getResultsList()) {
      out.add(r.getFound() ? Optional.of(r.getValue().toByteArray()) : Optional.empty());
    }
    return out;
  }

  public List<Optional<byte[]>> getMany(List<byte[]> keys) {
    return getMany(keys, null);
  }

  /** Stores items in order; one flag per item. On error, earlier items may be stored. */
  public List<Boolean> setMany(List<Item> items, Duration timeout) {
    BatchSetRequest.Builder req = BatchSetRequest.newBuilder();
    for (Item it : items) {
      BatchSetItem.Builder b = BatchSetItem.newBuilder().setKey(bytes(it.key())).setValue(bytes(it.value())).setCondition(condition(it.options()));
      if (it.options().ttl() != null) {
        b.setTtl(duration(it.options().ttl()));
      }
      req.addItems(b);
    }
    BatchSetRequest built = req.build();
    return call(timeout, false, s -> s.batchSet(built)).getStoredList();
  }

  public List<Boolean> setMany(List<Item> items) {
    return setMany(items, null);
  }

  public Stats stats(Duration timeout) {
    StatsResponse r = call(timeout, s -> s.stats(StatsRequest.getDefaultInstance()));
    return new Stats(
        r.getHits(), r.getMisses(), r.getSets(), r.getDeletes(), r.getEvictions(), r.getExpirations(),
        r.getEntries(), r.getMemoryUsedBytes(), r.getMemoryLimitBytes(), r.getHitRate(),
        duration(r.getUptime()), duration(r.getLatencyP50()), duration(r.getLatencyP95()), duration(r.getLatencyP99()),
        r.getGeneration(), r.getEviction(), r.getSegmentPath());
  }

  public Stats stats() {
    return stats(null);
  }

  /**
   * Loads the hottest {@code keys} (0: the server's --prewarm-keys) from the server's
   * prewarm source within {@code sourceTimeout} (null: its --prewarm-timeout), passing
   * each progress message to {@code onProgress}, and returns the final counts. Not
   * retried: a prewarm that failed part-way is not restarted behind the caller's back.
   * Without a prewarm source the server fails it with {@link CacheeException.FailedPrecondition}.
   *
   * @param timeout the call's deadline; null: {@link #DEFAULT_PREWARM_TIMEOUT}
   */
  public PrewarmProgress prewarm(int keys, Duration sourceTimeout, Consumer<PrewarmProgress> onProgress, Duration timeout) {
    if (keys < 0) {
      throw new IllegalArgumentException("keys must not be negative");
    }
    PrewarmRequest.Builder req = PrewarmRequest.newBuilder().setKeys(keys);
    if (sourceTimeout != null) {
      req.setTimeout(duration(sourceTimeout));
    }
    Duration t = timeout != null ? timeout : DEFAULT_PREWARM_TIMEOUT;
    PrewarmProgress last = null;
    try {
      Iterator<PrewarmResponse> it = stub.withDeadlineAfter(t.toNanos(), TimeUnit.NANOSECONDS).prewarm(req.build());
      // Read to the end of the stream, so that the call completes rather than being
      // left open after the final message.
      while (it.hasNext()) {
        PrewarmResponse msg = it.next();
        PrewarmCounts c = msg.getCounts();
        last = new PrewarmProgress(c.getRequested(), c.getLoaded(), c.getSkipped(), c.getFailed(), duration(c.getElapsed()), msg.getDone());
        if (!last.done() && onProgress != null) {
          onProgress.accept(last);
        }
      }
    } catch (StatusRuntimeException e) {
      throw CacheeException.from(e);
    }
    if (last == null || !last.done()) {
      throw CacheeException.of(Status.Code.INTERNAL, "prewarm ended without final counts", null, Map.of(), null);
    }
    return last;
  }

  public PrewarmProgress prewarm(Consumer<PrewarmProgress> onProgress) {
    return prewarm(0, null, onProgress, null);
  }
}
