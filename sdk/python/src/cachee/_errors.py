"""Typed errors: the SDK contract's classes (docs/sdk-contract.md, section 6), chosen
from the ErrorInfo reason the sidecar sends, or from the status code when there is none.

Every class derives from :class:`CacheeError`; a class that belongs to a broader one
derives from it too (``ValueTooLargeError`` is an ``InvalidArgumentError``). An error
raised for a failed call keeps the grpc error as its ``__cause__``."""

from __future__ import annotations

from typing import Mapping

import grpc
from google.rpc import error_details_pb2, status_pb2

from cachee.v1 import error_reason_pb2

# Every cachee error carries an ErrorInfo in this domain.
DOMAIN = "cachee"

# An ErrorReason value's name is this prefix and the reason as sent in ErrorInfo.
_REASON_PREFIX = "ERROR_REASON_"


def reason_name(value: int) -> str:
    """The ErrorInfo form of an ErrorReason value: ``VALUE_TOO_LARGE``."""
    return error_reason_pb2.ErrorReason.Name(value)[len(_REASON_PREFIX) :]


def reason_value(reason: str | None) -> int:
    """The ErrorReason value of an ErrorInfo reason; UNSPECIFIED for none, or for one
    this SDK does not know (a newer sidecar's)."""
    if not reason:
        return error_reason_pb2.ERROR_REASON_UNSPECIFIED
    try:
        return error_reason_pb2.ErrorReason.Value(_REASON_PREFIX + reason)
    except ValueError:
        return error_reason_pb2.ERROR_REASON_UNSPECIFIED


