"""The blocking client."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Callable, Iterable, TypeVar

import grpc

from cachee import _common as c
from cachee._errors import DeadlineExceededError, InternalError, from_rpc_error
from cachee.v1 import cache_service_pb2 as pb
from cachee.v1 import cache_service_pb2_grpc as pb_grpc

T = TypeVar("T")


class Client:
    """A connection to a cachee sidecar. Thread-safe; one per process is enough.

    ``address`` is ``unix:///path.sock``, a socket path, or ``host:port``; by default
    ``$CACHE_HOST:$CACHE_PORT`` when either is set, else ``$CACHEE_SOCKET``, else
    /var/run/cachee/cachee.sock. ``timeout`` (seconds) bounds each call that is not given
    its own ``timeout=``; retries of UNAVAILABLE follow ``retry`` and stay inside it.
    Connecting is lazy: an unreachable server surfaces at the first call."""

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = c.DEFAULT_TIMEOUT,
        retry: c.RetryPolicy = c.RetryPolicy(),
    ) -> None:
        self.target = c.target(address)
        self._timeout = timeout
        self._retry = retry
        self._channel = grpc.insecure_channel(self.target, options=c.CHANNEL_OPTIONS)
        self._stub = pb_grpc.CacheServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, method: Callable[..., T], request: object, timeout: float | None, safe: bool = True
    ) -> T:
        """Calls ``method``, retrying UNAVAILABLE as :func:`cachee._common.may_retry`
        allows; ``safe`` says the call may be repeated after it was applied."""
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        attempt = 1
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # gRPC may still complete a call whose deadline has passed; don't start one.
                raise DeadlineExceededError("DEADLINE_EXCEEDED", "deadline passed before the call")
            try:
                return method(request, timeout=remaining)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
            if not c.may_retry(safe, err.code, err.reason):
                raise err
            wait = self._retry.next_wait(attempt, err.code, deadline)
            if wait is None:
                raise err
            time.sleep(wait)
            attempt += 1

    def get(self, key: c.Key, *, timeout: float | None = None) -> bytes | None:
        """The value under ``key``, or None when the key is absent or expired."""
        r = self._call(self._stub.Get, pb.GetRequest(key=c.as_bytes(key)), timeout)
        return r.value if r.found else None

    def set(
        self,
        key: c.Key,
        value: c.Value,
        *,
        ttl: c.TTL = None,
        only_if_absent: bool = False,
        only_if_present: bool = False,
        timeout: float | None = None,
    ) -> bool:
        """Stores ``value``; ``ttl`` in seconds or a timedelta (None: no expiry).
        Returns False only when a condition was not met."""
        req = c.set_request(key, value, ttl, only_if_absent, only_if_present)
        # A conditional Set repeated after it was applied would report its own write.
        safe = not (only_if_absent or only_if_present)
        return self._call(self._stub.Set, req, timeout, safe).stored

    def delete(self, key: c.Key, *, timeout: float | None = None) -> bool:
        """Removes ``key``; returns whether it was there."""
        req = pb.DeleteRequest(key=c.as_bytes(key))
        return self._call(self._stub.Delete, req, timeout, safe=False).deleted

    def get_many(self, keys: Iterable[c.Key], *, timeout: float | None = None) -> list[bytes | None]:
        """Values in the order of ``keys`` (None where absent); at most 1000 keys."""
        req = pb.BatchGetRequest(keys=[c.as_bytes(k) for k in keys])
        r = self._call(self._stub.BatchGet, req, timeout)
        return [x.value if x.found else None for x in r.results]

    def set_many(self, items: Iterable[c.Item | tuple], *, timeout: float | None = None) -> list[bool]:
        """Stores :class:`Item` s (or ``(key, value[, ttl])`` tuples) in order; one flag
        per item, False where its condition was not met. On error, earlier items may
        have been stored."""
        req = c.batch_set_request(items)
        return list(self._call(self._stub.BatchSet, req, timeout, safe=False).stored)

    def stats(self, *, timeout: float | None = None) -> c.Stats:
        return c.stats(self._call(self._stub.Stats, pb.StatsRequest(), timeout))

    def prewarm(
        self,
        *,
        keys: int = 0,
        source_timeout: float | timedelta | None = None,
        on_progress: Callable[[c.PrewarmProgress], None] | None = None,
        timeout: float | None = None,
    ) -> c.PrewarmProgress:
        """Loads the hottest ``keys`` (0: the server's --prewarm-keys) from the server's
        prewarm source within ``source_timeout`` (None: its --prewarm-timeout), calling
        ``on_progress`` with each progress message, and returns the final counts.
        Not retried: a prewarm that failed part-way is not restarted behind the caller's
        back. Without a prewarm source the server raises FailedPreconditionError."""
        req = c.prewarm_request(keys, source_timeout)
        call_timeout = c.DEFAULT_PREWARM_TIMEOUT if timeout is None else timeout
        try:
            for msg in self._stub.Prewarm(req, timeout=call_timeout):
                p = c.progress(msg)
                if p.done:
                    return p
                if on_progress is not None:
                    on_progress(p)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        raise InternalError("INTERNAL", "prewarm ended without final counts")

