// The TypeScript row of bench/report's "SDK paths": one hot key read through each path
// Node has to a sidecar, per-call latency.
//
//     CACHEE_SOCKET=... CACHEE_SHM=... BENCH_KEY=hot BENCH_N=200000 BENCH_TIME_LIMIT=20 \
//         node dist/bench/paths.js
//
// prints one JSON object per path and line:
//
//     {"sdk":"typescript","path":"shm","p50_ns":...,"p99_ns":...,"mean_ns":...,"n":...,"timing":"spaced"}
//
// Paths: shm (Client.getSync, answered from the segment through the addon), client-shm
// (await Client.get, answered from the segment: the Promise included), grpc
// (Client.get with shared memory off) and redis (ioredis's GET over the same socket,
// cachee's RESP). Each call is timed on its own with process.hrtime.bigint ("spaced":
// a figure includes one read of the clock and the loop's step, which BENCH_EMPTY=1
// prints as the path "empty"), after a warm-up, for BENCH_N calls per path or until a
// quarter of BENCH_TIME_LIMIT (seconds, for the whole runner) has passed. The key must
// hold a value (100 bytes in make bench) and the segment must be the sidecar's. Every
// value read is checked against the one gRPC returns.
import { Redis } from "ioredis";

import { Client } from "../src/index.js";

const WARMUP = 2000;

function same(a: Uint8Array | null | undefined, b: Uint8Array): boolean {
  return a != null && a.length === b.length && a.every((x, i) => x === b[i]);
}

async function measure(name: string, fn: () => unknown, want: Uint8Array, n: number, limitMs: number): Promise<bigint[]> {
  for (let i = 0; i < WARMUP; i++) {
    if (!same((await fn()) as Uint8Array, want)) throw new Error(`${name}: wrong value`);
  }
  const out: bigint[] = [];
  const stop = Date.now() + limitMs;
  const clock = process.hrtime.bigint;
  for (let i = 0; i < n; i++) {
    const t0 = clock();
    const r = fn();
    // A synchronous path is not awaited: awaiting would time the microtask queue.
    if (r instanceof Promise) await r;
    out.push(clock() - t0);
    if ((i & 1023) === 0 && Date.now() > stop) break;
  }
  return out;
}

function emit(path: string, samples: bigint[]): void {
  samples.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const n = samples.length;
  const mean = samples.reduce((s, x) => s + x, 0n) / BigInt(n);
  const row = {
    sdk: "typescript",
    path,
    p50_ns: Number(samples[n >> 1]),
    p99_ns: Number(samples[Math.min(n - 1, Math.floor((n * 99) / 100))]),
    mean_ns: Number(mean),
    n,
    timing: "spaced",
  };
  console.log(JSON.stringify(row));
}

async function main(): Promise<void> {
  const sock = process.env.CACHEE_SOCKET!;
  const shm = process.env.CACHEE_SHM!;
  const key = process.env.BENCH_KEY ?? "hot";
  const n = Number(process.env.BENCH_N ?? "200000");
  const limitMs = (Number(process.env.BENCH_TIME_LIMIT ?? "60") * 1000) / 4;

  const grpcOnly = new Client({ address: sock, shmDir: "", timeoutMs: 30_000 });
  const want = await grpcOnly.get(key);
  if (want === undefined) throw new Error(`${key} is not in the sidecar`);
  if (process.env.BENCH_EMPTY) emit("empty", await measure("empty", () => want, want, n, limitMs));

  const c = new Client({ address: sock, shmDir: shm, timeoutMs: 30_000 });
  const deadline = Date.now() + 10_000;
  while (c.shmStatus()?.generation == null) {
    if (Date.now() > deadline) throw new Error(`the client does not read ${shm}: ${c.shmStatus()?.reason ?? "no native addon"}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  emit("shm", await measure("shm", () => c.getSync(key), want, n, limitMs));
  emit("client-shm", await measure("client-shm", () => c.get(key), want, n, limitMs));
  await c.close();

  emit("grpc", await measure("grpc", () => grpcOnly.get(key), want, n, limitMs));
  await grpcOnly.close();

  const r = new Redis({ path: sock, enableReadyCheck: false, maxRetriesPerRequest: 0 });
  emit("redis", await measure("redis", () => r.getBuffer(key), want, n, limitMs));
  r.disconnect();
}

await main();
