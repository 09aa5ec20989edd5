// Builds the Node-API addon (native/, a napi-rs binding of sdk/shm) with cargo, in
// release, and puts it where the package loads it from: native/<addonFile()>. Runs
// after tsc, whose output names the file. CARGO_TARGET_DIR is honoured (make shares
// one with the other builds of sdk/shm).
import { execFileSync } from "node:child_process";
import { copyFileSync, renameSync } from "node:fs";
import { join } from "node:path";

import { addonFile, NATIVE_DIR } from "../dist/src/native.js";

const target = process.env.CARGO_TARGET_DIR || join(NATIVE_DIR, "target");
execFileSync("cargo", ["build", "--release", "--locked", "--quiet", "--manifest-path", join(NATIVE_DIR, "Cargo.toml")], {
  stdio: "inherit",
  env: { ...process.env, CARGO_TARGET_DIR: target },
});
// cargo names a cdylib as the platform names shared libraries.
const lib = { darwin: "libcachee_node.dylib", win32: "cachee_node.dll" }[process.platform] ?? "libcachee_node.so";
const out = join(NATIVE_DIR, addonFile());
// Copied beside, then renamed: a process that has the old file loaded keeps its mapping.
copyFileSync(join(target, "release", lib), `${out}.tmp`);
renameSync(`${out}.tmp`, out);
console.error(`build-native: ${out}`);
