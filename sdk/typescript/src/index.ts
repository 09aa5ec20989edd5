/**
 * Client for cachee, the Kubernetes cache sidecar: over gRPC on its Unix socket or TCP,
 * and from its shared-memory segment through a native addon where the platform has one.
 *
 *     const c = new Client();
 *     await c.set("user:42", "hello", { ttlMs: 300_000 });
 *     await c.get("user:42"); // Uint8Array of "hello"
 */
export { Client } from "./client.js";
export type { Bytes, CallOptions, ClientOptions, PrewarmOptions, PrewarmProgress, SetItem, SetOptions, Stats } from "./client.js";
export { DEFAULT_PREWARM_TIMEOUT_MS, DEFAULT_RETRY, DEFAULT_TIMEOUT_MS } from "./retry.js";
export type { RetryPolicy } from "./retry.js";
export type { ShmStatus } from "./shm.js";
export { DEFAULT_PORT, DEFAULT_SHM_DIR, DEFAULT_SOCKET, resolveAuthToken, resolveShmDir, resolveTarget } from "./address.js";
export {
  BatchTooLargeError,
  CacheeError,
  CanceledError,
  ClosedError,
  ContendedError,
  CorruptError,
  DeadlineExceededError,
  ERROR_DOMAIN,
  InternalError,
  InvalidArgumentError,
  InvalidTTLError,
  KeyEmptyError,
  KeyTooLargeError,
  L2UnavailableError,
  MessageTooLargeError,
  OutOfMemoryError,
  OverloadedError,
  PrewarmNotConfiguredError,
  PrewarmRunningError,
  PrewarmSourceUnavailableError,
  ResponseTooLargeError,
  SidecarTimeoutError,
  UnauthenticatedError,
  UnavailableError,
  ValueTooLargeError,
  WrongTypeError,
} from "./errors.js";