class CacheeError(Exception):
    """A failed call. ``code`` is the gRPC status code's name (``"UNAVAILABLE"``),
    None for a failure the client found itself (a closed client); ``reason`` the
    ErrorInfo reason (``"VALUE_TOO_LARGE"``), None when the error came from gRPC
    itself; ``metadata`` the ErrorInfo metadata (``field``, ``size``, ``limit``).

    Errors can be pickled (to send them from a worker process), which keeps these
    attributes but, as for every exception, not ``__cause__``."""

    def __init__(
        self,
        message: str = "",
        code: str | None = None,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        # All four go to args, so that pickle rebuilds the error with them.
        metadata = dict(metadata or {})
        super().__init__(message, code, reason, metadata)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata: dict[str, str] = metadata

    def __str__(self) -> str:
        head = " ".join(x for x in (self.code, self.reason) if x)
        if head and self.message:
            return f"{head}: {self.message}"
        return head or self.message or type(self).__name__


class InvalidArgumentError(CacheeError):
    """The request was malformed; the subclasses say how."""


class KeyEmptyError(InvalidArgumentError):
    """The key is empty."""


class KeyTooLargeError(InvalidArgumentError):
    """The key is longer than the sidecar's --max-key-size."""


class ValueTooLargeError(InvalidArgumentError):
    """The value is longer than the sidecar's --max-value-size."""


class InvalidTTLError(InvalidArgumentError):
    """The TTL is negative or out of range."""


class BatchTooLargeError(InvalidArgumentError):
    """A batch holds more items than the sidecar accepts in one call (1000)."""


class MessageTooLargeError(InvalidArgumentError):
    """The request as a whole is over the sidecar's message limit (--grpc-max-msg-size):
    a batch too large in bytes, or a value far over --max-value-size. Split it."""


class ResponseTooLargeError(CacheeError):
    """The answer would be over the sidecar's message limit: ask for fewer keys."""


class OutOfMemoryError(CacheeError):
    """The cache is full and the sidecar evicts nothing (--eviction=noeviction)."""


class UnavailableError(CacheeError):
    """The sidecar cannot be reached (not started yet, restarting, gone, draining),
    or did not answer within the client's default deadline."""


class OverloadedError(UnavailableError):
    """The sidecar refused the call before applying it, for lack of client memory;
    the client retries these itself."""


class L2UnavailableError(UnavailableError):
    """The sidecar's L2 (a central Redis) could not be reached in time."""


class UnauthenticatedError(CacheeError):
    """The sidecar requires a token (--auth-token) and the call carried none, or a
    wrong one: pass ``auth_token=`` or set CACHEE_AUTH_TOKEN."""


class ContendedError(CacheeError):
    """A read kept racing the sidecar's writes and gave up; retried by the client."""


class CorruptError(CacheeError):
    """The shared-memory segment contradicts its format."""


class WrongTypeError(CacheeError):
    """The key holds another type of value than the call reads: a get of a hash
    written over RESP."""


class PrewarmNotConfiguredError(CacheeError):
    """Prewarm on a sidecar without a prewarm source (--prewarm-source or --l2)."""


class PrewarmRunningError(CacheeError):
    """Another prewarm is running."""


class PrewarmSourceUnavailableError(CacheeError):
    """The prewarm source could not be reached."""


class DeadlineExceededError(CacheeError):
    """The call's deadline passed."""


class SidecarTimeoutError(DeadlineExceededError, UnavailableError):
    """The client's default deadline passed (the caller gave none): the sidecar did
    not answer in time, so this is both a deadline and an UnavailableError."""


class CanceledError(CacheeError):
    """The call was cancelled (an asyncio task's cancellation raises
    asyncio.CancelledError instead)."""


class ClosedError(CacheeError):
    """A call on a closed client."""


class InternalError(CacheeError):
    """The sidecar failed in a way it did not classify, or any other failure."""


_R = error_reason_pb2

# The class of each reason; a test checks that every ErrorReason value has one.
BY_REASON: dict[int, type[CacheeError]] = {
    _R.ERROR_REASON_KEY_EMPTY: KeyEmptyError,
    _R.ERROR_REASON_KEY_TOO_LARGE: KeyTooLargeError,
    _R.ERROR_REASON_VALUE_TOO_LARGE: ValueTooLargeError,
    _R.ERROR_REASON_MESSAGE_TOO_LARGE: MessageTooLargeError,
    _R.ERROR_REASON_INVALID_TTL: InvalidTTLError,
    _R.ERROR_REASON_BATCH_TOO_LARGE: BatchTooLargeError,
    _R.ERROR_REASON_INVALID_FIELD: InvalidArgumentError,
    _R.ERROR_REASON_UNAUTHENTICATED: UnauthenticatedError,
    _R.ERROR_REASON_OVERLOADED: OverloadedError,
    _R.ERROR_REASON_RESPONSE_TOO_LARGE: ResponseTooLargeError,
    _R.ERROR_REASON_OUT_OF_MEMORY: OutOfMemoryError,
    _R.ERROR_REASON_SHUTTING_DOWN: UnavailableError,
    _R.ERROR_REASON_READ_CONTENDED: ContendedError,
    _R.ERROR_REASON_SEGMENT_CORRUPT: CorruptError,
    _R.ERROR_REASON_WRONG_TYPE: WrongTypeError,
    _R.ERROR_REASON_PREWARM_NOT_CONFIGURED: PrewarmNotConfiguredError,
    _R.ERROR_REASON_PREWARM_RUNNING: PrewarmRunningError,
    _R.ERROR_REASON_PREWARM_SOURCE_UNAVAILABLE: PrewarmSourceUnavailableError,
    _R.ERROR_REASON_L2_UNAVAILABLE: L2UnavailableError,
    _R.ERROR_REASON_DEADLINE_EXCEEDED: DeadlineExceededError,
    _R.ERROR_REASON_CANCELED: CanceledError,
    _R.ERROR_REASON_INTERNAL: InternalError,
}

# The class when an error carries no reason this SDK knows: errors gRPC raises itself
# (a dead socket, a message over its size limit, a deadline) have none.
BY_CODE: dict[grpc.StatusCode, type[CacheeError]] = {
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: MessageTooLargeError,
    grpc.StatusCode.DATA_LOSS: CorruptError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CanceledError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def classify(code: grpc.StatusCode, reason: str | None) -> type[CacheeError]:
    """The class of a failure: its reason's when known, else its code's, else
    InternalError."""
    cls = BY_REASON.get(reason_value(reason))
    if cls is not None:
        return cls
    return BY_CODE.get(code, InternalError)


_STATUS_DETAILS_KEY = "grpc-status-details-bin"


def from_rpc_error(err: grpc.RpcError) -> CacheeError:
    """The typed error of a grpc.RpcError (sync) or grpc.aio.AioRpcError. The caller
    raises it ``from err``."""
    code: grpc.StatusCode = err.code()  # type: ignore[attr-defined]
    message = err.details() or ""  # type: ignore[attr-defined]
    reason, metadata = _error_info(err.trailing_metadata())  # type: ignore[attr-defined]
    return classify(code, reason)(message, code.name, reason, metadata)


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
