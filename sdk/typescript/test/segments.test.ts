// Every case of the segment conformance fixtures (sdk/testdata/segments, written by the
// Go writer's generator) through the addon's binding of the Rust reader, with the
// reader's clock injected as each case gives it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { addon } from "../src/native.js";

const FIXTURES = new URL("../../../testdata/segments/", import.meta.url); // from dist/test/
const CASES = JSON.parse(readFileSync(new URL("cases.json", FIXTURES), "utf8"));

type Hex = { hex: string; len?: number };

function decode(b: Hex): Buffer {
  const p = Buffer.from(b.hex, "hex");
  if (!b.len) return p;
  const out = Buffer.alloc(b.len);
  for (let i = 0; i < b.len; i++) out[i] = p[i % p.length];
  return out;
}

const native = addon();

/** The segment, or the fixtures' name for why it cannot be opened. */
function open(name: string) {
  try {
    return new native!.Segment(new URL(`${name}/cachee.seg`, FIXTURES).pathname);
  } catch (e) {
    const kind = String((e as Error).message).split(":")[0];
    assert.ok(kind === "format" || kind === "stale", (e as Error).message);
    return kind;
  }
}

describe("segment fixtures", () => {
  it("the addon is built for this platform", () => assert.ok(native, "native addon missing: npm run build builds it"));

  for (const c of CASES.cases) {
    it(c.name, () => {
      const seg = open(c.segment);
      if (typeof seg === "string") {
        assert.equal(seg, c.expect, c.why);
        return;
      }
      const got = seg.lookup(decode(c.key), c.now_ms);
      assert.equal(got.result, c.expect, c.why);
      if (got.result === "hit") {
        assert.deepEqual(Buffer.from(got.value!), decode(c.value), c.why);
        assert.equal(got.ref, BigInt(c.ref), c.why);
      } else {
        assert.equal(got.value ?? null, null);
        assert.equal(got.ref, 0n);
      }
    });
  }

  for (const info of CASES.segments) {
    it(`generation and clock of ${info.name}`, () => {
      const seg = open(info.name);
      if (typeof seg !== "string") {
        assert.equal(seg.generation, BigInt(info.generation));
        assert.equal(seg.clockMs, info.clock_ms);
      }
    });
  }

  it("a string key is its UTF-8 bytes; other keys are refused", () => {
    const r = new native!.Reader(new URL("data", FIXTURES).pathname, { confirm: false });
    assert.equal(r.maintain(), null); // the fixture has no writer holding its lock: not read
    assert.equal(r.getStr("user:42"), null);
    assert.throws(() => r.get(42 as unknown as Uint8Array));
    r.close();
  });
});
