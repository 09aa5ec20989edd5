// The SDK contract's end-to-end cases against the real binary: the token, refusals
// retried, prewarm progress and a callback that throws, cancellation, close().
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";

import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

import * as cachee from "../src/index.js";
import { Client } from "../src/index.js";
import { codeName } from "../src/errors.js";
import { eventually, Redis, Server, sleep } from "./server.js";

const LIFECYCLE = JSON.parse(readFileSync(new URL("../../../testdata/contract/lifecycle.json", import.meta.url), "utf8"));
const TOKEN = "ts-test-token-0123456789";
let n = 0;
const newKey = (name: string) => `ts:${name}:${process.pid}:${n++}`;

/** Every attempt a client sends: its method, its request message, and how it ended. */
class Attempts {
  readonly log: { method: string; req: unknown; code: string; signal: AbortSignal }[] = [];
  readonly interceptor: Interceptor = (next) => async (req) => {
    const entry = { method: req.method.name, req: req.message, code: "PENDING", signal: req.signal };
    this.log.push(entry);
    try {
      const res = await next(req);
      entry.code = "OK";
      return res;
    } catch (e) {
      entry.code = codeName(ConnectError.from(e).code);
      throw e;
    }
  };
}

function everyCall(c: Client): Record<string, () => Promise<unknown>> {
  return {
    Get: () => c.get("k"),
    BatchGet: () => c.getMany(["k"]),
    Set: () => c.set("k", "v"),
    BatchSet: () => c.setMany([{ key: "k", value: "v" }]),
    Delete: () => c.delete("k"),
    Stats: () => c.stats(),
    Prewarm: () => c.prewarm(),
  };
}

describe("lifecycle", () => {
  let server: Server;
  before(async () => (server = await Server.start()));
  after(async () => await server.stop());

  it("fails every call after close with ClosedError, with no attempt", async () => {
    const rec = new Attempts();
    const c = new Client({ address: server.sock, shmDir: server.shm, interceptors: [rec.interceptor] });
    assert.equal(await c.set("after-close", "v"), true);
    await c.close();
    const sent = rec.log.length;
    const calls = everyCall(c);
    for (const { method, class: cls } of LIFECYCLE.after_close) {
      const Cls = (cachee as unknown as Record<string, new () => Error>)[`${cls}Error`];
      await assert.rejects(calls[method](), Cls, method);
    }
    assert.throws(() => c.getSync("k"), cachee.ClosedError);
    await assert.rejects(async () => {
      for await (const _ of c.prewarmStream()) {
        // never reached
      }
    }, cachee.ClosedError);
    assert.equal(rec.log.length, sent, "no attempt after close");
    await c.close(); // again: nothing changes
    await assert.rejects(c.get("k"), cachee.ClosedError);
  });

  it("completes or fails with ClosedError the calls in flight at close", async () => {
    const c = new Client({ address: server.sock, shmDir: "", timeoutMs: 30_000 });
    const key = newKey("inflight");
    await c.set(key, "v".repeat(1000));
    let stop = false;
    const outcomes: unknown[] = [];
    const loop = async () => {
      while (!stop) {
        try {
          await c.get(key);
        } catch (e) {
          outcomes.push(e);
          return;
        }
      }
    };
    const loops = Array.from({ length: 4 }, loop);
    await sleep(100);
    await c.close();
    await Promise.race([Promise.all(loops), sleep(30_000)]);
    stop = true;
    assert.equal(outcomes.length, 4);
    for (const e of outcomes) assert.ok(e instanceof cachee.ClosedError, String(e));
  });

  it("cancels a call when its signal aborts", async () => {
    const s = await Server.start();
    const rec = new Attempts();
    const c = new Client({ address: s.sock, shmDir: "", timeoutMs: 60_000, interceptors: [rec.interceptor] });
    try {
      const key = newKey("cancel");
      assert.equal(await c.set(key, "v"), true);
      // Stopped, so that the call hangs until it is cancelled.
      await s.pause();
      const ac = new AbortController();
      const call = c.get(key, { signal: ac.signal });
      const settled = await Promise.race([call.then(() => "resolved", () => "rejected"), sleep(200).then(() => "pending")]);
      assert.equal(settled, "pending");
      ac.abort();
      await assert.rejects(call, cachee.CanceledError);
      s.resume();
      assert.deepEqual(await c.get(key), new TextEncoder().encode("v"));
      // The attempt itself ended CANCELLED: the RPC was cancelled, not left to run.
      assert.ok(rec.log.some((x) => x.method === "Get" && x.code === "CANCELLED"), JSON.stringify(rec.log));
    } finally {
      await c.close();
      await s.stop();
    }
  });

  it("sends the token, and types a refusal UnauthenticatedError", async () => {
    const s = await Server.start([`--auth-token=${TOKEN}`]);
    const key = newKey("token");
    try {
      for (const authToken of [undefined, "wrong-token-0123456789"]) {
        const c = new Client({ address: s.sock, shmDir: "", authToken });
        const err = await c.set(key, "v").catch((e) => e);
        assert.ok(err instanceof cachee.UnauthenticatedError, String(err));
        assert.equal(err.code, "UNAUTHENTICATED");
        await c.close();
      }
      const c = new Client({ address: s.sock, shmDir: s.shm, authToken: TOKEN });
      assert.equal(await c.set(key, "v"), true);
      // The segment is confirmed with the token too.
      await eventually("the client to read the segment", () => c.shmStatus()?.generation != null);
      assert.deepEqual(c.getSync(key), new TextEncoder().encode("v"));
      await c.close();
      process.env.CACHEE_AUTH_TOKEN = TOKEN;
      try {
        const fromEnv = new Client({ address: s.sock, shmDir: "" });
        assert.deepEqual(await fromEnv.get(key), new TextEncoder().encode("v"));
        await fromEnv.close();
      } finally {
        delete process.env.CACHEE_AUTH_TOKEN;
      }
      // Without it, the segment of a sidecar that requires one is not read either.
      const none = new Client({ address: s.sock, shmDir: s.shm });
      await eventually("the confirmation to be refused", () => (none.shmStatus()?.reason ?? "").includes("UNAUTHENTICATED"));
      assert.equal(none.shmStatus()?.generation, null);
      await none.close();
    } finally {
      await s.stop();
    }
  });
});

