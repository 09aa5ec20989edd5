// Deadlines, attempts and which failures are sent again: docs/sdk-contract.md,
// sections 4 and 5, whose cases (sdk/testdata/contract/retry.json) the tests run.

import { ErrorReason } from "./gen/cachee/v1/error_reason_pb.js";
import { reasonName } from "./errors.js";

/** A call's deadline when the caller gives none. */
export const DEFAULT_TIMEOUT_MS = 1000;
/** Prewarm's: the sidecar bounds a prewarm by its own --prewarm-timeout, which the call must outlive. */
export const DEFAULT_PREWARM_TIMEOUT_MS = 60_000;

/**
 * Reconnecting to a sidecar that went away: first after 20 ms, growing 1.6x to at most
 * 1 s. The sidecar is local and cheap to redial.
 */
export const RECONNECT = { initialMs: 20, multiplier: 1.6, maxMs: 1000 } as const;

/**
 * How often, and after what waits, a call that mayRetry allows is sent again: at most
 * `maxAttempts` in all (the first included), waiting before retry n a time uniform in
 * [d/2, d], d = min(initialBackoffMs x multiplier^(n-1), maxBackoffMs). No retry waits
 * past the call's deadline: when the next wait would end at or after it, the last
 * error is thrown.
 */
export interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({ maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 200, multiplier: 2 });

/** The wait before retry number `retry` (1-based), jittered over the upper half of the step so that clients retrying together spread out. */
export function backoffMs(p: RetryPolicy, retry: number): number {
  const step = Math.min(p.maxBackoffMs, p.initialBackoffMs * p.multiplier ** (retry - 1));
  return step / 2 + (Math.random() * step) / 2;
}

/**
 * A call as the retry rule sees it: the proto method; `safe`: repeating it after a
 * failure that may have followed its effect (a connection lost mid-call) leaves the
 * same state; `retried`: it is ever sent again.
 */
export interface Rpc {
  readonly name: string;
  readonly safe: boolean;
  readonly retried: boolean;
}

const rpc = (name: string, safe: boolean, retried = true): Rpc => Object.freeze({ name, safe, retried });

export const RPC = Object.freeze({
  Get: rpc("Get", true),
  BatchGet: rpc("BatchGet", true),
  Stats: rpc("Stats", true),
  Delete: rpc("Delete", true),
  Set: rpc("Set", true),
  // A conditional write repeated after it was applied could see its own first attempt.
  SetIf: rpc("Set", false),
  BatchSet: rpc("BatchSet", true),
  BatchSetIf: rpc("BatchSet", false),
  // Prewarm is long and started by a person or a deploy step; RecordAccess a sample
  // of hits whose loss costs nothing.
  Prewarm: rpc("Prewarm", false, false),
  RecordAccess: rpc("RecordAccess", false, false),
});

const OVERLOADED = reasonName(ErrorReason.OVERLOADED);
const SHUTTING_DOWN = reasonName(ErrorReason.SHUTTING_DOWN);
const READ_CONTENDED = reasonName(ErrorReason.READ_CONTENDED);

/**
 * Whether a call that failed with `code` (gRPC's upper-snake name) and ErrorInfo
 * `reason` may be sent again. Refusals the sidecar made before applying anything
 * (OVERLOADED, SHUTTING_DOWN) and contended reads always; a lost connection
 * (UNAVAILABLE with no reason) only for calls that are safe to repeat, and not while
 * the sidecar is known to be down (the last connection attempt failed): the call then
 * fails at once while the client reconnects in the background. Nothing else.
 */
export function mayRetry(r: Rpc, code: string, reason: string | undefined, knownDown: boolean): boolean {
  if (!r.retried) {
    return false;
  }
  if (code === "UNAVAILABLE" && (reason === OVERLOADED || reason === SHUTTING_DOWN)) {
    return true;
  }
  if (code === "ABORTED" && reason === READ_CONTENDED) {
    return true;
  }
  if (code === "UNAVAILABLE" && !reason) {
    return r.safe && !knownDown;
  }
  return false;
}
