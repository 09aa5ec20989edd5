"""Client for cachee, the Kubernetes cache sidecar: reads from its shared-memory
segment, and gRPC on its Unix socket or TCP.

    import cachee
    with cachee.Client() as c:
        c.set("user:42", b"hello", ttl=300)
        c.get("user:42")  # b"hello", from shared memory when the segment is mounted

    cache = cachee.SharedMemoryCache("/dev/shm/cachee")
    cache.get("user:42")  # from the segment alone: bytes, or None

:class:`Client` blocks; :class:`AsyncClient` is the asyncio twin. Both follow the SDK
contract every cachee SDK follows (docs/sdk-contract.md): where the sidecar is, the
token, deadlines, retries, error classes and close(). Failed calls raise a subclass of
:class:`CacheeError` chosen by the sidecar's reason, with the grpc error as its cause."""

from cachee._aio import AsyncClient, PrewarmStream
from cachee._cache import SharedMemoryCache
from cachee._client import Client
from cachee._common import DEFAULT_SHM_DIR, DEFAULT_SOCKET, Item, PrewarmProgress, RetryPolicy, Stats, target
from cachee._errors import (
    BatchTooLargeError,
    CacheeError,
    CanceledError,
    ClosedError,
    ContendedError,
    CorruptError,
    DeadlineExceededError,
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
)

__all__ = [
    "AsyncClient",
    "BatchTooLargeError",
    "CacheeError",
    "CanceledError",
    "Client",
    "ClosedError",
    "ContendedError",
    "CorruptError",
    "DEFAULT_SHM_DIR",
    "DEFAULT_SOCKET",
    "DeadlineExceededError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidTTLError",
    "Item",
    "KeyEmptyError",
    "KeyTooLargeError",
    "L2UnavailableError",
    "MessageTooLargeError",
    "OutOfMemoryError",
    "OverloadedError",
    "PrewarmNotConfiguredError",
    "PrewarmProgress",
    "PrewarmRunningError",
    "PrewarmSourceUnavailableError",
    "PrewarmStream",
    "ResponseTooLargeError",
    "RetryPolicy",
    "SharedMemoryCache",
    "SidecarTimeoutError",
    "Stats",
    "UnauthenticatedError",
    "UnavailableError",
    "ValueTooLargeError",
    "WrongTypeError",
    "target",
]
