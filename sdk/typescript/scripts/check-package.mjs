// Checks a packed tarball as an application would use it: installed with npm into a
// fresh directory (its dependencies resolved from their ranges), then, against a
// cachee started here, a set over gRPC and a get answered from the shared-memory
// segment through the tarball's own addon.
//
//     node scripts/check-package.mjs cachee-client-0.1.0.tgz path/to/cachee
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const [tarball, cachee] = process.argv.slice(2).map((p) => resolve(p));
if (!tarball || !cachee) {
  throw new Error("usage: check-package.mjs TARBALL CACHEE_BINARY");
}

const files = execFileSync("tar", ["-tzf", tarball]).toString().split("\n").filter(Boolean);
for (const want of ["package/dist/src/index.js", "package/dist/src/index.d.ts", "package/dist/src/gen/cachee/v1/cache_service_pb.js", "package/README.md"]) {
  if (!files.includes(want)) throw new Error(`${tarball} lacks ${want}`);
}
if (!files.some((f) => /^package\/native\/cachee\..+\.node$/.test(f))) throw new Error(`${tarball} has no native addon`);
const stray = files.filter((f) => /\.ts$/.test(f) && !f.endsWith(".d.ts") || f.includes("/test/") || f.includes("/target/"));
if (stray.length) throw new Error(`${tarball} ships ${stray.join(", ")}`);

const dir = mkdtempSync(join(tmpdir(), "cachee-pkg"));
let sidecar;
try {
  const app = join(dir, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", tarball], { cwd: app, stdio: "inherit" });
  const shm = join(dir, "shm");
  mkdirSync(shm);
  const sock = join(dir, "c.sock");
  sidecar = spawn(cachee, [`--socket=${sock}`, `--shm=${shm}`, "--port=0", "--http-port=0", "--metrics-port=0", "--max-memory=8mb"], {
    stdio: "ignore",
  });
  writeFileSync(
    join(app, "check.mjs"),
    `import { Client } from "@cachee/client";
const c = new Client({ address: process.argv[2], shmDir: process.argv[3], timeoutMs: 10000 });
const deadline = Date.now() + 60000;
for (;;) {
  try { await c.set("package", "works"); break; } catch (e) { if (Date.now() > deadline) throw e; await new Promise((r) => setTimeout(r, 50)); }
}
while (c.shmStatus()?.generation == null) {
  if (Date.now() > deadline) throw new Error("the segment is not read: " + (c.shmStatus()?.reason ?? "no addon"));
  await new Promise((r) => setTimeout(r, 10));
}
console.log(new TextDecoder().decode(c.getSync("package")));
await c.close();
`,
  );
  const out = execFileSync(process.execPath, ["check.mjs", sock, shm], { cwd: app, stdio: ["ignore", "pipe", "inherit"] }).toString();
  if (out !== "works\n") throw new Error(`the installed package printed ${JSON.stringify(out)}`);
  const versions = JSON.parse(execFileSync("npm", ["ls", "--json", "--all"], { cwd: app }).toString());
  const deps = versions.dependencies["@cachee/client"].dependencies ?? {};
  console.error(
    `check-package: ${tarball} installs and reads the segment; with ${Object.entries(deps)
      .map(([k, v]) => `${k}@${v.version}`)
      .join(", ")}`,
  );
} finally {
  sidecar?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
