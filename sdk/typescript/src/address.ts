import { connect as netConnect } from "node:net";
import type { ClientSessionOptions } from "node:http2";

/** The socket a sidecar serves when no other address is configured. */
export const DEFAULT_SOCKET = "/var/run/cachee/cachee.sock";
/** The TCP port when CACHE_HOST is set without CACHE_PORT. */
export const DEFAULT_PORT = 6380;
/** The segment directory when neither an option nor CACHEE_SHM names one. */
export const DEFAULT_SHM_DIR = "/dev/shm/cachee";
/** The segment's file in its directory. */
export const SEGMENT_FILE = "cachee.seg";

/**
 * The environment a client reads (docs/sdk-contract.md, sections 1 to 3). A variable
 * that is set but empty counts as unset, except CACHEE_SHM, whose empty value turns
 * shared memory off.
 */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * The gRPC target, in the contract's normal form: `explicit` when given
 * (`unix:///path.sock`, `unix:/path.sock`, an absolute path, or `host:port`), else
 * `$CACHEE_SOCKET`, else `$CACHE_HOST:$CACHE_PORT` (either may be left out: localhost,
 * 6380), else the default socket. Sockets come out as `unix:///abs/path`, TCP as
 * `host:port` with an IPv6 literal in brackets.
 */
export function resolveTarget(explicit?: string | null, env: Env = process.env): string {
  if (explicit) {
    return normalTarget(explicit);
  }
  if (env.CACHEE_SOCKET) {
    return normalTarget(env.CACHEE_SOCKET);
  }
  let host = env.CACHE_HOST;
  const port = env.CACHE_PORT;
  if (!host && !port) {
    return `unix://${DEFAULT_SOCKET}`;
  }
  host ||= "localhost";
  if (host.includes(":") && !host.startsWith("[")) {
    host = `[${host}]`;
  }
  return `${host}:${port || DEFAULT_PORT}`;
}

function normalTarget(t: string): string {
  if (t.startsWith("/")) {
    return `unix://${t}`;
  }
  if (t.startsWith("unix:///")) {
    return t;
  }
  if (t.startsWith("unix:/")) {
    return `unix://${t.slice("unix:".length)}`;
  }
  return t;
}

/**
 * The segment's directory: `explicit` when given (`""` turns shared memory off), else
 * `$CACHEE_SHM` when set (set and empty: off), else /dev/shm/cachee. null means off.
 */
export function resolveShmDir(explicit?: string | null, env: Env = process.env): string | null {
  const d = explicit ?? env.CACHEE_SHM ?? DEFAULT_SHM_DIR;
  return d === "" ? null : d;
}

/**
 * The bearer token every call carries: `explicit` when given, else
 * `$CACHEE_AUTH_TOKEN` (the variable the sidecar reads its own --auth-token from, so
 * one Secret can feed both containers). undefined means none.
 */
export function resolveAuthToken(explicit?: string | null, env: Env = process.env): string | undefined {
  return explicit || env.CACHEE_AUTH_TOKEN || undefined;
}

/** The base URL and HTTP/2 options that reach `target` with @connectrpc/connect-node. */
export function transportTarget(target: string): { baseUrl: string; nodeOptions?: ClientSessionOptions } {
  if (target.startsWith("unix://")) {
    const path = target.slice("unix://".length);
    // The URL only names the :authority; every HTTP/2 session is opened on the socket.
    return { baseUrl: "http://localhost", nodeOptions: { createConnection: () => netConnect(path) } };
  }
  const i = target.lastIndexOf(":");
  if (i <= 0 || !/^\d+$/.test(target.slice(i + 1))) {
    throw new RangeError(`cachee: invalid address ${JSON.stringify(target)}: want unix:///path, /path or host:port`);
  }
  return { baseUrl: `http://${target}` };
}
