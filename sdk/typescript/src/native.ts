// The Node-API addon (native/, a napi-rs binding of the Rust segment reader
// cachee-shm), loaded once, when the platform has it.

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** What the addon's Reader offers (native/src/lib.rs). */
export interface NativeReader {
  get(key: Uint8Array): Uint8Array | null;
  getStr(key: string): Uint8Array | null;
  maintain(): bigint | null;
  confirm(generation: bigint, sidecar: bigint | null, error?: string | null): void;
  wantsCheck(): boolean;
  drainHits(): { refs: BigUint64Array; unreported: number };
  hitsPending(): boolean;
  hitsLost(n: number): void;
  status(): NativeStatus;
  close(): void;
}

/** What a reader is doing: the generation it reads (null: none), why none is, counters. */
export interface NativeStatus {
  generation: bigint | null;
  reason: string | null;
  maps: number;
  drops: number;
  hits: number;
  droppedRefs: number;
}

export interface NativeSegment {
  lookup(key: Uint8Array, nowMs: number): { result: string; value: Buffer | null; ref: bigint };
  readonly generation: bigint;
  readonly clockMs: number;
}

export interface Addon {
  Reader: new (dir: string, config?: { confirm?: boolean; checkIntervalMs?: number; maxLagMs?: number }) => NativeReader;
  Segment: new (path: string) => NativeSegment;
  DEFAULT_SHM_DIR: string;
}

/**
 * The name of the addon's file for this platform, as the package ships it:
 * cachee.<platform>-<arch>[-gnu|-musl].node (Linux's C libraries differ in ABI).
 */
export function addonFile(): string {
  let libc = "";
  if (process.platform === "linux") {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    libc = header?.glibcVersionRuntime ? "-gnu" : "-musl";
  }
  return `cachee.${process.platform}-${process.arch}${libc}.node`;
}

/** The package's native/ directory, from dist/src/ (in the package and the checkout alike). */
export const NATIVE_DIR = fileURLToPath(new URL("../../native/", import.meta.url));

/**
 * The addon to load: native/<addonFile()>, or the file CACHEE_NATIVE_ADDON names (an
 * addon built for a platform the package has none for).
 */
export function addonPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.CACHEE_NATIVE_ADDON || NATIVE_DIR + addonFile();
}

let loaded: { addon?: Addon; error?: unknown } | undefined;
let warned = false;

/** The addon, or undefined when it cannot be loaded: then every read goes over gRPC. */
export function addon(): Addon | undefined {
  if (!loaded) {
    const path = addonPath();
    try {
      loaded = { addon: createRequire(import.meta.url)(path) as Addon };
    } catch (e) {
      loaded = { error: `${path}: ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  return loaded.addon;
}

/** Why the addon is not loaded, or undefined when it is. */
export function addonError(): string | undefined {
  addon();
  return loaded?.error === undefined ? undefined : String(loaded.error);
}

/**
 * Says once per process, as a warning (process.emitWarning, code CACHEE_NO_NATIVE),
 * that shared-memory reads are off because the addon is missing.
 */
export function warnNoAddon(): void {
  if (!warned) {
    warned = true;
    process.emitWarning(
      `cachee: shared-memory reads are off, every read goes over gRPC: the native addon could not be loaded (${addonError()})`,
      { code: "CACHEE_NO_NATIVE" },
    );
  }
}