describe("overloaded", () => {
  const BIG = 700 << 10;
  let s: Server;
  let key: string;
  // A sidecar whose client memory holds little more than one answer of the largest
  // message, holding a large value: concurrent Gets of it over gRPC each reserve the
  // value's bytes for their answer, and those that find no room are refused with
  // OVERLOADED before anything is sent.
  before(async () => {
    s = await Server.start(["--max-client-memory=2334720"]);
    key = newKey("big");
    const c = new Client({ address: s.sock, shmDir: "", timeoutMs: 30_000 });
    await c.set(key, new Uint8Array(BIG).fill(0x6f));
    await c.close();
  });
  after(async () => await s.stop());

  it("retries OVERLOADED with the same request", async () => {
    const rec = new Attempts();
    // More attempts than the default, so that a call refused again and again still
    // ends in a success to look at.
    const c = new Client({
      address: s.sock,
      shmDir: "",
      timeoutMs: 60_000,
      retry: { maxAttempts: 50, initialBackoffMs: 10, maxBackoffMs: 100 },
      interceptors: [rec.interceptor],
    });
    try {
      let refused = false;
      for (let round = 0; round < 20 && !refused; round++) {
        const got = await Promise.all(Array.from({ length: 32 }, () => c.get(key)));
        assert.ok(got.every((v) => v?.length === BIG && v[0] === 0x6f));
        refused = rec.log.some((x) => x.code === "UNAVAILABLE");
      }
      assert.ok(refused, "the sidecar refused no call: OVERLOADED was not exercised");
    } finally {
      await c.close();
    }
    // A refused attempt was followed by a successful one with the same request object:
    // retried, and the request was not built again for the retry.
    const byRequest = new Map<unknown, string[]>();
    for (const x of rec.log) {
      assert.equal(x.method, "Get");
      byRequest.set(x.req, [...(byRequest.get(x.req) ?? []), x.code]);
    }
    const retried = [...byRequest.values()].filter((codes) => codes.length > 1);
    assert.ok(retried.length > 0);
    for (const codes of retried) {
      assert.equal(codes.at(-1), "OK");
      assert.deepEqual(new Set(codes.slice(0, -1)), new Set(["UNAVAILABLE"]));
    }
  });

  it("raises OverloadedError when the retries run out", async () => {
    const c = new Client({ address: s.sock, shmDir: "", timeoutMs: 30_000, retry: { maxAttempts: 1 } });
    const errors: unknown[] = [];
    try {
      for (let round = 0; round < 20 && errors.length === 0; round++) {
        await Promise.all(Array.from({ length: 64 }, () => c.get(key).catch((e) => errors.push(e))));
      }
    } finally {
      await c.close();
    }
    assert.ok(errors.length > 0, "the sidecar refused no call");
    for (const e of errors) {
      assert.ok(e instanceof cachee.OverloadedError && e instanceof cachee.UnavailableError, String(e));
      assert.equal(e.reason, "OVERLOADED");
      assert.ok(e.cause instanceof ConnectError && e.cause.code === Code.Unavailable);
    }
  });
});

