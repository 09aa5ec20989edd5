// Shared-memory reads against the real binary: hits equal what gRPC answers, need no
// I/O, count in the sidecar's stats, and survive SIGKILL, restart and SIGSTOP of the
// sidecar without a torn or wrong value; without the addon the client works over gRPC.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

import type { Interceptor } from "@connectrpc/connect";

import * as cachee from "../src/index.js";
import { Client } from "../src/index.js";
import { cleanEnv, eventually, Server, sleep } from "./server.js";

let n = 0;
const newKey = (name: string) => `ts:${name}:${process.pid}:${n++}`;
const enc = (s: string) => new TextEncoder().encode(s);
const reading = (c: Client) => c.shmStatus()?.generation != null;
/** Lets timers and I/O run: a loop of shared-memory hits never leaves the microtask queue. */
const yieldLoop = () => new Promise((r) => setImmediate(r));

async function reader(s: Server, o: cachee.ClientOptions = {}): Promise<Client> {
  const c = new Client({ address: s.sock, shmDir: s.shm, ...o });
  await eventually("the client to read the segment", () => reading(c));
  return c;
}

describe("shared memory", () => {
  let s: Server;
  let c: Client;
  before(async () => {
    s = await Server.start();
    c = await reader(s);
  });
  after(async () => {
    await c.close();
    await s.stop();
  });

  it("answers hits equal to gRPC's, with no I/O", async () => {
    const key = newKey("eq");
    const values = new Map<string, Uint8Array>();
    for (let i = 0; i < 200; i++) values.set(`${key}:${i}`, new Uint8Array((i * 37) % 3000).fill(i % 256));
    values.set(`${key}:empty`, new Uint8Array());
    values.set(`${key}:utf8 ✓`, enc("naïve ✓"));
    await c.setMany([...values].map(([k, v]) => ({ key: k, value: v })));
    const hits = c.shmStatus()!.hits;
    let attempts = 0;
    const counting: Interceptor = (next) => (req) => (attempts++, next(req));
    const rec = new Client({ address: s.sock, shmDir: s.shm, interceptors: [counting] });
    const grpcOnly = new Client({ address: s.sock, shmDir: "" });
    try {
      assert.equal(grpcOnly.shmStatus(), undefined);
      assert.equal(grpcOnly.getSync(key), undefined);
      for (const [k, v] of values) {
        const [a, b] = [await c.get(k), await grpcOnly.get(k)];
        assert.deepEqual(a, v);
        assert.deepEqual(b, v);
        assert.deepEqual(c.getSync(k), v);
        assert.deepEqual(c.getSync(enc(k)), v);
      }
      assert.equal(await c.get(`${key}:absent`), undefined);
      assert.equal(c.getSync(`${key}:absent`), undefined);
      const keys = [...values.keys(), `${key}:absent`];
      assert.deepEqual(await c.getMany(keys), await grpcOnly.getMany(keys));
      // Every present key was a hit in shared memory three times (get, two getSync) and once in getMany.
      assert.equal(c.shmStatus()!.hits, hits + 4 * values.size);
      // A hit resolves from the segment: no call reaches the transport.
      await eventually("the second client to read the segment", () => reading(rec));
      const before = attempts;
      for (const [k, v] of values) assert.deepEqual(await rec.get(k), v);
      assert.equal(attempts, before);
    } finally {
      await rec.close();
      await grpcOnly.close();
    }
  });

  it("reports hits to the sidecar with RecordAccess", async () => {
    const key = newKey("stats");
    await c.set(key, "v");
    const before = (await c.stats()).hits;
    for (let i = 0; i < 1000; i++) assert.deepEqual(c.getSync(key), enc("v"));
    await eventually("the hits to be reported", async () => (await c.stats()).hits >= before + 1000);
  });

  it("reports the last hits on close", async () => {
    const key = newKey("close");
    await c.set(key, "v");
    const before = (await c.stats()).hits;
    const r = await reader(s);
    for (let i = 0; i < 100; i++) r.getSync(key);
    await r.close();
    assert.ok((await c.stats()).hits >= before + 100);
  });

  it("reads a miss through gRPC", async () => {
    const key = newKey("miss");
    const hits = c.shmStatus()!.hits;
    const before = await c.stats();
    assert.equal(await c.get(key), undefined);
    assert.equal((await c.stats()).misses, before.misses + 1);
    assert.equal(c.shmStatus()!.hits, hits);
  });

  it("does not read the segment of another sidecar", async () => {
    const other = await Server.start();
    const x = new Client({ address: s.sock, shmDir: other.shm });
    try {
      await eventually("the client to compare generations", () => (x.shmStatus()?.reason ?? "").includes("generation"));
      assert.equal(x.shmStatus()!.generation, null);
      const key = newKey("other");
      await x.set(key, "s's");
      assert.deepEqual(await x.get(key), enc("s's"));
    } finally {
      await x.close();
      await other.stop();
    }
  });

  it("reads from worker threads, each with its own client", async () => {
    const key = newKey("worker");
    await c.set(key, "from a worker");
    const src = `
      const { workerData, parentPort } = require("node:worker_threads");
      import(workerData.index).then(async ({ Client }) => {
        const c = new Client({ address: workerData.sock, shmDir: workerData.shm });
        const deadline = Date.now() + 30000;
        while (c.shmStatus()?.generation == null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        let hits = 0;
        for (let i = 0; i < 10000; i++) if (new TextDecoder().decode(c.getSync(workerData.key)) === "from a worker") hits++;
        await c.close();
        parentPort.postMessage(hits);
      });`;
    const index = new URL("../src/index.js", import.meta.url).href;
    const results = await Promise.all(
      [0, 1].map(
        () =>
          new Promise((resolve, reject) =>
            new Worker(src, { eval: true, workerData: { index, sock: s.sock, shm: s.shm, key } }).on("message", resolve).on("error", reject),
          ),
      ),
    );
    assert.deepEqual(results, [10000, 10000]);
  });
});

