"""Client for cachee, the Kubernetes cache sidecar, over gRPC on its Unix socket or TCP.

    import cachee
    with cachee.Client() as c:
        c.set("user:42", b"hello", ttl=300)
        c.get("user:42")  # b"hello"

:class:`Client` blocks; :class:`AsyncClient` is the asyncio twin. Failed calls raise a
subclass of :class:`CacheeError` chosen by status code, with the server's reason."""

from cachee._aio import AsyncClient
from cachee._client import Client
from cachee._common import DEFAULT_SOCKET, Item, PrewarmProgress, RetryPolicy, Stats, target
from cachee._errors import (
    AbortedError,
    CacheeError,
    CancelledError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    ResourceExhaustedError,
    UnavailableError,
)

__all__ = [
    "AbortedError",
    "AsyncClient",
    "CacheeError",
    "CancelledError",
    "Client",
    "DEFAULT_SOCKET",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "Item",
    "PrewarmProgress",
    "ResourceExhaustedError",
    "RetryPolicy",
    "Stats",
    "UnavailableError",
    "target",
]
