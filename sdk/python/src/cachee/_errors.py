"""Typed errors, mapped from gRPC status codes and cachee's google.rpc.ErrorInfo."""

from __future__ import annotations

from typing import Mapping

import grpc
from google.rpc import error_details_pb2, status_pb2

# Every cachee error carries an ErrorInfo in this domain; docs/grpc.md lists reasons.
DOMAIN = "cachee"

# The reasons the server sends, as named in docs/grpc.md.
KEY_EMPTY = "KEY_EMPTY"
KEY_TOO_LARGE = "KEY_TOO_LARGE"
VALUE_TOO_LARGE = "VALUE_TOO_LARGE"
INVALID_TTL = "INVALID_TTL"
BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
INVALID_FIELD = "INVALID_FIELD"
OUT_OF_MEMORY = "OUT_OF_MEMORY"
OVERLOADED = "OVERLOADED"
SHUTTING_DOWN = "SHUTTING_DOWN"
PREWARM_SOURCE_UNAVAILABLE = "PREWARM_SOURCE_UNAVAILABLE"
PREWARM_NOT_CONFIGURED = "PREWARM_NOT_CONFIGURED"
PREWARM_RUNNING = "PREWARM_RUNNING"
READ_CONTENDED = "READ_CONTENDED"
SEGMENT_CORRUPT = "SEGMENT_CORRUPT"


class CacheeError(Exception):
    """A failed call. ``code`` is the gRPC status code's name (``"UNAVAILABLE"``),
    ``reason`` the ErrorInfo reason (``"VALUE_TOO_LARGE"``) or None when the error
    came from gRPC itself, and ``metadata`` the ErrorInfo metadata (``field``,
    ``size``, ``limit``)."""

    def __init__(
        self,
        code: str,
        message: str,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}" if reason else f"{code}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgumentError(CacheeError):
    """A request field is invalid: empty or oversized key or value, bad TTL, too big a batch."""


class ResourceExhaustedError(CacheeError):
    """The cache is full under --eviction=noeviction, or a message is over the size limit."""


class UnavailableError(CacheeError):
    """The server cannot be reached or is shutting down; retried with backoff when the
    call is safe to repeat or the server refused it unapplied (see RetryPolicy)."""


class FailedPreconditionError(CacheeError):
    """The server is not set up for the call, e.g. prewarm without a prewarm source."""


class AbortedError(CacheeError):
    """The call raced another (a running prewarm, a contended read); try again."""


class DeadlineExceededError(CacheeError):
    """The call's deadline passed."""


class CancelledError(CacheeError):
    """The call was cancelled."""


class DataLossError(CacheeError):
    """The shared-memory segment contradicts its format."""


class InternalError(CacheeError):
    """Anything else the server or the transport reported."""


_BY_CODE: dict[grpc.StatusCode, type[CacheeError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
}

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


def from_rpc_error(err: grpc.RpcError) -> CacheeError:
    """Turns a grpc.RpcError (sync) or grpc.aio.AioRpcError into a typed error."""
    code = err.code()  # type: ignore[attr-defined]
    message = err.details() or ""  # type: ignore[attr-defined]
    reason, metadata = _error_info(err.trailing_metadata())  # type: ignore[attr-defined]
    cls = _BY_CODE.get(code, InternalError)
    return cls(code.name, message, reason, metadata)


def _error_info(trailers) -> tuple[str | None, dict[str, str]]:
    for key, value in trailers or ():
        if key != _STATUS_DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                if info.domain == DOMAIN:
                    return info.reason, dict(info.metadata)
    return None, {}
