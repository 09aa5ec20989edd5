package com.cachee.client;

import com.cachee.v1.BatchGetRequest;
import com.cachee.v1.BatchGetResult;
import com.cachee.v1.BatchSetItem;
import com.cachee.v1.BatchSetRequest;
import com.cachee.v1.CacheServiceGrpc;
import com.cachee.v1.DeleteRequest;
import com.cachee.v1.ErrorReason;
import com.cachee.v1.GetRequest;
import com.cachee.v1.GetResponse;
import com.cachee.v1.PrewarmCounts;
import com.cachee.v1.PrewarmRequest;
import com.cachee.v1.PrewarmResponse;
import com.cachee.v1.RecordAccessRequest;
import com.cachee.v1.RecordAccessResponse;
import com.cachee.v1.SetCondition;
import com.cachee.v1.SetRequest;
import com.cachee.v1.StatsRequest;
import com.cachee.v1.StatsResponse;
import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ConnectivityState;
import io.grpc.Context;
import io.grpc.ForwardingClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.ChannelOption;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.LongSupplier;

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
  /** A call's deadline when the caller gives none (docs/sdk-contract.md, section 4). */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(1);
  /** A prewarm runs until the server's own --prewarm-timeout; the call must outlive it. */
  public static final Duration DEFAULT_PREWARM_TIMEOUT = Duration.ofMinutes(1);
  /** Reconnecting to a sidecar that went away: first after 20 ms, ×1.6 each time, at most 1 s. */
  static final Duration RECONNECT_INITIAL = Duration.ofMillis(20);
  static final double RECONNECT_MULTIPLIER = 1.6;
  static final Duration RECONNECT_MAX = Duration.ofSeconds(1);
  static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final String target;
  private final ManagedChannel channel;
  private final CacheServiceGrpc.CacheServiceBlockingStub stub;
  private final Duration timeout;
  private final RetryPolicy retry;
  private final AtomicBoolean closed = new AtomicBoolean();
  /** Wakes the channel's reconnection on the contract's schedule, not grpc-java's (1 s growing to 2 min). */
  private final ScheduledExecutorService reconnector;
  private long reconnectDelayNanos = RECONNECT_INITIAL.toNanos();
  /** Reads from the shared-memory segment; null when they are turned off. */
  private final SharedMemory shm;
  private final ThreadLocal<Segment.Read> reads = ThreadLocal.withInitial(Segment.Read::new);

  private CacheeClient(Builder b) {
    this.target = target(b.address, System.getenv());
    String token = token(b.authToken, System.getenv());
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
    if (token != null) {
      cb.intercept(bearer(token));
    }
    this.channel = cb.build();
    this.stub = CacheServiceGrpc.newBlockingStub(channel);
    this.reconnector = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "cachee-reconnect " + target);
      t.setDaemon(true);
      return t;
    });
    // Connect now, in the background, so that the first call does not pay for it within
    // its deadline; a sidecar that is not there yet only makes calls fail Unavailable.
    channel.getState(true);
    watchChannel();
    Path shmDir = SharedMemory.dir(b.shmDir, System.getenv());
    this.shm = shmDir == null ? null
        : new SharedMemory(shmDir, new Sidecar(), b.checkInterval, b.maxLag, b.flushInterval, b.realtime);
  }

  /** The gRPC calls the shared-memory reader makes: Stats to confirm a segment, RecordAccess. */
  private final class Sidecar implements SharedMemory.Sidecar {
    private final CacheServiceGrpc.CacheServiceFutureStub async = CacheServiceGrpc.newFutureStub(channel);

    @Override
    public long generation() {
      try {
        return stub.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS)
            .stats(StatsRequest.getDefaultInstance()).getGeneration();
      } catch (StatusRuntimeException e) {
        throw CacheeException.from(e);
      }
    }

    @Override
    public void recordAccess(long[] refs, int count, long unreported, Runnable done) {
      RecordAccessRequest.Builder req = RecordAccessRequest.newBuilder().setUnreportedHits(unreported);
      for (int i = 0; i < count; i++) {
        req.addRefs(refs[i]);
      }
      ListenableFuture<RecordAccessResponse> f;
      try {
        f = async.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS).recordAccess(req.build());
      } catch (RuntimeException e) {
        shm.acc.dropped.addAndGet(count);
        done.run();
        return;
      }
      Futures.addCallback(f, new FutureCallback<>() {
        @Override
        public void onSuccess(RecordAccessResponse r) {
          shm.acc.sent.addAndGet(count);
          done.run();
        }

        @Override
        public void onFailure(Throwable t) {
          // The sidecar is gone or restarting: these hits are lost, which costs its
          // policy a sample and nothing else.
          shm.acc.dropped.addAndGet(count);
          done.run();
        }
      }, MoreExecutors.directExecutor());
    }
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
    private String authToken;
    private String shmDir;
    private Duration checkInterval = SharedMemory.DEFAULT_CHECK_INTERVAL;
    private Duration maxLag = SharedMemory.DEFAULT_MAX_LAG;
    private Duration flushInterval = SharedMemory.DEFAULT_FLUSH_INTERVAL;
    private LongSupplier realtime = System::currentTimeMillis;

    private Builder() {}

    /**
     * The directory of the sidecar's shared-memory segment (its {@code --shm}); null:
     * {@code $CACHEE_SHM}, else {@code /dev/shm/cachee}; "" (or CACHEE_SHM set and empty)
     * turns shared-memory reads off. The client reads the segment only while it is
     * there, valid, written by a live sidecar, and the very one the gRPC target serves;
     * otherwise every read goes over gRPC.
     */
    public Builder shmDir(String dir) {
      this.shmDir = dir;
      return this;
    }

    /** Turns shared-memory reads off: every call goes over gRPC. */
    public Builder withoutShm() {
      return shmDir("");
    }

    /**
     * How the client decides that a mapped segment no longer reflects a live sidecar: it
     * checks every {@code interval} (default 20 ms) that the segment is still the file at
     * its path, in the same generation, that the writer's lock is held and that its clock
     * lags real time by at most {@code maxLag} (default 500 ms). A failed check sends
     * reads over gRPC until the sidecar is back.
     */
    public Builder staleness(Duration interval, Duration maxLag) {
      this.checkInterval = interval;
      this.maxLag = maxLag;
      return this;
    }

    /** How often hits read from the segment are reported to the sidecar (default 50 ms). */
    public Builder flushInterval(Duration interval) {
      this.flushInterval = interval;
      return this;
    }

    /** The reader's real-time clock, unix ms; tests inject one. */
    Builder realtime(LongSupplier realtime) {
      this.realtime = realtime;
      return this;
    }

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

    /**
     * The bearer token the sidecar requires (its --auth-token), sent as {@code
     * authorization: Bearer <token>} on every call; null: {@code $CACHEE_AUTH_TOKEN},
     * the variable the sidecar itself reads, if set.
     */
    public Builder authToken(String token) {
      this.authToken = token;
      return this;
    }

    public CacheeClient build() {
      return new CacheeClient(this);
    }
  }

  /**
   * The gRPC target to dial (docs/sdk-contract.md, section 1): an explicit {@code
   * address}, then the socket CACHEE_SOCKET (which names cachee alone), then CACHE_HOST and
   * CACHE_PORT over TCP (either may be left out: localhost, 6380), then the default socket
   * /var/run/cachee/cachee.sock. A variable set but empty counts as unset. A socket comes
   * back as {@code unix://} and its absolute path.
   */
  static String target(String address, Map<String, String> env) {
    if (address != null && !address.isEmpty()) {
      if (address.startsWith("/")) {
        return "unix://" + address;
      }
      if (address.startsWith("unix:") && !address.startsWith("unix://")) {
        return "unix://" + address.substring("unix:".length());
      }
      return address;
    }
    String sock = env.get("CACHEE_SOCKET");
    if (sock != null && !sock.isEmpty()) {
      return "unix://" + sock;
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
    return "unix://" + DEFAULT_SOCKET;
  }

  /** The bearer token to send: the explicit one, else CACHEE_AUTH_TOKEN; null: none. */
  static String token(String explicit, Map<String, String> env) {
    String t = explicit != null ? explicit : env.get("CACHEE_AUTH_TOKEN");
    return t == null || t.isEmpty() ? null : t;
  }

  /** Adds {@code authorization: Bearer <token>} to every call. */
  static ClientInterceptor bearer(String token) {
    String value = "Bearer " + token;
    return new ClientInterceptor() {
      @Override
      public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
          @Override
          public void start(Listener<R> listener, Metadata headers) {
            headers.put(AUTHORIZATION, value);
            super.start(listener, headers);
          }
        };
      }
    };
  }

  /** The target this client dials. */
  public String target() {
    return target;
  }

  /** Whether reads go to the shared-memory segment now. */
  public boolean readingSharedMemory() {
    return shm != null && shm.held != null;
  }

  SharedMemory sharedMemory() {
    return shm;
  }

  /**
   * Closes the client, for good: every later call fails with {@link
   * CacheeException.Closed} at once, and nothing reconnects. Calls in flight complete, or
   * fail with Closed when they outlast the default deadline. Shared-memory hits not yet
   * reported are sent first, best effort. Closing again does nothing.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    if (shm != null) {
      shm.close();
    }
    reconnector.shutdownNow();
    channel.shutdown();
    try {
      if (!channel.awaitTermination(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
        channel.shutdownNow();
        channel.awaitTermination(timeout.toNanos(), TimeUnit.NANOSECONDS);
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private void checkOpen() {
    if (closed.get()) {
      throw CacheeException.closed();
    }
  }

  /** The RPCs, by their names in the proto (and in sdk/testdata/contract). */
  enum Method {
    Get, BatchGet, Set, BatchSet, Delete, Stats, Prewarm, RecordAccess
  }

  /**
   * Whether a call of {@code method} (with a write condition on any item when {@code
   * conditional}) that failed with {@code code} and {@code reason} is sent again
   * (docs/sdk-contract.md, section 5; sdk/testdata/contract/retry.json has every case).
   * {@code knownDown}: the channel's last connection attempt failed and none has
   * succeeded since.
   */
  static boolean mayRetry(Method method, boolean conditional, Status.Code code, String reason, boolean knownDown) {
    if (method == Method.Prewarm || method == Method.RecordAccess) {
      return false; // long and started by a person; or a sample whose loss costs nothing
    }
    ErrorReason r = CacheeException.reasonOf(reason);
    if (code == Status.Code.UNAVAILABLE && (r == ErrorReason.ERROR_REASON_OVERLOADED || r == ErrorReason.ERROR_REASON_SHUTTING_DOWN)) {
      return true; // refused before it was applied
    }
    if (code == Status.Code.ABORTED && r == ErrorReason.ERROR_REASON_READ_CONTENDED) {
      return true; // a read that gave up before answering
    }
    if (code == Status.Code.UNAVAILABLE && reason == null) {
      // May follow an applied write: only calls that leave the same state when repeated,
      // and not while the sidecar is known to be down (fail at once instead).
      boolean safe = switch (method) {
        case Get, BatchGet, Stats, Delete -> true;
        case Set, BatchSet -> !conditional;
        default -> false;
      };
      return safe && !knownDown;
    }
    return false;
  }

  /**
   * Follows the channel's state: while it is in TRANSIENT_FAILURE (its last connection
   * attempt failed), wakes it to try again after 20 ms, then 1.6 times longer each time up
   * to 1 s; a connection resets the schedule.
   */
  private void watchChannel() {
    if (closed.get()) {
      return;
    }
    ConnectivityState now = channel.getState(false);
    if (now == ConnectivityState.READY) {
      reconnectDelayNanos = RECONNECT_INITIAL.toNanos();
    } else if (now == ConnectivityState.TRANSIENT_FAILURE) {
      long d = reconnectDelayNanos;
      reconnectDelayNanos = Math.min((long) (d * RECONNECT_MULTIPLIER), RECONNECT_MAX.toNanos());
      try {
        reconnector.schedule(channel::resetConnectBackoff, d, TimeUnit.NANOSECONDS);
      } catch (java.util.concurrent.RejectedExecutionException closing) {
        return;
      }
    }
    if (now != ConnectivityState.SHUTDOWN) {
      channel.notifyWhenStateChanged(now, this::watchChannel);
    }
  }

  private boolean knownDown() {
    return channel.getState(false) == ConnectivityState.TRANSIENT_FAILURE;
  }

  private <T> T call(Duration callTimeout, Method method, Function<CacheServiceGrpc.CacheServiceBlockingStub, T> fn) {
    return call(callTimeout, method, false, fn);
  }

  /** Calls {@code fn}, retrying as {@link #mayRetry} allows. The request is built once, by the caller. */
  private <T> T call(Duration callTimeout, Method method, boolean conditional, Function<CacheServiceGrpc.CacheServiceBlockingStub, T> fn) {
    checkOpen();
    long deadline = System.nanoTime() + (callTimeout != null ? callTimeout : timeout).toNanos();
    for (int attempt = 1; ; attempt++) {
      long remaining = deadline - System.nanoTime();
      if (remaining <= 0) {
        throw deadlineExceeded(callTimeout, null);
      }
      CacheeException err;
      try {
        return fn.apply(stub.withDeadlineAfter(remaining, TimeUnit.NANOSECONDS));
      } catch (StatusRuntimeException e) {
        err = failure(e, callTimeout);
      }
      if (attempt >= retry.maxAttempts() || !mayRetry(method, conditional, err.code(), err.reason(), knownDown())) {
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
        throw CacheeException.of(Status.Code.CANCELLED, "interrupted between attempts", null, Map.of(), e);
      }
      checkOpen();
      // The channel backs off reconnecting on its own; the retry policy, not that,
      // decides when to try again.
      channel.resetConnectBackoff();
    }
  }

  /** The typed failure of an attempt: Closed once the client is closed, the default deadline's own class. */
  private CacheeException failure(StatusRuntimeException e, Duration callTimeout) {
    if (closed.get()) {
      return CacheeException.closed(e);
    }
    if (e.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED) {
      return deadlineExceeded(callTimeout, e);
    }
    return CacheeException.from(e);
  }

  private static CacheeException deadlineExceeded(Duration callTimeout, StatusRuntimeException e) {
    if (callTimeout == null) {
      return CacheeException.defaultDeadline(e);
    }
    return e != null ? CacheeException.from(e)
        : CacheeException.of(Status.Code.DEADLINE_EXCEEDED, "deadline passed before the call", null, Map.of(), null);
  }

  /**
   * The caller's bytes as the request's, without a copy: the request is built once per
   * call, not per attempt, and serialized from these bytes. The caller must not change
   * them while the call runs.
   */
  private static ByteString bytes(byte[] b) {
    return UnsafeByteOperations.unsafeWrap(b);
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

  /**
   * Reads {@code key} from the segment into {@code dst} (or a new array when null).
   * Returns HIT, or anything else to mean: ask the sidecar.
   */
  private int shmGet(byte[] key, ByteBuffer dst, Segment.Read r) {
    checkOpen();
    Segment seg = shm != null ? shm.held : null;
    if (seg == null) {
      return Segment.MISS;
    }
    int res;
    try {
      res = seg.get(key, dst, r);
    } catch (InternalError e) {
      // A read of the mapping faulted: a third party truncated the file.
      shm.faulted(e);
      return Segment.CORRUPT;
    }
    if (res == Segment.HIT) {
      shm.acc.record(r.ref);
    } else {
      // A miss, too, goes to the sidecar, which may have the key elsewhere (its L2).
      shm.fellBack(res);
    }
    return res;
  }

  /** The value under {@code key}, or empty when it is absent or expired. */
  public Optional<byte[]> get(byte[] key, Duration timeout) {
    Segment.Read rd = reads.get();
    if (shmGet(key, null, rd) == Segment.HIT) {
      byte[] v = rd.value;
      rd.value = null;
      return Optional.of(v);
    }
    GetRequest req = GetRequest.newBuilder().setKey(bytes(key)).build();
    GetResponse r = call(timeout, Method.Get, s -> s.get(req));
    return r.getFound() ? Optional.of(r.getValue().toByteArray()) : Optional.empty();
  }

  /**
   * Reads the value under {@code key} into {@code dst} at its position, which advances
   * past it, and returns its length; -1 when the key is absent or expired. When the value
   * is longer than {@code dst.remaining()}, {@code dst} is left as it was and the length
   * is returned: call again with a buffer that large. A hit in the shared-memory segment
   * makes no system call, takes no lock and allocates nothing.
   */
  public int get(byte[] key, ByteBuffer dst, Duration timeout) {
    if (dst.isReadOnly()) {
      throw new IllegalArgumentException("dst is read-only");
    }
    Segment.Read rd = reads.get();
    if (shmGet(key, dst, rd) == Segment.HIT) {
      return rd.length;
    }
    GetRequest req = GetRequest.newBuilder().setKey(bytes(key)).build();
    GetResponse r = call(timeout, Method.Get, s -> s.get(req));
    if (!r.getFound()) {
      return -1;
    }
    ByteString v = r.getValue();
    if (v.size() <= dst.remaining()) {
      v.copyTo(dst);
    }
    return v.size();
  }

  public int get(byte[] key, ByteBuffer dst) {
    return get(key, dst, null);
  }

  public Optional<byte[]> get(byte[] key) {
    return get(key, (Duration) null);
  }

  public Optional<byte[]> get(String key) {
    return get(utf8(key), (Duration) null);
  }

  /** The value under {@code key} decoded as UTF-8. */
  public Optional<String> getString(String key) {
    return get(utf8(key), (Duration) null).map(v -> new String(v, StandardCharsets.UTF_8));
  }

  /** Stores {@code value}; false only when a condition was not met. */
  public boolean set(byte[] key, byte[] value, SetOptions options, Duration timeout) {
    SetRequest.Builder req = SetRequest.newBuilder().setKey(bytes(key)).setValue(bytes(value)).setCondition(condition(options));
    if (options.ttl() != null) {
      req.setTtl(duration(options.ttl()));
    }
    SetRequest built = req.build();
    boolean conditional = built.getCondition() != SetCondition.SET_CONDITION_UNSPECIFIED;
    return call(timeout, Method.Set, conditional, s -> s.set(built)).getStored();
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
    DeleteRequest req = DeleteRequest.newBuilder().setKey(bytes(key)).build();
    return call(timeout, Method.Delete, s -> s.delete(req)).getDeleted();
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
    for (BatchGetResult r : call(timeout, Method.BatchGet, s -> s.batchGet(built)).getResultsList()) {
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
    boolean conditional = false;
    for (Item it : items) {
      conditional |= it.options().ifAbsent() || it.options().ifPresent();
      BatchSetItem.Builder b = BatchSetItem.newBuilder().setKey(bytes(it.key())).setValue(bytes(it.value())).setCondition(condition(it.options()));
      if (it.options().ttl() != null) {
        b.setTtl(duration(it.options().ttl()));
      }
      req.addItems(b);
    }
    BatchSetRequest built = req.build();
    return call(timeout, Method.BatchSet, conditional, s -> s.batchSet(built)).getStoredList();
  }

  public List<Boolean> setMany(List<Item> items) {
    return setMany(items, null);
  }

  public Stats stats(Duration timeout) {
    StatsResponse r = call(timeout, Method.Stats, s -> s.stats(StatsRequest.getDefaultInstance()));
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
   * Without a prewarm source the server fails it with {@link CacheeException.PrewarmNotConfigured}.
   *
   * @param timeout the call's deadline; null: {@link #DEFAULT_PREWARM_TIMEOUT}
   */
  public PrewarmProgress prewarm(int keys, Duration sourceTimeout, Consumer<PrewarmProgress> onProgress, Duration timeout) {
    if (keys < 0) {
      throw new IllegalArgumentException("keys must not be negative");
    }
    checkOpen();
    PrewarmRequest.Builder req = PrewarmRequest.newBuilder().setKeys(keys);
    if (sourceTimeout != null) {
      req.setTimeout(duration(sourceTimeout));
    }
    Duration t = timeout != null ? timeout : DEFAULT_PREWARM_TIMEOUT;
    PrewarmProgress last = null;
    // The stream runs in a context of its own, so that it can be cancelled at once when
    // the callback throws, rather than left open until its deadline.
    Context.CancellableContext ctx = Context.current().withCancellation();
    Context prev = ctx.attach();
    try {
      Iterator<PrewarmResponse> it = stub.withDeadlineAfter(t.toNanos(), TimeUnit.NANOSECONDS).prewarm(req.build());
      // Read to the end of the stream, so that the call completes rather than being
      // left open after the final message.
      while (it.hasNext()) {
        PrewarmResponse msg = it.next();
        PrewarmCounts c = msg.getCounts();
        last = new PrewarmProgress(c.getRequested(), c.getLoaded(), c.getSkipped(), c.getFailed(), duration(c.getElapsed()), msg.getDone());
        if (!last.done() && onProgress != null) {
          try {
            onProgress.accept(last);
          } catch (RuntimeException | Error e) {
            ctx.cancel(e);
            throw e; // the callback's own exception, as it is
          }
        }
      }
    } catch (StatusRuntimeException e) {
      throw failure(e, timeout);
    } finally {
      ctx.detach(prev);
      ctx.cancel(null);
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
