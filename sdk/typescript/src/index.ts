/**
 * Client for cachee, the Kubernetes cache sidecar, over gRPC on its Unix socket or TCP.
 *
 *     const c = new Client();
 *     await c.set("user:42", "hello", { ttlMs: 300_000 });
 *     await c.get("user:42"); // Uint8Array of "hello"
 */
export { Client, DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, DEFAULT_PREWARM_TIMEOUT_MS } from "./client.js";
export type { Bytes, CallOptions, ClientOptions, PrewarmOptions, PrewarmProgress, RetryPolicy, SetItem, SetOptions, Stats } from "./client.js";
export { DEFAULT_PORT, DEFAULT_SOCKET, resolveAddress } from "./address.js";
export type { Address } from "./address.js";
export {
  AbortedError,
  CacheeError,
  CancelledError,
  DataLossError,
  DeadlineExceededError,
  ERROR_DOMAIN,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  ResourceExhaustedError,
  UnavailableError,
} from "./errors.js";
