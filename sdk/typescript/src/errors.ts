import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** The domain of every ErrorInfo cachee attaches. */
export const ERROR_DOMAIN = "cachee";

/**
 * A failed call. `code` is the gRPC status code's name (`"UNAVAILABLE"`), `reason` the
 * server's ErrorInfo reason (`"VALUE_TOO_LARGE"`; docs/grpc.md lists them), undefined
 * when the error came from gRPC itself, and `metadata` the ErrorInfo metadata (`field`,
 * `size`, `limit`).
 */
export class CacheeError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly reason?: string,
    readonly metadata: Readonly<Record<string, string>> = {},
    options?: ErrorOptions,
  ) {
    super(reason ? `${code} ${reason}: ${message}` : `${code}: ${message}`, options);
    this.name = new.target.name;
  }
}

/** A request field is invalid: empty or oversized key or value, bad TTL, too big a batch. */
export class InvalidArgumentError extends CacheeError {}
/** The cache is full under --eviction=noeviction, or a message is over the size limit. */
export class ResourceExhaustedError extends CacheeError {}
/** The server cannot be reached or is shutting down; retried with backoff. */
export class UnavailableError extends CacheeError {}
/** The server is not set up for the call, e.g. prewarm without a prewarm source. */
export class FailedPreconditionError extends CacheeError {}
/** The call raced another (a running prewarm, a contended read); try again. */
export class AbortedError extends CacheeError {}
/** The call's deadline passed. */
export class DeadlineExceededError extends CacheeError {}
/** The call was cancelled. */
export class CancelledError extends CacheeError {}
/** The shared-memory segment contradicts its format. */
export class DataLossError extends CacheeError {}
/** Anything else the server or the transport reported. */
export class InternalError extends CacheeError {}

const byCode: Partial<Record<Code, typeof CacheeError>> = {
  [Code.InvalidArgument]: InvalidArgumentError,
  [Code.ResourceExhausted]: ResourceExhaustedError,
  [Code.Unavailable]: UnavailableError,
  [Code.FailedPrecondition]: FailedPreconditionError,
  [Code.Aborted]: AbortedError,
  [Code.DeadlineExceeded]: DeadlineExceededError,
  [Code.Canceled]: CancelledError,
  [Code.DataLoss]: DataLossError,
};

/** gRPC's upper-snake names, as the other SDKs and docs/grpc.md spell codes. */
function codeName(code: Code): string {
  return code === Code.Canceled ? "CANCELLED" : Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Turns whatever a connect call threw into a typed error. */
export function toCacheeError(err: unknown): CacheeError {
  if (err instanceof CacheeError) {
    return err;
  }
  const ce = ConnectError.from(err);
  let reason: string | undefined;
  let metadata: Record<string, string> = {};
  for (const d of ce.details) {
    if ("type" in d && d.type === "google.rpc.ErrorInfo") {
      const info = decodeErrorInfo(d.value);
      if (info.domain === ERROR_DOMAIN) {
        ({ reason, metadata } = info);
        break;
      }
    }
  }
  const code = ce.code === Code.Internal && socketMissing(err) ? Code.Unavailable : ce.code;
  const Cls = byCode[code] ?? InternalError;
  return new Cls(codeName(code), ce.rawMessage, reason, metadata, { cause: err });
}

/**
 * Whether connecting failed because the Unix socket's file does not exist (yet).
 * connect-node maps ECONNREFUSED to UNAVAILABLE but leaves this Unix-socket case
 * INTERNAL; gRPC's other clients call it UNAVAILABLE, and so it must be for a sidecar
 * that is still starting to be retried.
 */
function socketMissing(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const { code, syscall } = e as NodeJS.ErrnoException;
    if (code === "ENOENT" && syscall === "connect") {
      return true;
    }
  }
  return false;
}

/**
 * Decodes google.rpc.ErrorInfo (reason = 1, domain = 2, map<string, string> metadata =
 * 3). It is read by hand because its generated type is not on npm for protobuf-es v2
 * and this package's only proto module is cachee's own.
 */
export function decodeErrorInfo(bytes: Uint8Array): { reason: string; domain: string; metadata: Record<string, string> } {
  const r = new BinaryReader(bytes);
  const info = { reason: "", domain: "", metadata: {} as Record<string, string> };
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 1 && wire === WireType.LengthDelimited) {
      info.reason = r.string();
    } else if (field === 2 && wire === WireType.LengthDelimited) {
      info.domain = r.string();
    } else if (field === 3 && wire === WireType.LengthDelimited) {
      const entry = new BinaryReader(r.bytes());
      let key = "";
      let value = "";
      while (entry.pos < entry.len) {
        const [f, w] = entry.tag();
        if (f === 1 && w === WireType.LengthDelimited) key = entry.string();
        else if (f === 2 && w === WireType.LengthDelimited) value = entry.string();
        else entry.skip(w);
      }
      info.metadata[key] = value;
    } else {
      r.skip(wire);
    }
  }
  return info;
}