// Values that name their key and version and end with a digest of everything before
// them, with a filler whose length varies with the version, so that a torn read (half
// of one version and half of another, or another key's bytes) cannot pass check().
function selfChecking(key: string, version: number): Uint8Array {
  let body = `${key}|${version}|`;
  for (let i = 0; i < (version % 97) + 20; i++) body += String.fromCharCode(97 + ((version + i) % 26));
  return enc(`${body}|${createHash("sha256").update(body).digest("hex").slice(0, 16)}`);
}

function check(key: string, v: Uint8Array): void {
  const s = Buffer.from(v).toString();
  const i = s.lastIndexOf("|");
  const body = s.slice(0, i);
  assert.equal(s.slice(i + 1), createHash("sha256").update(body).digest("hex").slice(0, 16), `torn value for ${key}: ${s}`);
  const [k, ver] = body.split("|");
  assert.equal(k, key);
  assert.deepEqual(v, selfChecking(key, Number(ver)));
}

/** Three async readers of random keys (shared memory and gRPC) and a writer rewriting them, recording any value that fails its check and any error but UnavailableError. */
class ReadLoop {
  stop = false;
  bad: unknown[] = [];
  reads = 0;
  unavailable = 0;
  private readonly tasks: Promise<void>[];

  constructor(
    private readonly c: Client,
    private readonly keys: string[],
  ) {
    this.tasks = [this.read(1), this.read(2), this.read(3), this.write()];
  }

  private async read(seed: number): Promise<void> {
    let x = seed;
    while (!this.stop) {
      x = (x * 1103515245 + 12345) >>> 0;
      const k = this.keys[x % this.keys.length];
      try {
        const v = seed === 3 ? this.c.getSync(k) ?? (await this.c.get(k)) : await this.c.get(k);
        this.reads++;
        if (v !== undefined) check(k, v);
      } catch (e) {
        if (e instanceof cachee.UnavailableError) this.unavailable++;
        else this.bad.push(e);
      }
      if (this.reads % 64 === 0) await yieldLoop();
    }
  }

  private async write(): Promise<void> {
    let ver = 0;
    while (!this.stop) {
      ver++;
      const k = this.keys[(ver * 7919) % this.keys.length];
      try {
        await this.c.set(k, selfChecking(k, ver));
      } catch (e) {
        if (e instanceof cachee.UnavailableError) await sleep(1);
        else this.bad.push(e);
      }
    }
  }

  async end(): Promise<void> {
    this.stop = true;
    await Promise.all(this.tasks);
  }
}

