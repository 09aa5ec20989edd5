import { create } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { createClient, type Client as RpcClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { resolveAddress, transportTarget } from "./address.js";
import { type CacheeError, DeadlineExceededError, InternalError, toCacheeError, UnavailableError } from "./errors.js";
import {
  BatchGetRequestSchema,
  BatchSetItemSchema,
  BatchSetRequestSchema,
  CacheService,
  DeleteRequestSchema,
  GetRequestSchema,
  PrewarmRequestSchema,
  type PrewarmResponse,
  SetCondition,
  SetRequestSchema,
  StatsRequestSchema,
  type StatsResponse,
} from "./gen/cachee/v1/cache_service_pb.js";

/** Keys and values are bytes; strings are sent as UTF-8. */
export type Bytes = Uint8Array | string;

/**
 * Retries of calls that failed with UNAVAILABLE (the server is restarting or not up
 * yet), with exponential backoff and jitter. Calls safe to repeat (get, getMany, stats,
 * set without a condition) are retried on any UNAVAILABLE; a conditional set, delete and
 * setMany only when the server refused them unapplied (reason OVERLOADED or SHUTTING_DOWN),
 * since a connection reset may follow an applied write. No retry waits past the call's deadline:
 * when the next wait would end after it, the last error is thrown.
 */
export interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 4, initialBackoffMs: 50, maxBackoffMs: 1000, multiplier: 2 };
export const DEFAULT_TIMEOUT_MS = 5000;
/** A prewarm runs until the server's own --prewarm-timeout; the call must outlive it. */
export const DEFAULT_PREWARM_TIMEOUT_MS = 60_000;

