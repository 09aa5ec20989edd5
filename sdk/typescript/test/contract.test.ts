// The SDK contract's cases (docs/sdk-contract.md, sdk/testdata/contract), which every
// cachee SDK's tests run: changing one rule here fails one of these.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";

import * as cachee from "../src/index.js";
import { Client, resolveAuthToken, resolveShmDir, resolveTarget } from "../src/index.js";
import { SEGMENT_FILE } from "../src/address.js";
import { codeName, errorClass, reasonName, reasonValue, toCacheeError } from "../src/errors.js";
import { ErrorReason } from "../src/gen/cachee/v1/error_reason_pb.js";
import { backoffMs, DEFAULT_PREWARM_TIMEOUT_MS, DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, mayRetry, RECONNECT, RPC, type Rpc } from "../src/retry.js";

const CONTRACT = new URL("../../../testdata/contract/", import.meta.url); // from dist/test/
const load = (name: string) => JSON.parse(readFileSync(new URL(name, CONTRACT), "utf8"));
const ADDRESS = load("address.json");
const ERRORS = load("errors.json");
const RETRY = load("retry.json");
const LIFECYCLE = load("lifecycle.json");

describe("addresses", () => {
  for (const c of ADDRESS.target_cases) {
    it(`target: ${c.name}`, () => assert.equal(resolveTarget(c.explicit, c.env), c.target));
  }
  for (const c of ADDRESS.shm_cases) {
    it(`shm: ${c.name}`, () => assert.equal(resolveShmDir(c.explicit, c.env), c.shm_dir));
  }
  it("segment file", () => assert.equal(SEGMENT_FILE, ADDRESS.segment_file));
  for (const c of ADDRESS.token_cases) {
    it(`token: ${c.name}`, async () => {
      const token = resolveAuthToken(c.explicit, c.env);
      assert.equal(token === undefined ? null : `Bearer ${token}`, c.metadata);
      // What a call carries: the header as the first interceptor sees it, the call
      // stopped there (no sidecar is needed).
      const saved = process.env.CACHEE_AUTH_TOKEN;
      if (c.env.CACHEE_AUTH_TOKEN === undefined) delete process.env.CACHEE_AUTH_TOKEN;
      else process.env.CACHEE_AUTH_TOKEN = c.env.CACHEE_AUTH_TOKEN;
      let sent: string | null = "unset";
      const stop = new Error("stop");
      const client = new Client({
        address: "/nonexistent/c.sock",
        shmDir: "",
        authToken: c.explicit ?? undefined,
        interceptors: [
          () => (req) => {
            sent = req.header.get("authorization");
            throw stop;
          },
        ],
      });
      if (saved === undefined) delete process.env.CACHEE_AUTH_TOKEN;
      else process.env.CACHEE_AUTH_TOKEN = saved;
      await assert.rejects(client.get("k"));
      await client.close();
      assert.equal(sent, c.metadata);
    });
  }
});

