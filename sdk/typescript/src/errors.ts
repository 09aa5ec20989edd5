import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

import { ErrorReason } from "./gen/cachee/v1/error_reason_pb.js";

/** The domain of every ErrorInfo cachee attaches. */
export const ERROR_DOMAIN = "cachee";

/**
 * A failed call. `code` is the gRPC status code's name (`"UNAVAILABLE"`; `"CLOSED"`
 * for a call on a closed client), `reason` the
 * sidecar's ErrorInfo reason (`"VALUE_TOO_LARGE"`, a name of the ErrorReason enum
 * without its ERROR_REASON_ prefix), undefined when the error came from gRPC itself
 * or from the client, and `metadata` the ErrorInfo metadata (`field`, `size`,
 * `limit`). `cause` is what the transport threw (a ConnectError, with the status's
 * code, message and details), when there was one.
 *
 * Each failure is an instance of one class of docs/sdk-contract.md and of the broader
 * class it belongs to: a too-large value is a ValueTooLargeError and an
 * InvalidArgumentError.
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

/** A request field is invalid; the subclasses say which. */
export class InvalidArgumentError extends CacheeError {}
export class KeyEmptyError extends InvalidArgumentError {}
/** The key is over the sidecar's --max-key-size. */
export class KeyTooLargeError extends InvalidArgumentError {}
/** The value is over the sidecar's --max-value-size (metadata `size`, `limit`). */
export class ValueTooLargeError extends InvalidArgumentError {}
export class InvalidTTLError extends InvalidArgumentError {}
/** More items than the sidecar takes in one batch. */
export class BatchTooLargeError extends InvalidArgumentError {}
/** The request as a whole is over the sidecar's message limit: split the batch. */
export class MessageTooLargeError extends InvalidArgumentError {}
/** The answer would be over the sidecar's message limit: ask for fewer keys. */
export class ResponseTooLargeError extends CacheeError {}
/** The cache is full and the sidecar runs with --eviction=noeviction. */
export class OutOfMemoryError extends CacheeError {}

/**
 * The sidecar cannot be reached (not started yet, restarting, gone, draining), or did
 * not answer within the client's own deadline (SidecarTimeoutError).
 */
export class UnavailableError extends CacheeError {
  static [Symbol.hasInstance](x: unknown): boolean {
    // SidecarTimeoutError is a DeadlineExceededError and, for this class alone, an
    // UnavailableError too: a class has one parent, the contract gives it two.
    return Function.prototype[Symbol.hasInstance].call(this, x) || (this === UnavailableError && x instanceof SidecarTimeoutError);
  }
}
/** The sidecar refused the call before applying it, for lack of memory; retried. */
export class OverloadedError extends UnavailableError {}
/** The sidecar's L2 could not be reached in time for a call that needed it. */
export class L2UnavailableError extends UnavailableError {}
/** The sidecar requires a token (--auth-token) and the call carried none, or a wrong one. */
export class UnauthenticatedError extends CacheeError {}
/** A read kept racing the sidecar's writes; retried, so seen when retries ran out. */
export class ContendedError extends CacheeError {}
/** The shared-memory segment contradicts its format. */
export class CorruptError extends CacheeError {}
/** The key holds another type of value than the call reads: a get of a hash written over RESP. */
export class WrongTypeError extends CacheeError {}
/** Prewarm on a sidecar without --prewarm-source. */
export class PrewarmNotConfiguredError extends CacheeError {}
/** Another prewarm is running. */
export class PrewarmRunningError extends CacheeError {}
/** The prewarm source (an L2) could not be read. */
export class PrewarmSourceUnavailableError extends CacheeError {}
/** The call's deadline passed. */
export class DeadlineExceededError extends CacheeError {}
/**
 * The client's default deadline passed (the caller gave none): the sidecar did not
 * answer in time. Also an UnavailableError.
 */
export class SidecarTimeoutError extends DeadlineExceededError {}
/** The call was cancelled (its AbortSignal fired). */
export class CanceledError extends CacheeError {}
/** A call on a closed client. */
export class ClosedError extends CacheeError {}
/** The sidecar failed in a way it did not classify, or any other code. */
export class InternalError extends CacheeError {}

type ErrorClass = new (code: string, message: string, reason?: string, metadata?: Record<string, string>, options?: ErrorOptions) => CacheeError;

/**
 * The class of every reason the sidecar sends. Typed over the generated enum, so a
 * reason added to the proto without a class here does not compile.
 */
