import { create } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { createClient, type Client as RpcClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { resolveAuthToken, resolveShmDir, resolveTarget, transportTarget } from "./address.js";
import { CacheeError, CanceledError, ClosedError, DeadlineExceededError, InternalError, SidecarTimeoutError, toCacheeError } from "./errors.js";
import {
  BatchGetRequestSchema,
  BatchSetItemSchema,
  BatchSetRequestSchema,
  CacheService,
  DeleteRequestSchema,
  GetRequestSchema,
  PrewarmRequestSchema,
  type PrewarmResponse,
  RecordAccessRequestSchema,
  SetCondition,
  SetRequestSchema,
  StatsRequestSchema,
  type StatsResponse,
} from "./gen/cachee/v1/cache_service_pb.js";
import { backoffMs, DEFAULT_PREWARM_TIMEOUT_MS, DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, mayRetry, RECONNECT, type RetryPolicy, type Rpc, RPC } from "./retry.js";
import { Shm, type ShmStatus } from "./shm.js";

/** Keys and values are bytes; strings are sent as UTF-8. */
export type Bytes = Uint8Array | string;

export interface ClientOptions {
  /** `unix:///path.sock`, a socket path or `host:port`; see resolveTarget. */
  address?: string;
  /**
   * The directory of the sidecar's shared-memory segment (its --shm): `""` turns
   * shared memory off; unset: CACHEE_SHM, else /dev/shm/cachee.
   */
  shmDir?: string;
  /** The sidecar's --auth-token, sent as `authorization: Bearer`; unset: CACHEE_AUTH_TOKEN. */
  authToken?: string;
  /** Deadline of each call that is not given its own `timeoutMs` (default 1 s). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** connect interceptors every call passes through (tracing, logging). */
  interceptors?: Interceptor[];
}

export interface CallOptions {
  /** This call's deadline, retries included. */
  timeoutMs?: number;
  /** Cancels the call: it fails with CanceledError. */
  signal?: AbortSignal;
}

export interface SetOptions extends CallOptions {
  /** Time to live in milliseconds; unset or 0: no expiry. */
  ttlMs?: number;
  /** Store only if the key is absent (Redis SET NX). */
  onlyIfAbsent?: boolean;
  /** Store only if the key is present (Redis SET XX). */
  onlyIfPresent?: boolean;
}

export interface SetItem {
  key: Bytes;
  value: Bytes;
  ttlMs?: number;
  onlyIfAbsent?: boolean;
  onlyIfPresent?: boolean;
}

/** The server's counters since it started; durations in milliseconds. */
export interface Stats {
  hits: number;
  misses: number;
  sets: number;
  deletes: number;
  evictions: number;
  expirations: number;
  entries: number;
  memoryUsedBytes: number;
  memoryLimitBytes: number;
  hitRate: number;
  uptimeMs: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
  /** A random 64-bit number, so a bigint. */
  generation: bigint;
  eviction: string;
  segmentPath: string;
}

/** How far a prewarm has got; `done` is true on the final counts. */
export interface PrewarmProgress {
  requested: number;
  loaded: number;
  skipped: number;
  failed: number;
  elapsedMs: number;
  done: boolean;
}

export interface PrewarmOptions extends CallOptions {
  /** How many hot keys to load; 0 or unset: the server's --prewarm-keys. */
  keys?: number;
  /** How long the server may spend; unset: its --prewarm-timeout. */
  sourceTimeoutMs?: number;
  /**
   * Called with each progress message, the final one included. When it throws, the
   * stream is cancelled at once and prewarm rejects with what it threw.
   */
  onProgress?: (p: PrewarmProgress) => void;
}

/** The sidecar's limit on keys per BatchGet: a larger batch goes to it whole, to get its BATCH_TOO_LARGE. */
const MAX_BATCH = 1000;

const encoder = new TextEncoder();

function bytes(b: Bytes): Uint8Array {
  return typeof b === "string" ? encoder.encode(b) : b;
}

function duration(ms: number | undefined): Duration | undefined {
  if (ms === undefined) {
    return undefined;
  }
  const nanos = BigInt(Math.round(ms * 1e6));
  return create(DurationSchema, { seconds: nanos / 1_000_000_000n, nanos: Number(nanos % 1_000_000_000n) });
}

function millis(d: Duration | undefined): number {
  return d ? Number(d.seconds) * 1000 + d.nanos / 1e6 : 0;
}

function condition(o: { onlyIfAbsent?: boolean; onlyIfPresent?: boolean }): SetCondition {
  if (o.onlyIfAbsent && o.onlyIfPresent) {
    throw new RangeError("cachee: onlyIfAbsent and onlyIfPresent exclude each other");
  }
  return o.onlyIfAbsent ? SetCondition.IF_ABSENT : o.onlyIfPresent ? SetCondition.IF_PRESENT : SetCondition.UNSPECIFIED;
}

/** Waits ms, or until signal aborts (then false). */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const onAbort = () => (clearTimeout(t), resolve(false));
    // Remove the listener when the timer fires, or a long-lived signal collects one per retry.
    const t = setTimeout(() => (signal?.removeEventListener("abort", onAbort), resolve(true)), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function canceled(signal: AbortSignal): CanceledError {
  return new CanceledError("CANCELLED", "the call's signal aborted", undefined, {}, { cause: signal.reason });
}

/**
 * A connection to a cachee sidecar, and a reader of its shared-memory segment when the
 * addon is there. One per process is enough: calls share one HTTP/2 connection, opened
 * at the first call. `close()` ends both, for good.
 */
export class Client {
  /** The gRPC target, in normal form: `unix:///path` or `host:port`. */
  readonly target: string;
  private readonly rpc: RpcClient<typeof CacheService>;
  /** The same connection without the application's interceptors, for the segment reader's own calls. */
  private readonly ownRpc: RpcClient<typeof CacheService>;
  private readonly sessions: Http2SessionManager;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly shm: Shm | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private reconnecting: NodeJS.Timeout | undefined;

  constructor(options: ClientOptions = {}) {
    this.target = resolveTarget(options.address);
    const { baseUrl, nodeOptions } = transportTarget(this.target);
    this.sessions = new Http2SessionManager(baseUrl, {}, nodeOptions);
    const token = resolveAuthToken(options.authToken);
    const auth: Interceptor[] = token
      ? [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${token}`);
            return next(req);
          },
        ]
      : [];
    const transport = (interceptors: Interceptor[]): Transport =>
      createGrpcTransport({
        baseUrl,
        sessionManager: this.sessions,
        interceptors,
        // BatchGet of many large values exceeds small limits; the sidecar bounds messages.
        readMaxBytes: 0x7fffffff,
      });
    this.rpc = createClient(CacheService, transport([...auth, ...(options.interceptors ?? [])]));
    this.ownRpc = options.interceptors?.length ? createClient(CacheService, transport(auth)) : this.rpc;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    const dir = resolveShmDir(options.shmDir);
    this.shm = dir === null ? undefined : Shm.start(dir, this.sidecar(), this.timeoutMs);
  }

  private sidecar() {
    return {
      generation: async (timeoutMs: number) => {
        try {
          return (await this.ownRpc.stats({}, { timeoutMs })).generation;
        } catch (e) {
          throw toCacheeError(e); // named as the contract names it: "UNAUTHENTICATED ..."
        }
      },
      recordAccess: async (refs: bigint[], unreportedHits: bigint, timeoutMs: number) => {
        await this.ownRpc.recordAccess(create(RecordAccessRequestSchema, { refs, unreportedHits }), { timeoutMs });
      },
    };
  }

  /**
   * Closes the client, for good: reports the shared-memory hits not yet reported
   * (best effort, within the default deadline), stops reading the segment and closes
   * the connection. Every call after it fails with ClosedError at once, and a call in
   * flight completes or fails with ClosedError. Idempotent.
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      clearTimeout(this.reconnecting);
      this.closing = (async () => {
        try {
          await this.shm?.close();
        } finally {
          this.sessions.abort(this.closedError());
        }
      })();
    }
    return this.closing;
  }

  /** What the segment reader is doing, or undefined when shared memory is off or the addon is missing. */
  shmStatus(): ShmStatus | undefined {
    return this.shm?.status();
  }

  /**
   * Whether the client knows the sidecar is down: its last connection attempt failed
   * and none has succeeded since. A lost connection is then not retried (the call
   * fails at once) while the client reconnects in the background.
   */
  private knownDown(): boolean {
    return this.sessions.state() === "error";
  }

  /** Redials in the background while the sidecar is known to be down, backing off as the contract says. */
  private reconnect(delay: number = RECONNECT.initialMs): void {
    if (this.reconnecting || this.closed) {
      return;
    }
    this.reconnecting = setTimeout(async () => {
      const state = await this.sessions.connect();
      this.reconnecting = undefined;
      if (state === "error" && !this.closed) {
        this.reconnect(Math.min(delay * RECONNECT.multiplier, RECONNECT.maxMs));
      }
    }, delay).unref();
  }

  private closedError(cause?: unknown): ClosedError {
    return new ClosedError("CLOSED", "client closed", undefined, {}, cause === undefined ? undefined : { cause });
  }

  /**
   * Sends the call `send` makes, and sends it again as mayRetry allows. `send` must
   * reuse one request: a retry sends the same message, not a copy.
   */
  private async call<T>(r: Rpc, send: (o: { timeoutMs: number; signal?: AbortSignal }) => Promise<T>, o: CallOptions = {}): Promise<T> {
    if (this.closed) {
      throw this.closedError();
    }
    // The client's own deadline, not the caller's: running out of it means the sidecar
    // did not answer in time (SidecarTimeoutError, also an UnavailableError).
    const own = o.timeoutMs === undefined;
    const deadline = performance.now() + (o.timeoutMs ?? this.timeoutMs);
    for (let attempt = 1; ; attempt++) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        throw new (own ? SidecarTimeoutError : DeadlineExceededError)("DEADLINE_EXCEEDED", "deadline passed before the call");
      }
      if (o.signal?.aborted) {
        throw canceled(o.signal);
      }
      let err: CacheeError;
      try {
        // Whole milliseconds: grpc-go refuses a grpc-timeout with a fraction in it.
        return await send({ timeoutMs: Math.max(1, Math.floor(remaining)), signal: o.signal });
      } catch (e) {
        if (this.closed) {
          throw this.closedError(e);
        }
        err = toCacheeError(e, { ownDeadline: own, aborted: o.signal?.aborted ?? false });
      }
      const down = this.knownDown();
      if (down) {
        this.reconnect();
      }
      if (!mayRetry(r, err.code, err.reason, down) || attempt >= this.retry.maxAttempts) {
        throw err;
      }
      const wait = backoffMs(this.retry, attempt);
      if (performance.now() + wait >= deadline) {
        throw err;
      }
      if (!(await sleep(wait, o.signal))) {
        throw canceled(o.signal!);
      }
    }
  }

  /**
   * The value under `key`, or undefined when it is absent or expired. A hit in the
   * shared-memory segment resolves without I/O; anything else asks the sidecar.
   */
  async get(key: Bytes, o?: CallOptions): Promise<Uint8Array | undefined> {
    if (this.closed) {
      throw this.closedError();
    }
    const v = this.shm?.get(key);
    if (v !== undefined) {
      return v;
    }
    const req = create(GetRequestSchema, { key: bytes(key) });
    const res = await this.call(RPC.Get, (co) => this.rpc.get(req, co), o);
    return res.found ? res.value : undefined;
  }

  /**
   * The value under `key` from the shared-memory segment, with no Promise and no I/O;
   * undefined when the segment cannot answer (a miss, no segment read, the addon
   * missing, or any doubt about the segment): then call get(), which asks the sidecar.
   */
  getSync(key: Bytes): Uint8Array | undefined {
    if (this.closed) {
      throw this.closedError();
    }
    return this.shm?.get(key);
  }

  /** Stores `value`; false only when a condition was not met. */
  async set(key: Bytes, value: Bytes, o: SetOptions = {}): Promise<boolean> {
    const req = create(SetRequestSchema, { key: bytes(key), value: bytes(value), ttl: duration(o.ttlMs), condition: condition(o) });
    const r = req.condition === SetCondition.UNSPECIFIED ? RPC.Set : RPC.SetIf;
    return (await this.call(r, (co) => this.rpc.set(req, co), o)).stored;
  }

  /** Removes `key`; whether it was there. */
  async delete(key: Bytes, o?: CallOptions): Promise<boolean> {
    const req = create(DeleteRequestSchema, { key: bytes(key) });
    return (await this.call(RPC.Delete, (co) => this.rpc.delete(req, co), o)).deleted;
  }

  /**
   * Values in the order of `keys` (undefined where absent); at most 1000 keys. Keys
   * the shared-memory segment holds are read from it; the sidecar is asked for the rest.
   */
  async getMany(keys: Bytes[], o?: CallOptions): Promise<(Uint8Array | undefined)[]> {
    if (this.closed) {
      throw this.closedError();
    }
    const results: (Uint8Array | undefined)[] = new Array(keys.length).fill(undefined);
    const ask: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const v = keys.length <= MAX_BATCH ? this.shm?.get(keys[i]) : undefined;
      if (v === undefined) {
        ask.push(i);
      } else {
        results[i] = v;
      }
    }
    if (ask.length === 0) {
      return results;
    }
    const req = create(BatchGetRequestSchema, { keys: ask.map((i) => bytes(keys[i])) });
    const res = await this.call(RPC.BatchGet, (co) => this.rpc.batchGet(req, co), o);
    if (res.results.length !== ask.length) {
      throw new InternalError("INTERNAL", `BatchGet returned ${res.results.length} results for ${ask.length} keys`);
    }
    res.results.forEach((x, j) => (results[ask[j]] = x.found ? x.value : undefined));
    return results;
  }

  /** Stores items in order; one flag per item. On error, earlier items may be stored. */
  async setMany(items: SetItem[], o?: CallOptions): Promise<boolean[]> {
    const req = create(BatchSetRequestSchema, {
      items: items.map((it) =>
        create(BatchSetItemSchema, { key: bytes(it.key), value: bytes(it.value), ttl: duration(it.ttlMs), condition: condition(it) }),
      ),
    });
    const r = req.items.some((it) => it.condition !== SetCondition.UNSPECIFIED) ? RPC.BatchSetIf : RPC.BatchSet;
    return (await this.call(r, (co) => this.rpc.batchSet(req, co), o)).stored;
  }

  async stats(o?: CallOptions): Promise<Stats> {
    const req = create(StatsRequestSchema);
    const r: StatsResponse = await this.call(RPC.Stats, (co) => this.rpc.stats(req, co), o);
    return {
      hits: Number(r.hits),
      misses: Number(r.misses),
      sets: Number(r.sets),
      deletes: Number(r.deletes),
      evictions: Number(r.evictions),
      expirations: Number(r.expirations),
      entries: Number(r.entries),
      memoryUsedBytes: Number(r.memoryUsedBytes),
      memoryLimitBytes: Number(r.memoryLimitBytes),
      hitRate: r.hitRate,
      uptimeMs: millis(r.uptime),
      latencyP50Ms: millis(r.latencyP50),
      latencyP95Ms: millis(r.latencyP95),
      latencyP99Ms: millis(r.latencyP99),
      generation: r.generation,
      eviction: r.eviction,
      segmentPath: r.segmentPath,
    };
  }

  /**
   * Loads the hottest keys from the server's prewarm source, yielding each progress
   * message; the last has `done` set. Leaving the loop early (break, or an exception)
   * cancels the stream, and the sidecar stops loading. Not retried: a prewarm that
   * failed part-way is not restarted behind the caller's back. Without a prewarm
   * source the server fails it with PrewarmNotConfiguredError.
   */
  async *prewarmStream(o: PrewarmOptions = {}): AsyncGenerator<PrewarmProgress, void, undefined> {
    if (this.closed) {
      throw this.closedError();
    }
    if ((o.keys ?? 0) < 0) {
      throw new RangeError("cachee: keys must not be negative");
    }
    const req = create(PrewarmRequestSchema, { keys: o.keys ?? 0, timeout: duration(o.sourceTimeoutMs) });
    const own = o.timeoutMs === undefined;
    const stop = new AbortController();
    const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
    const stream = this.rpc.prewarm(req, { timeoutMs: o.timeoutMs ?? DEFAULT_PREWARM_TIMEOUT_MS, signal })[Symbol.asyncIterator]();
    try {
      while (true) {
        let next: IteratorResult<PrewarmResponse>;
        try {
          next = await stream.next();
        } catch (e) {
          throw this.closed ? this.closedError(e) : toCacheeError(e, { ownDeadline: own, aborted: o.signal?.aborted ?? false });
        }
        if (next.done) {
          break;
        }
        const p = progress(next.value);
        yield p;
        if (p.done) {
          return;
        }
      }
    } finally {
      // Reached when the stream ends, fails, or its consumer stops early: then the
      // RPC is cancelled at once rather than left to its deadline.
      stop.abort();
    }
    throw new InternalError("INTERNAL", "prewarm ended without final counts");
  }

  /**
   * prewarmStream() with a callback: calls `onProgress` with each progress message and
   * resolves to the final counts. When the callback throws, the stream is cancelled at
   * once and prewarm rejects with the callback's own exception, not a CacheeError.
   */
  async prewarm(o: PrewarmOptions = {}): Promise<PrewarmProgress> {
    for await (const p of this.prewarmStream(o)) {
      o.onProgress?.(p);
      if (p.done) {
        return p;
      }
    }
    throw new InternalError("INTERNAL", "prewarm ended without final counts");
  }
}

function progress(r: PrewarmResponse): PrewarmProgress {
  const c = r.counts;
  return {
    requested: Number(c?.requested ?? 0),
    loaded: Number(c?.loaded ?? 0),
    skipped: Number(c?.skipped ?? 0),
    failed: Number(c?.failed ?? 0),
    elapsedMs: millis(c?.elapsed),
    done: r.done,
  };
}