export interface ClientOptions {
  /** `unix:///path.sock`, a socket path or `host:port`; see resolveAddress. */
  address?: string;
  /** Deadline of each call that is not given its own `timeoutMs`. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
}

export interface CallOptions {
  /** This call's deadline, retries included. */
  timeoutMs?: number;
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
  onProgress?: (p: PrewarmProgress) => void;
}

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

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => (clearTimeout(t), resolve());
    // Remove the listener when the timer fires, or a long-lived signal collects one per retry.
    const t = setTimeout(() => (signal?.removeEventListener("abort", onAbort), resolve()), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** ErrorInfo reasons of an UNAVAILABLE the server sends before it applies anything. */
const REFUSED_REASONS: ReadonlySet<string> = new Set(["OVERLOADED", "SHUTTING_DOWN"]);

/**
 * Whether a call that failed with `err` may be sent again. Only UNAVAILABLE is retried.
 * `safe` calls (get, getMany, stats, set without a condition) give the same result when
 * repeated, so any UNAVAILABLE is retried; any other call (a conditional set, delete,
 * setMany) only when the server refused it before applying it (reason OVERLOADED or
 * SHUTTING_DOWN): a plain UNAVAILABLE, e.g. a connection reset, may follow an applied write.
 * @internal
 */
export function mayRetry(safe: boolean, err: CacheeError): boolean {
  return err instanceof UnavailableError && (safe || (err.reason !== undefined && REFUSED_REASONS.has(err.reason)));
}

/**
 * A connection to a cachee sidecar. One per process is enough: calls share one HTTP/2
 * connection, opened at the first call. `close()` ends it.
 */
export class Client {
  readonly address: ReturnType<typeof resolveAddress>;
  private readonly rpc: RpcClient<typeof CacheService>;
  private readonly sessions: Http2SessionManager;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;

  constructor(options: ClientOptions = {}) {
    this.address = resolveAddress(options.address);
    const { baseUrl, nodeOptions } = transportTarget(this.address);
    this.sessions = new Http2SessionManager(baseUrl, {}, nodeOptions);
    const transport = createGrpcTransport({
      baseUrl,
      sessionManager: this.sessions,
      // BatchGet of many large values exceeds small limits; the server bounds requests.
      readMaxBytes: 0x7fffffff,
    });
    this.rpc = createClient(CacheService, transport);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  /** Closes the connection; calls after this fail. */
  close(): void {
    this.sessions.abort();
  }

  /** Calls `fn`, retrying as `mayRetry` allows; `safe`: the call may be repeated after it was applied. */
  private async call<T>(
    fn: (o: { timeoutMs: number; signal?: AbortSignal }) => Promise<T>,
    o: CallOptions = {},
    safe = true,
  ): Promise<T> {
    const deadline = Date.now() + (o.timeoutMs ?? this.timeoutMs);
    for (let attempt = 1; ; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new DeadlineExceededError("DEADLINE_EXCEEDED", "deadline passed before the call");
      }
      let err;
      try {
        return await fn({ timeoutMs: remaining, signal: o.signal });
      } catch (e) {
        err = toCacheeError(e);
      }
      if (!mayRetry(safe, err) || attempt >= this.retry.maxAttempts || o.signal?.aborted) {
        throw err;
      }
      const step = Math.min(this.retry.maxBackoffMs, this.retry.initialBackoffMs * this.retry.multiplier ** (attempt - 1));
      const wait = step / 2 + (Math.random() * step) / 2; // jitter spreads clients restarting together
      if (Date.now() + wait >= deadline) {
        throw err;
      }
      await sleep(wait, o.signal);
    }
  }

  /** The value under `key`, or undefined when it is absent or expired. */
  async get(key: Bytes, o?: CallOptions): Promise<Uint8Array | undefined> {
    const req = create(GetRequestSchema, { key: bytes(key) });
    const r = await this.call((co) => this.rpc.get(req, co), o);
    return r.found ? r.value : undefined;
  }

  /** Stores `value`; false only when a condition was not met. */
  async set(key: Bytes, value: Bytes, o: SetOptions = {}): Promise<boolean> {
    const req = create(SetRequestSchema, { key: bytes(key), value: bytes(value), ttl: duration(o.ttlMs), condition: condition(o) });
    // A conditional set repeated after it was applied would report its own write.
    const safe = req.condition === SetCondition.UNSPECIFIED;
    return (await this.call((co) => this.rpc.set(req, co), o, safe)).stored;
  }

  /** Removes `key`; whether it was there. */
  async delete(key: Bytes, o?: CallOptions): Promise<boolean> {
    const req = create(DeleteRequestSchema, { key: bytes(key) });
    return (await this.call((co) => this.rpc.delete(req, co), o, false)).deleted;
  }

  /** Values in the order of `keys` (undefined where absent); at most 1000 keys. */
  async getMany(keys: Bytes[], o?: CallOptions): Promise<(Uint8Array | undefined)[]> {
    const req = create(BatchGetRequestSchema, { keys: keys.map(bytes) });
    const r = await this.call((co) => this.rpc.batchGet(req, co), o);
    return r.results.map((x) => (x.found ? x.value : undefined));
  }

  /** Stores items in order; one flag per item. On error, earlier items may be stored. */
  async setMany(items: SetItem[], o?: CallOptions): Promise<boolean[]> {
    const req = create(BatchSetRequestSchema, {
      items: items.map((it) =>
        create(BatchSetItemSchema, { key: bytes(it.key), value: bytes(it.value), ttl: duration(it.ttlMs), condition: condition(it) }),
      ),
    });
    return (await this.call((co) => this.rpc.batchSet(req, co), o, false)).stored;
  }

  async stats(o?: CallOptions): Promise<Stats> {
    const r: StatsResponse = await this.call((co) => this.rpc.stats(create(StatsRequestSchema), co), o);
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
   * Loads the hottest keys from the server's prewarm source, calling `onProgress` with
   * each progress message, and resolves to the final counts. Not retried: a prewarm
   * that failed part-way is not restarted behind the caller's back. Without a prewarm
   * source the server fails it with FailedPreconditionError.
   */
  async prewarm(o: PrewarmOptions = {}): Promise<PrewarmProgress> {
    if ((o.keys ?? 0) < 0) {
      throw new RangeError("cachee: keys must not be negative");
    }
    const req = create(PrewarmRequestSchema, { keys: o.keys ?? 0, timeout: duration(o.sourceTimeoutMs) });
    try {
      for await (const msg of this.rpc.prewarm(req, { timeoutMs: o.timeoutMs ?? DEFAULT_PREWARM_TIMEOUT_MS, signal: o.signal })) {
        const p = progress(msg);
        if (p.done) {
          return p;
        }
        o.onProgress?.(p);
      }
    } catch (e) {
      throw toCacheeError(e);
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
