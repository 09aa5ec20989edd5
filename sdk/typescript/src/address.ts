import { connect as netConnect } from "node:net";
import type { ClientSessionOptions } from "node:http2";

/** The socket a sidecar serves when no other address is configured. */
export const DEFAULT_SOCKET = "/var/run/cachee/cachee.sock";
/** The TCP port for gRPC and RESP when CACHE_HOST is set without CACHE_PORT. */
export const DEFAULT_PORT = 6380;

/** Where to reach cachee: a Unix socket path or a TCP host and port. */
export type Address = { socket: string } | { host: string; port: number };

/**
 * Resolves the address to dial. An explicit `address` wins: `unix:///path.sock`,
 * `unix:/path.sock`, an absolute socket path, or `host:port`. Otherwise
 * CACHE_HOST/CACHE_PORT (set in the sidecar's pod spec) select TCP, then CACHEE_SOCKET
 * (read by cachee's own CLI) a socket, and last the default socket.
 */
export function resolveAddress(address?: string, env: NodeJS.ProcessEnv = process.env): Address {
  if (address) {
    if (address.startsWith("unix:")) {
      return { socket: address.replace(/^unix:(\/\/)?/, "") };
    }
    if (address.startsWith("/")) {
      return { socket: address };
    }
    const i = address.lastIndexOf(":");
    if (i <= 0) {
      throw new Error(`cachee: invalid address ${JSON.stringify(address)}: want unix:///path or host:port`);
    }
    return { host: address.slice(0, i).replace(/^\[(.*)\]$/, "$1"), port: Number(address.slice(i + 1)) };
  }
  const host = env.CACHE_HOST;
  const port = env.CACHE_PORT;
  if (host || port) {
    return { host: host || "localhost", port: port ? Number(port) : DEFAULT_PORT };
  }
  return { socket: env.CACHEE_SOCKET || DEFAULT_SOCKET };
}

/** The base URL and HTTP/2 options that reach `a` with @connectrpc/connect-node. */
export function transportTarget(a: Address): { baseUrl: string; nodeOptions?: ClientSessionOptions } {
  if ("socket" in a) {
    const path = a.socket;
    // The URL only names the :authority; every HTTP/2 session is opened on the socket.
    return { baseUrl: "http://localhost", nodeOptions: { createConnection: () => netConnect(path) } };
  }
  const host = a.host.includes(":") ? `[${a.host}]` : a.host;
  return { baseUrl: `http://${host}:${a.port}` };
}