describe("a sidecar that dies, restarts and stalls", () => {
  for (const [name, restart] of [
    ["warm", []],
    ["new-file", ["--max-memory=16mb"]],
  ] as const) {
    it(`SIGKILL under a read loop, then a ${name} restart: no torn value, shared memory again`, async () => {
      const s = await Server.start();
      const c = await reader(s);
      try {
        const keys = Array.from({ length: 200 }, (_, i) => `restart:${i}`);
        await c.setMany(keys.map((k) => ({ key: k, value: selfChecking(k, 0) })));
        const gen0 = (await c.stats()).generation;
        const loop = new ReadLoop(c, keys);
        try {
          const base = c.shmStatus()!.hits;
          await eventually("shm hits before the kill", () => c.shmStatus()!.hits > base + 5000);
          await s.kill();
          await eventually("the segment to be dropped", () => !reading(c));
          await eventually("reads failing with UnavailableError", () => loop.unavailable > 0);
          await s.start(...restart);
          await eventually("the new segment to be read", () => reading(c) && c.shmStatus()!.maps >= 2);
          const hits = c.shmStatus()!.hits;
          await eventually("shm hits after the restart", () => c.shmStatus()!.hits > hits + 5000);
        } finally {
          await loop.end();
        }
        assert.deepEqual(loop.bad.slice(0, 5), []);
        const st = await c.stats();
        assert.notEqual(st.generation, gen0);
        if (name === "warm") assert.ok(st.entries > 0, "a warm restart lost every entry");
        const grpcOnly = new Client({ address: s.sock, shmDir: "" });
        for (const k of keys) {
          const [a, b] = [await c.get(k), await grpcOnly.get(k)];
          assert.deepEqual(a, b);
          if (a !== undefined) check(k, a);
        }
        await grpcOnly.close();
      } finally {
        await c.close();
        await s.stop();
      }
    });
  }

  it("SIGSTOP: stops reading the stalled segment, calls fail with SidecarTimeoutError, reads again after SIGCONT", async () => {
    const s = await Server.start();
    const c = await reader(s);
    try {
      const key = newKey("stall");
      await c.set(key, "v");
      const maps = c.shmStatus()!.maps;
      await s.pause();
      try {
        await eventually("the stalled segment to be dropped", () => !reading(c));
        assert.equal(c.getSync(key), undefined);
        const err = await c.get(key).catch((e) => e);
        assert.ok(err instanceof cachee.SidecarTimeoutError && err instanceof cachee.UnavailableError, String(err));
      } finally {
        s.resume();
      }
      await eventually("shared memory again", () => reading(c) && c.shmStatus()!.maps > maps);
      assert.deepEqual(c.getSync(key), enc("v"));
    } finally {
      await c.close();
      await s.stop();
    }
  });
});

describe("without the addon", () => {
  let s: Server;
  before(async () => (s = await Server.start()));
  after(async () => await s.stop());

  it("works over gRPC and says why shared memory is off, once", () => {
    const index = new URL("../src/index.js", import.meta.url).href;
    const script = `
      const { Client } = await import(${JSON.stringify(index)});
      for (let i = 0; i < 2; i++) {
        const c = new Client({ address: process.argv[1], shmDir: process.argv[2] });
        if (c.shmStatus() !== undefined || c.getSync("k") !== undefined) throw new Error("shared memory on");
        if (!(await c.set("no-native", "v"))) throw new Error("set");
        if (new TextDecoder().decode(await c.get("no-native")) !== "v") throw new Error("get");
        await c.close();
      }
      console.log("ok");`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, s.sock, s.shm], {
      env: { ...cleanEnv(), CACHEE_NATIVE_ADDON: fileURLToPath(new URL("missing.node", import.meta.url)) },
      timeout: 60_000,
    });
    const stderr = r.stderr.toString();
    assert.equal(r.status, 0, stderr);
    assert.equal(r.stdout.toString(), "ok\n");
    const warnings = stderr.split("\n").filter((l) => l.includes("CACHEE_NO_NATIVE"));
    assert.equal(warnings.length, 1, stderr);
    assert.match(warnings[0], /gRPC/);
    assert.match(warnings[0], /missing\.node/);
  });
});