const BY_REASON: Record<Exclude<ErrorReason, ErrorReason.UNSPECIFIED>, ErrorClass> = {
  [ErrorReason.KEY_EMPTY]: KeyEmptyError,
  [ErrorReason.KEY_TOO_LARGE]: KeyTooLargeError,
  [ErrorReason.VALUE_TOO_LARGE]: ValueTooLargeError,
  [ErrorReason.MESSAGE_TOO_LARGE]: MessageTooLargeError,
  [ErrorReason.INVALID_TTL]: InvalidTTLError,
  [ErrorReason.BATCH_TOO_LARGE]: BatchTooLargeError,
  [ErrorReason.INVALID_FIELD]: InvalidArgumentError,
  [ErrorReason.UNAUTHENTICATED]: UnauthenticatedError,
  [ErrorReason.OVERLOADED]: OverloadedError,
  [ErrorReason.RESPONSE_TOO_LARGE]: ResponseTooLargeError,
  [ErrorReason.OUT_OF_MEMORY]: OutOfMemoryError,
  [ErrorReason.SHUTTING_DOWN]: UnavailableError,
  [ErrorReason.READ_CONTENDED]: ContendedError,
  [ErrorReason.SEGMENT_CORRUPT]: CorruptError,
  [ErrorReason.WRONG_TYPE]: WrongTypeError,
  [ErrorReason.PREWARM_NOT_CONFIGURED]: PrewarmNotConfiguredError,
  [ErrorReason.PREWARM_RUNNING]: PrewarmRunningError,
  [ErrorReason.PREWARM_SOURCE_UNAVAILABLE]: PrewarmSourceUnavailableError,
  [ErrorReason.L2_UNAVAILABLE]: L2UnavailableError,
  [ErrorReason.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [ErrorReason.CANCELED]: CanceledError,
  [ErrorReason.INTERNAL]: InternalError,
};

/**
 * The class when the error carries no reason this SDK knows: errors gRPC itself raises
 * (a dead socket, a message over its size limit, a deadline) have none. Any other code
 * is InternalError.
 */
const BY_CODE: Partial<Record<Code, ErrorClass>> = {
  [Code.Unavailable]: UnavailableError,
  [Code.InvalidArgument]: InvalidArgumentError,
  [Code.ResourceExhausted]: MessageTooLargeError,
  [Code.DataLoss]: CorruptError,
  [Code.DeadlineExceeded]: DeadlineExceededError,
  [Code.Canceled]: CanceledError,
  [Code.Unauthenticated]: UnauthenticatedError,
};

/** The ErrorReason of an ErrorInfo reason; UNSPECIFIED for none, or one a newer sidecar sends. */
export function reasonValue(reason: string | undefined): ErrorReason {
  const v = reason ? (ErrorReason as unknown as Record<string, ErrorReason | undefined>)[reason] : undefined;
  return typeof v === "number" ? v : ErrorReason.UNSPECIFIED;
}

/** The ErrorInfo form of a reason: its enum name, which protobuf-es gives without the prefix. */
export function reasonName(r: ErrorReason): string {
  return ErrorReason[r];
}

/** The class of a failure with `code` and `reason`: the reason's when known, else the code's, else InternalError. */
export function errorClass(code: Code, reason: string | undefined): ErrorClass {
  const r = reasonValue(reason);
  return (r !== ErrorReason.UNSPECIFIED ? BY_REASON[r] : undefined) ?? BY_CODE[code] ?? InternalError;
}

/** gRPC's upper-snake names, as the other SDKs and docs/grpc.md spell codes. */
export function codeName(code: Code): string {
  return code === Code.Canceled ? "CANCELLED" : Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** What the caller of toCacheeError knows about the call that failed. */
export interface CallContext {
  /** The deadline was the client's default, not the caller's: running out of it is a SidecarTimeoutError. */
  ownDeadline?: boolean;
  /**
   * Whether the call's own signal aborted (default true). A CANCELLED that no signal
   * asked for is the HTTP/2 session dying under the stream (connect-node closes its
   * streams with CANCEL when the connection drops): a lost connection, UNAVAILABLE.
   */
  aborted?: boolean;
}

/** Turns what a connect call threw into a typed error that keeps it as its cause. */
export function toCacheeError(err: unknown, ctx: CallContext = {}): CacheeError {
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
  const code = connectionLost(ce, err, ctx) ? Code.Unavailable : ce.code;
  let Cls = errorClass(code, reason);
  if (Cls === DeadlineExceededError && ctx.ownDeadline) {
    Cls = SidecarTimeoutError;
  }
  return new Cls(codeName(code), ce.rawMessage, reason || undefined, metadata, { cause: err });
}

/** Errors of the socket under the connection: the sidecar is gone, restarting, or not up yet. */
const LOST = new Set(["ECONNRESET", "EPIPE", "ECONNREFUSED", "ECONNABORTED", "ENOENT"]);

/**
 * Whether the call failed because the connection to the sidecar failed or dropped,
 * which gRPC's other clients report as UNAVAILABLE. connect-node reports it as
 * UNAVAILABLE only for ECONNREFUSED: a Unix socket whose file does not exist (yet) is
 * INTERNAL, a connection reset mid-call ABORTED, and a stream the dying session closed
 * CANCELLED. The sidecar's own codes carry no socket error, and so are left as they are.
 */
function connectionLost(ce: ConnectError, err: unknown, ctx: CallContext): boolean {
  if (ce.code === Code.Unavailable || ce.details.length > 0) {
    return false;
  }
  if (ce.code === Code.Canceled && ctx.aborted === false && ce.rawMessage.startsWith("http/2 stream closed")) {
    return true; // reset by the HTTP/2 layer, not a status the sidecar sent
  }
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const { code, syscall } = e as NodeJS.ErrnoException;
    if (code !== undefined && LOST.has(code) && (code !== "ENOENT" || syscall === "connect")) {
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
