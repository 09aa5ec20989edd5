import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  Client,
  DeadlineExceededError,
  InvalidArgumentError,
  MessageTooLargeError,
  PrewarmNotConfiguredError,
  UnavailableError,
  ValueTooLargeError,
  resolveTarget,
} from "../src/index.js";
import { eventually, Server } from "./server.js";

const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
let n = 0;
const newKey = (name: string) => `ts:${name}:${process.pid}:${n++}`;

describe("Client against a real cachee", () => {
  let server: Server;
  let c: Client;
  before(async () => {
    server = await Server.start();
    c = new Client({ address: `unix://${server.sock}`, shmDir: server.shm, timeoutMs: 10_000 });
  });
  after(async () => {
    await c.close();
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
    // A hit read from shared memory reaches the sidecar's count with the next RecordAccess.
    await eventually("the hit in the stats", async () => (await c.stats()).hits >= before.hits + 1);
    const s = await c.stats();
    assert.ok(s.sets >= before.sets + 1 && s.misses >= before.misses + 1);
    assert.ok(s.entries >= 1 && s.memoryLimitBytes > 0 && s.uptimeMs > 0);
    assert.equal(s.eviction, "cachee-lfu");
    assert.equal(typeof s.generation, "bigint");
  });

  it("maps prewarm without a source to PrewarmNotConfiguredError", async () => {
    const err = await c.prewarm({ onProgress: () => {} }).then(
      () => assert.fail("prewarm succeeded"),
      (e) => e,
    );
    assert.ok(err instanceof PrewarmNotConfiguredError, String(err));
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

  it("raises the typed error of an oversized set, with its reason", async () => {
    const over = await c.set(newKey("big"), new Uint8Array((1 << 20) + 1)).catch((e) => e);
    assert.ok(over instanceof ValueTooLargeError && over instanceof InvalidArgumentError, String(over));
    assert.equal(over.reason, "VALUE_TOO_LARGE");
    assert.equal(over.metadata.limit, String(1 << 20));
    // Far over: the message limit itself, which the sidecar names with a reason too.
    const far = await c.set(newKey("big"), new Uint8Array(2 << 20)).catch((e) => e);
    assert.ok(far instanceof InvalidArgumentError, String(far));
    assert.ok(far instanceof ValueTooLargeError || far instanceof MessageTooLargeError, String(far));
    assert.ok(far.reason === "VALUE_TOO_LARGE" || far.reason === "MESSAGE_TOO_LARGE", String(far));
    assert.ok(far.cause, "the error keeps the transport's");
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
    assert.equal(resolveTarget(undefined, { CACHE_HOST: host, CACHE_PORT: port }), server.tcp);
    const saved = { ...process.env };
    delete process.env.CACHEE_SOCKET;
    process.env.CACHE_HOST = host;
    process.env.CACHE_PORT = port;
    const tcp = new Client({ shmDir: "" });
    process.env = saved;
    try {
      const key = newKey("tcp");
      assert.equal(await tcp.set(key, "over tcp"), true);
      assert.equal(text(await c.get(key)), "over tcp");
    } finally {
      await tcp.close();
    }
  });
});

describe("a sidecar that is down", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("fails a call at once, and reconnects in the background once it is up", async () => {
    dirs.push(mkdtempSync(join(tmpdir(), "cachee-ts")));
    const sock = join(dirs[0], "late.sock");
    let attempts = 0;
    const c = new Client({
      address: sock,
      shmDir: "",
      timeoutMs: 30_000,
      interceptors: [(next) => (req) => (attempts++, next(req))],
    });
    try {
      // Known down after its one attempt: not retried, whatever the deadline.
      const err = await c.set("late", "v").catch((e) => e);
      assert.ok(err instanceof UnavailableError && !(err instanceof DeadlineExceededError), String(err));
      assert.equal(attempts, 1);
      const late = await Server.start([], sock);
      try {
        await eventually("the client to reach the sidecar", async () => (await c.set("late", "v").catch(() => false)) === true);
      } finally {
        await late.stop();
      }
    } finally {
      await c.close();
    }
  });
});