/** A failed call as connect reports it: a code, a message, and the ErrorInfo detail the sidecar attaches. */
export function statusError(code: string, reason: string | null): ConnectError {
  const details = [];
  if (reason !== null) {
    const w = new BinaryWriter();
    w.tag(1, WireType.LengthDelimited).string(reason);
    w.tag(2, WireType.LengthDelimited).string("cachee");
    w.tag(3, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string("field").tag(2, WireType.LengthDelimited).string("key").join();
    details.push({ type: "google.rpc.ErrorInfo", value: w.finish() });
  }
  const err = new ConnectError("m", codeOf(code));
  // As connect stores the details of an error read from the wire.
  err.details.push(...details);
  return err;
}

function codeOf(name: string): Code {
  const c = (Object.values(Code).filter((v) => typeof v === "number") as Code[]).find((v) => codeName(v) === name);
  assert.ok(c !== undefined, name);
  return c;
}

/** The contract's classes err belongs to. */
function classes(err: unknown): Set<string> {
  const exported = cachee as unknown as Record<string, abstract new (...a: never[]) => unknown>;
  return new Set((ERRORS.classes as string[]).filter((name) => err instanceof exported[`${name}Error`]));
}

describe("error classes", () => {
  for (const c of ERRORS.cases) {
    it(`${c.code}/${c.reason}`, () => {
      const cause = statusError(c.code, c.reason);
      const err = toCacheeError(cause);
      assert.deepEqual(classes(err), new Set([c.class, ...c.also]));
      assert.ok(err instanceof cachee.CacheeError);
      assert.equal(err.code, c.code);
      assert.equal(err.reason, c.reason ?? undefined);
      assert.equal(err.cause, cause, "the error keeps what the transport threw");
      if (c.reason !== null) {
        assert.deepEqual(err.metadata, { field: "key" });
      }
    });
  }

  it("client cases", () => {
    const bySituation = new Map<string, { class: string; also: string[] }>(ERRORS.client_cases.map((x: { situation: string }) => [x.situation, x]));
    const errs = new Map<string, Error>([
      ["a call on a closed client", new cachee.ClosedError("CLOSED", "client closed")],
      ["the SDK's default deadline ran out (the caller gave none)", toCacheeError(statusError("DEADLINE_EXCEEDED", null), { ownDeadline: true })],
      ["the caller's own deadline ran out", toCacheeError(statusError("DEADLINE_EXCEEDED", null), { ownDeadline: false })],
    ]);
    assert.deepEqual(new Set(errs.keys()), new Set(bySituation.keys()));
    for (const [situation, err] of errs) {
      const want = bySituation.get(situation)!;
      assert.deepEqual(classes(err), new Set([want.class, ...want.also]), situation);
    }
  });

  it("every reason has a class, named from the generated enum", () => {
    for (const v of Object.values(ErrorReason).filter((x) => typeof x === "number") as ErrorReason[]) {
      if (v === ErrorReason.UNSPECIFIED) continue;
      assert.equal(reasonValue(reasonName(v)), v);
      // UNKNOWN alone is InternalError: a reason with a class of its own changes that.
      assert.equal(errorClass(Code.Unknown, reasonName(v)) === cachee.InternalError, v === ErrorReason.INTERNAL, reasonName(v));
    }
    assert.equal(reasonValue("A_REASON_FROM_A_NEWER_SERVER"), ErrorReason.UNSPECIFIED);
  });

  it("every class is exported and is a CacheeError", () => {
    const exported = cachee as unknown as Record<string, unknown>;
    for (const name of ERRORS.classes as string[]) {
      const cls = exported[`${name}Error`] as { prototype: unknown };
      assert.ok(cls && cls.prototype instanceof cachee.CacheeError, name);
    }
  });
});

const RPCS = new Map<string, Rpc>([
  ["Get/false", RPC.Get],
  ["BatchGet/false", RPC.BatchGet],
  ["Stats/false", RPC.Stats],
  ["Delete/false", RPC.Delete],
  ["Set/false", RPC.Set],
  ["Set/true", RPC.SetIf],
  ["BatchSet/false", RPC.BatchSet],
  ["BatchSet/true", RPC.BatchSetIf],
  ["Prewarm/false", RPC.Prewarm],
  ["RecordAccess/false", RPC.RecordAccess],
]);

describe("retries", () => {
  // One client whose calls never reach the network: the loop's attempts are counted
  // and each fails as the case says, so the rule is checked through Client's own loop.
  const client = new Client({ address: "/nonexistent/c.sock", shmDir: "", retry: { maxAttempts: 2 } });
  const loop = client as unknown as {
    call(r: Rpc, send: () => Promise<unknown>, o: { timeoutMs: number }): Promise<unknown>;
    knownDown(): boolean;
  };
  for (const c of RETRY.cases) {
    const name = `${c.method}${c.conditional ? "?" : ""}/${c.code}/${c.reason}/${c.known_down ? "down" : "up"}`;
    it(name, async () => {
      const r = RPCS.get(`${c.method}/${c.conditional}`)!;
      assert.equal(r.name, c.method);
      assert.equal(mayRetry(r, c.code, c.reason ?? undefined, c.known_down), c.retry);
      loop.knownDown = () => c.known_down;
      let attempts = 0;
      await assert.rejects(
        loop.call(
          r,
          async () => {
            attempts++;
            throw statusError(c.code, c.reason);
          },
          { timeoutMs: 120_000 },
        ),
      );
      assert.equal(attempts, c.retry ? 2 : 1);
    });
  }

  it("every method has a case", () => {
    for (const m of RETRY.methods) assert.ok(RPCS.has(`${m}/false`), m);
  });

  it("defaults", () => {
    const d = RETRY.defaults;
    assert.equal(DEFAULT_TIMEOUT_MS, d.timeout_ms);
    assert.equal(DEFAULT_PREWARM_TIMEOUT_MS, d.prewarm_timeout_ms);
    assert.equal(DEFAULT_RETRY.maxAttempts, d.max_attempts);
    assert.equal(DEFAULT_RETRY.initialBackoffMs, d.backoff_initial_ms);
    assert.equal(DEFAULT_RETRY.multiplier, d.backoff_multiplier);
    assert.equal(DEFAULT_RETRY.maxBackoffMs, d.backoff_max_ms);
    assert.equal(d.backoff_jitter, "uniform in [d/2, d]");
    assert.deepEqual(RECONNECT, { initialMs: d.reconnect_initial_ms, multiplier: d.reconnect_multiplier, maxMs: d.reconnect_max_ms });
    for (let n = 1; n < 10; n++) {
      const step = Math.min(d.backoff_initial_ms * d.backoff_multiplier ** (n - 1), d.backoff_max_ms);
      for (let i = 0; i < 50; i++) {
        const w = backoffMs(DEFAULT_RETRY, n);
        assert.ok(step / 2 <= w && w <= step, `${w} for retry ${n}`);
      }
    }
  });

  it("no wait past the deadline", async () => {
    const c = new Client({ address: "/nonexistent/c.sock", shmDir: "", retry: { maxAttempts: 100, initialBackoffMs: 500, maxBackoffMs: 500 } });
    const l = c as unknown as typeof loop;
    l.knownDown = () => false;
    let attempts = 0;
    const err = await l
      .call(
        RPC.Get,
        async () => {
          attempts++;
          throw statusError("UNAVAILABLE", null);
        },
        { timeoutMs: 200 },
      )
      .catch((e) => e);
    // The first wait (250-500 ms) would end after the 200 ms deadline: the last error, at once.
    assert.equal(attempts, 1);
    assert.ok(err instanceof cachee.UnavailableError);
    await c.close();
  });

  it("after-close cases name every call", () => {
    assert.deepEqual(new Set(LIFECYCLE.after_close.map((x: { method: string }) => x.method)), new Set(["Get", "BatchGet", "Set", "BatchSet", "Delete", "Stats", "Prewarm"]));
    assert.deepEqual(new Set(LIFECYCLE.after_close.map((x: { class: string }) => x.class)), new Set(["Closed"]));
  });
});
