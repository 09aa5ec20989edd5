// Reads from the sidecar's shared-memory segment through the addon (the Rust reader
// cachee-shm), and the timer that keeps the mapping fresh and reports hits.
//
// Everything about the segment itself (the seqlock, bounds checks, the Expiry rule, the
// liveness checks, remapping after restarts, the lossy hit buffer) is cachee-shm's; this
// module only schedules it, as sdk/go does: Reader.maintain() every check interval, its
// confirmation requests answered with the sidecar's Stats, and hits reported with
// RecordAccess every flush interval.

import type { NativeReader, NativeStatus } from "./native.js";
import { addon, warnNoAddon } from "./native.js";

/** sdk/go's DefaultCheckInterval, DefaultMaxLag and DefaultFlushInterval. */
export const CHECK_INTERVAL_MS = 20;
export const MAX_LAG_MS = 500;
export const FLUSH_INTERVAL_MS = 50;

/** What the segment reader asks of the sidecar, over the client's connection. */
export interface Sidecar {
  /** The sidecar's Stats generation. */
  generation(timeoutMs: number): Promise<bigint>;
  /** RecordAccess. */
  recordAccess(refs: bigint[], unreported: bigint, timeoutMs: number): Promise<void>;
}

/** What a client's segment reader is doing; see Client.shmStatus(). */
export type ShmStatus = NativeStatus & { dir: string };

/** A client's segment reader with its timer. */
export class Shm {
  readonly reader: NativeReader;
  private readonly timer: NodeJS.Timeout;
  private confirming = false;
  private flushing: Promise<void> | undefined;
  private lastFlush = 0;
  private nextFlush: number;
  private woken = false;
  private closed = false;

  /** A reader of the segment in `dir`, or undefined when the addon is not there (said once). */
  static start(dir: string, sidecar: Sidecar, timeoutMs: number): Shm | undefined {
    const a = addon();
    if (!a) {
      warnNoAddon();
      return undefined;
    }
    return new Shm(dir, new a.Reader(dir, { checkIntervalMs: CHECK_INTERVAL_MS, maxLagMs: MAX_LAG_MS }), sidecar, timeoutMs);
  }

  private constructor(
    readonly dir: string,
    reader: NativeReader,
    private readonly sidecar: Sidecar,
    private readonly timeoutMs: number,
  ) {
    this.reader = reader;
    this.nextFlush = performance.now() + FLUSH_INTERVAL_MS;
    // A first step now, so that a client made beside a running sidecar reads the
    // segment as soon as the sidecar confirms it.
    this.step();
    // Unref'd: the reader never keeps a process alive.
    this.timer = setInterval(() => this.tick(), CHECK_INTERVAL_MS).unref();
  }

  /** The value from the segment, or undefined: ask the sidecar. */
  get(key: Uint8Array | string): Uint8Array | undefined {
    const v = typeof key === "string" ? this.reader.getStr(key) : this.reader.get(key);
    if (v === null) {
      // A lookup that found the segment stale wants the check now, not in up to 20 ms.
      if (!this.woken && this.reader.wantsCheck()) {
        this.woken = true;
        setImmediate(() => {
          this.woken = false;
          if (!this.closed) this.step();
        });
      }
      return undefined;
    }
    return v;
  }

  private tick(): void {
    this.step();
    const now = performance.now();
    // Every flush interval, or sooner when the buffer fills, but at most five times an
    // interval, so that a hot read loop costs the sidecar a bounded number of calls.
    if (now >= this.nextFlush || (this.reader.hitsPending() && now - this.lastFlush >= FLUSH_INTERVAL_MS / 5)) {
      this.lastFlush = now;
      this.nextFlush = now + FLUSH_INTERVAL_MS;
      void this.flush();
    }
  }

  /** One maintenance step: checks the segment, or works toward reading one. */
  private step(): void {
    const gen = this.reader.maintain();
    if (gen === null || this.confirming) {
      return;
    }
    // The segment is read only once the sidecar at the client's address reports its
    // generation, so that shared-memory reads and gRPC calls reach the same store.
    this.confirming = true;
    this.sidecar.generation(this.timeoutMs).then(
      (g) => this.reader.confirm(gen, g),
      (e: unknown) => this.reader.confirm(gen, null, `cannot confirm the segment with the sidecar: ${e instanceof Error ? e.message : String(e)}`),
    ).finally(() => (this.confirming = false));
  }

  /**
   * Reports the hits since the last flush: a sample of their refs and the count of the
   * others. Lost when the sidecar cannot be reached, which costs its policy a sample.
   */
  flush(): Promise<void> {
    if (this.flushing) {
      return this.flushing;
    }
    const { refs, unreported } = this.reader.drainHits();
    if (refs.length === 0 && unreported === 0) {
      return Promise.resolve();
    }
    this.flushing = this.sidecar
      .recordAccess(Array.from(refs), BigInt(unreported), this.timeoutMs)
      .catch(() => this.reader.hitsLost(refs.length))
      .finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  status(): ShmStatus {
    const s = this.reader.status();
    // The addon leaves an absent field out; the status names it null.
    return { ...s, generation: s.generation ?? null, reason: s.reason ?? null, dir: this.dir };
  }

  /** Stops the timer, reports the last hits (best effort), stops reading. Final; idempotent. */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
    this.reader.close();
  }
}
