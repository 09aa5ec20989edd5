// Runs the README's example, as a user would, against a real cachee.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { fileURLToPath } from "node:url";

import { cleanEnv, Server } from "./server.js";

const PKG = fileURLToPath(new URL("../../", import.meta.url)); // sdk/typescript, from dist/test/

let server: Server;
before(async () => (server = await Server.start()));
after(async () => await server.stop());

it("README example prints the value", () => {
  const readme = readFileSync(join(PKG, "README.md"), "utf8");
  const example = /## Example\n\n```ts\n([\s\S]*?)```/.exec(readme)![1];
  // An ES module in a directory that resolves "@cachee/client" to this package, as
  // an installed dependency would.
  const dir = join(server.dir, "app");
  mkdirSync(join(dir, "node_modules", "@cachee"), { recursive: true });
  symlinkSync(PKG, join(dir, "node_modules", "@cachee", "client"));
  writeFileSync(join(dir, "example.mjs"), example);
  const out = execFileSync(process.execPath, [join(dir, "example.mjs")], {
    env: { ...cleanEnv(), CACHEE_SOCKET: server.sock },
    timeout: 60_000,
  });
  assert.equal(out.toString(), '{"name":"Ada"}\n');
});
