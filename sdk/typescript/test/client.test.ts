import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  Client,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  ResourceExhaustedError,
  UnavailableError,
  resolveAddress,
} from "../src/index.js";
import { mayRetry } from "../src/client.js";
import { Server } from "./server.js";

const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
let n = 0;
const newKey = (name: string) => `ts:${name}:${process.pid}:${n++}`;

describe("Client against a real cachee", () => {
  let server: Server;
  let c: Client;
  before(async () => {
    server = await Server.start();
    c = new Client({ address: `unix://${server.sock}`, timeoutMs: 10_000 });
  });
  after(async () => {
    c.close();
    await server.stop();
  });

  it("gets, sets and deletes binary-safe values", async () => {
    const key = newKey("gsd");
    assert.equal(await c.get(key), undefined);
    const value = new Uint8Array(120).map((_, i) => [0, 1, 0xff][i % 3]);
    assert.equal(await c.set(key, value, { ttlMs: 3_600_000 }), true);
    assert.deepEqual(await c.get(key), value);
    assert.equal(await c.set(key, "text"), true);
    assert.equal(text(await c.get(new TextEncoder().encode(key))), "text");
    assert.equal(await c.delete(key), true);
    assert.equal(await c.delete(key), false);
    assert.equal(await c.get(key), undefined);
  });

  it("stores an empty value as a hit", async () => {
    const key = newKey("empty");
    await c.set(key, new Uint8Array());
    assert.deepEqual(await c.get(key), new Uint8Array());
  });

  it("honours conditions", async () => {
    const key = newKey("cond");
    assert.equal(await c.set(key, "x", { onlyIfPresent: true }), false);
    assert.equal(await c.set(key, "1", { onlyIfAbsent: true }), true);
    assert.equal(await c.set(key, "2", { onlyIfAbsent: true }), false);
    assert.equal(await c.set(key, "3", { onlyIfPresent: true }), true);
    assert.equal(text(await c.get(key)), "3");
    await assert.rejects(c.set(key, "4", { onlyIfAbsent: true, onlyIfPresent: true }), RangeError);
  });

  it("lets a TTL expire", async () => {
    const key = newKey("ttl");
    await c.set(key, "v", { ttlMs: 50 });
    const deadline = Date.now() + 10_000;
    while ((await c.get(key)) !== undefined) {
      assert.ok(Date.now() < deadline, "key did not expire"); // expiry runs on the server's clock
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  it("batches", async () => {
    const k = [0, 1, 2].map((i) => newKey(`batch${i}`));
    assert.deepEqual(
      await c.setMany([
        { key: k[0], value: "a" },
        { key: k[1], value: "b", ttlMs: 60_000 },
        { key: k[0], value: "z", onlyIfAbsent: true },
      ]),
      [true, true, false],
    );
    assert.deepEqual((await c.getMany([k[1], k[2], k[0], k[1]])).map(text), ["b", undefined, "a", "b"]);
  });

  it("reports stats", async () => {
    const before = await c.stats();
    const key = newKey("stats");
    await c.set(key, "v");
    await c.get(key);
    await c.get(key + ":absent");
    const s = await c.stats();
    assert.ok(s.sets >= before.sets + 1 && s.hits >= before.hits + 1 && s.misses >= before.misses + 1);
    assert.ok(s.entries >= 1 && s.memoryLimitBytes > 0 && s.uptimeMs > 0);
    assert.equal(s.eviction, "cachee-lfu");
    assert.equal(typeof s.generation, "bigint");
  });

  it("maps prewarm without a source to FailedPreconditionError", async () => {
    const err = await c.prewarm({ onProgress: () => {} }).then(
      () => assert.fail("prewarm succeeded"),
      (e) => e,
    );
    assert.ok(err instanceof FailedPreconditionError, String(err));
    assert.equal(err.code, "FAILED_PRECONDITION");
    assert.equal(err.reason, "PREWARM_NOT_CONFIGURED");
  });

  it("types invalid arguments with the server's reason", async () => {
    const key = newKey("invalid");
    const cases: [() => Promise<unknown>, string][] = [
      [() => c.get(""), "KEY_EMPTY"],
      [() => c.set(key, new Uint8Array((1 << 20) + 1)), "VALUE_TOO_LARGE"],
      [() => c.set(key, "x", { ttlMs: -1000 }), "INVALID_TTL"],
      [() => c.getMany(new Array(1001).fill("k")), "BATCH_TOO_LARGE"],
    ];
    for (const [call, reason] of cases) {
      const err = await call().then(() => assert.fail(`no ${reason}`), (e) => e);
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.equal(err.reason, reason);
    }
    const err = await c.set(key, new Uint8Array((1 << 20) + 1)).catch((e) => e);
    assert.equal(err.metadata.field, "value");
  });

  it("maps gRPC's own size limit to ResourceExhaustedError without a reason", async () => {
    const err = await c.set(newKey("big"), new Uint8Array(2 << 20)).catch((e) => e);
    assert.ok(err instanceof ResourceExhaustedError, String(err));
    assert.equal(err.reason, undefined);
  });

  it("fails a call whose deadline has passed", async () => {
    await assert.rejects(c.get(newKey("deadline"), { timeoutMs: 0 }), DeadlineExceededError);
  });

  it("runs many calls at once on one connection", async () => {
    const key = newKey("concurrent");
    await c.set(key, "v");
    const got = await Promise.all(Array.from({ length: 50 }, () => c.get(key)));
    assert.deepEqual(got.map(text), new Array(50).fill("v"));
  });

  it("reaches TCP through CACHE_HOST and CACHE_PORT", async () => {
    const [host, port] = server.tcp.split(":");
    assert.deepEqual(resolveAddress(undefined, { CACHE_HOST: host, CACHE_PORT: port }), { host, port: Number(port) });
    const saved = { ...process.env };
    process.env.CACHE_HOST = host;
    process.env.CACHE_PORT = port;
    const tcp = new Client();
    process.env = saved;
    try {
      const key = newKey("tcp");
      assert.equal(await tcp.set(key, "over tcp"), true);
      assert.equal(text(await c.get(key)), "over tcp");
    } finally {
      tcp.close();
    }
  });
});

describe("addresses", () => {
  it("resolves explicit addresses and the environment", () => {
    assert.deepEqual(resolveAddress("unix:///x.sock"), { socket: "/x.sock" });
    assert.deepEqual(resolveAddress("/x.sock"), { socket: "/x.sock" });
    assert.deepEqual(resolveAddress("h:1"), { host: "h", port: 1 });
    assert.deepEqual(resolveAddress(undefined, {}), { socket: "/var/run/cachee/cachee.sock" });
    assert.deepEqual(resolveAddress(undefined, { CACHEE_SOCKET: "/s" }), { socket: "/s" });
    assert.deepEqual(resolveAddress(undefined, { CACHE_HOST: "h" }), { host: "h", port: 6380 });
  });
});

describe("retries", () => {
  const dirs: string[] = [];
  const sockIn = () => {
    dirs.push(mkdtempSync(join(tmpdir(), "cachee-ts")));
    return join(dirs[dirs.length - 1], "late.sock");
  };
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("retries UNAVAILABLE until the server is up", async () => {
    const sock = sockIn();
    const c = new Client({ address: sock, retry: { maxAttempts: 1000, initialBackoffMs: 50, maxBackoffMs: 200 } });
    const late = new Promise<Server>((resolve, reject) => setTimeout(() => Server.start([], sock).then(resolve, reject), 500));
    try {
      assert.equal(await c.set("late", "v", { timeoutMs: 60_000 }), true);
    } finally {
      c.close();
      await (await late).stop();
    }
  });

  it("retries only calls safe to repeat, or refused unapplied", () => {
    const unavailable = (reason?: string) => new UnavailableError("UNAVAILABLE", "x", reason);
    // A connection reset (no reason) after a conditional write may hide an applied write.
    assert.equal(mayRetry(false, unavailable()), false);
    assert.equal(mayRetry(true, unavailable()), true); // get, getMany, stats, plain set
    // The server refused the call before applying it: any call may go again.
    assert.equal(mayRetry(false, unavailable("OVERLOADED")), true);
    assert.equal(mayRetry(false, unavailable("SHUTTING_DOWN")), true);
    assert.equal(mayRetry(false, unavailable("PREWARM_SOURCE_UNAVAILABLE")), false);
    assert.equal(mayRetry(true, new InvalidArgumentError("INVALID_ARGUMENT", "x", "KEY_EMPTY")), false);
  });

  it("stops retrying at the deadline", async () => {
    // Uncapped, these retries would wait about 1000 x 0.5 s.
    const c = new Client({ address: sockIn(), retry: { maxAttempts: 1000, initialBackoffMs: 500, maxBackoffMs: 500 } });
    try {
      const t0 = Date.now();
      // The last attempt's UNAVAILABLE, or DEADLINE_EXCEEDED if the deadline ran out
      // during an attempt on a loaded machine: either way no retry went past it.
      await assert.rejects(
        c.get("k", { timeoutMs: 1000 }),
        (e) => e instanceof UnavailableError || e instanceof DeadlineExceededError,
      );
      // Generous slack for a loaded machine: it stopped near 1 s, not after many retries.
      assert.ok(Date.now() - t0 < 5000);
    } finally {
      c.close();
    }
  });
});