describe("prewarm", () => {
  const KEYS = 20_000;
  let redis: Redis;
  let s: Server;
  before(async () => {
    redis = await Redis.start();
    // Generous L2 timeouts: this machine is shared, and a slow write is not the point.
    const writer = await Server.start([`--l2=${redis.url}`, "--max-memory=64mb", "--l2-timeout=10s"]);
    const w = new Client({ address: writer.sock, shmDir: "", timeoutMs: 30_000 });
    for (let start = 0; start < KEYS; start += 1000) {
      await w.setMany(Array.from({ length: 1000 }, (_, i) => ({ key: `warm:${start + i}`, value: `v${start + i}` })));
    }
    await w.close();
    await writer.stop();
    // A sidecar with an L2 prewarms as it starts: of one key, which is over once a
    // prewarm of one key is not refused.
    s = await Server.start([`--l2=${redis.url}`, "--max-memory=64mb", "--l2-timeout=10s", "--prewarm-timeout=60s", "--prewarm-keys=1"]);
    const c = new Client({ address: s.sock, shmDir: "" });
    assert.ok((await settledEntries(c)) <= 2);
    await c.close();
  });
  after(async () => {
    await s?.stop();
    await redis?.stop();
  });

  /** The sidecar's entry count once no prewarm runs: a prewarm of one key is refused with PrewarmRunningError while one does. */
  async function settledEntries(c: Client): Promise<number> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await c.prewarm({ keys: 1 });
        return (await c.stats()).entries;
      } catch (e) {
        assert.ok(e instanceof cachee.PrewarmRunningError, String(e));
        assert.ok(Date.now() < deadline, "the prewarm did not stop");
        await sleep(10);
      }
    }
  }

  it("streams progress to a callback and resolves to the final counts", async () => {
    const c = new Client({ address: s.sock, shmDir: "" });
    try {
      const seen: cachee.PrewarmProgress[] = [];
      const final = await c.prewarm({ keys: KEYS, onProgress: (p) => seen.push(p) });
      assert.ok(final.done && final.requested === KEYS);
      assert.equal(final.loaded + final.skipped + final.failed, KEYS);
      assert.ok(seen.length >= 2);
      assert.deepEqual(seen.at(-1), final);
      assert.ok(!seen.slice(0, -1).some((p) => p.done));
      const loaded = seen.map((p) => p.loaded);
      assert.deepEqual(loaded, [...loaded].sort((a, b) => a - b));
      assert.deepEqual(await c.get("warm:123"), new TextEncoder().encode("v123"));
    } finally {
      await c.close();
    }
  });

  it("cancels the stream at once when the callback throws, and rejects with its exception", async () => {
    // A sidecar that has not loaded the keys yet, so that what this one loads is counted.
    s = await restartEmpty(s);
    const rec = new Attempts();
    const c = new Client({ address: s.sock, shmDir: "", interceptors: [rec.interceptor] });
    try {
      const thrown = new Error("enough");
      let calls = 0;
      const err = await c
        .prewarm({
          keys: KEYS,
          onProgress: () => {
            calls++;
            throw thrown;
          },
        })
        .catch((e) => e);
      assert.equal(err, thrown, "the callback's own exception, not a CacheeError");
      assert.equal(calls, 1);
      // The stream was cancelled by the time prewarm rejected, not left to its deadline.
      assert.equal(rec.log.filter((x) => x.method === "Prewarm").length, 1);
      assert.ok(rec.log.find((x) => x.method === "Prewarm")!.signal.aborted);
      // So the sidecar stopped loading (left open, it would load every key; a fast one
      // may have loaded many before the cancel reached it).
      assert.ok((await settledEntries(c)) < KEYS);
    } finally {
      await c.close();
    }
  });

  it("yields progress as an async iterator, and leaving it early cancels the stream", async () => {
    s = await restartEmpty(s);
    const rec = new Attempts();
    const c = new Client({ address: s.sock, shmDir: "", interceptors: [rec.interceptor] });
    try {
      for await (const p of c.prewarmStream({ keys: KEYS })) {
        assert.ok(!p.done);
        break;
      }
      assert.ok(rec.log.find((x) => x.method === "Prewarm")!.signal.aborted, "the stream was cancelled");
      assert.ok((await settledEntries(c)) < KEYS);
      const all: cachee.PrewarmProgress[] = [];
      for await (const p of c.prewarmStream({ keys: KEYS })) all.push(p);
      assert.ok(all.at(-1)!.done && all.at(-1)!.requested === KEYS);
      assert.ok(!all.slice(0, -1).some((p) => p.done));
    } finally {
      await c.close();
    }
  });

  /** A fresh sidecar on the same L2 and source, in a new directory: its L1 is empty. */
  async function restartEmpty(old: Server): Promise<Server> {
    await old.stop();
    const fresh = await Server.start([`--l2=${redis.url}`, "--max-memory=64mb", "--l2-timeout=10s", "--prewarm-timeout=60s", "--prewarm-keys=1"]);
    const c = new Client({ address: fresh.sock, shmDir: "" });
    assert.ok((await settledEntries(c)) <= 2);
    await c.close();
    return fresh;
  }
});
