"""The blocking client."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Callable, Iterable, Sequence, TypeVar

import grpc
from grpc._cython import cygrpc

from cachee import _common as c
from cachee import _shm
from cachee._errors import InternalError
from cachee.v1 import cache_service_pb2 as pb
from cachee.v1 import cache_service_pb2_grpc as pb_grpc

T = TypeVar("T")


class Client:
    """A connection to a cachee sidecar. Thread-safe; one per process is enough.

    ``address`` is ``unix:///path.sock``, a socket path, or ``host:port``; by default
    ``$CACHEE_SOCKET``, else ``$CACHE_HOST:$CACHE_PORT`` when either is set, else
    /var/run/cachee/cachee.sock. ``auth_token`` (default ``$CACHEE_AUTH_TOKEN``) is sent
    as ``authorization: Bearer <token>`` on every call, for a sidecar started with
    --auth-token. ``timeout`` (seconds, default 1) bounds each call not given its own
    ``timeout=``; retries follow ``retry`` and stay inside the deadline.
    ``interceptors`` are grpc client interceptors, run on every attempt.

    ``get`` and ``get_many`` read the sidecar's shared-memory segment first when it is
    mounted (``shm_dir``, default ``$CACHEE_SHM``, else /dev/shm/cachee; ``""`` turns
    it off): a hit makes no round trip, and anything else asks the sidecar, so that a
    miss still reads through to its L2. The segment is read only while it is the very
    one the sidecar at the address writes (same generation), live and fresh.

    Connecting is lazy: until the sidecar answers, calls fail with UnavailableError.
    :meth:`close` is final: every later call raises ClosedError."""

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = c.DEFAULT_TIMEOUT,
        retry: c.RetryPolicy = c.RetryPolicy(),
        auth_token: str | None = None,
        interceptors: Sequence[grpc.UnaryUnaryClientInterceptor | grpc.UnaryStreamClientInterceptor] = (),
        shm_dir: str | None = None,
    ) -> None:
        self.target = c.target(address)
        self._timeout = timeout
        self._retry = retry
        self._metadata = c.call_metadata(c.auth_token(auth_token))
        self._closed = False
        self._lock = threading.Lock()
        self._raw_channel = grpc.insecure_channel(self.target, options=c.CHANNEL_OPTIONS)
        channel = grpc.intercept_channel(self._raw_channel, *interceptors) if interceptors else self._raw_channel
        self._stub = pb_grpc.CacheServiceStub(channel)
        self._shm = _shm.start(shm_dir, self.target, self._metadata, timeout)

    def _known_down(self) -> bool:
        """The last connection attempt failed and none has succeeded since: the
        channel is in TRANSIENT_FAILURE. The blocking API reports states only through
        subscribe(), whose polling thread races close(); the channel's own check is
        what that thread calls."""
        try:
            state = self._raw_channel._channel.check_connectivity_state(False)  # type: ignore[attr-defined]
        except (AttributeError, ValueError):
            return False
        return state == cygrpc.ConnectivityState.transient_failure

    def close(self) -> None:
        """Releases the connection. Final and idempotent: calls in flight complete or
        raise ClosedError, and every later call raises ClosedError without I/O."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._shm is not None:
            self._shm.close()
        self._raw_channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, rpc: c.Rpc, method: Callable[..., T], request: object, timeout: float | None) -> T:
        """Sends ``request`` (built once) with ``method``, retried as the contract says."""
        if self._closed:
            raise c.closed_error()
        attempts = c.Attempts(rpc, self._retry, timeout, self._timeout)
        while True:
            try:
                return method(request, timeout=attempts.remaining(), metadata=self._metadata)
            except grpc.RpcError as e:
                err, wait = attempts.failed(e, self._closed, self._known_down())
                if wait is None:
                    raise err from e
            except ValueError as e:
                # grpc refuses a call on a channel closed under it.
                if self._closed:
                    raise c.closed_error() from e
                raise
            time.sleep(wait)

    def get(self, key: c.Key, *, timeout: float | None = None) -> bytes | None:
        """The value under ``key``, or None when the key is absent or expired."""
        if self._closed:
            raise c.closed_error()
        shm = self._shm
        if shm is not None:
            v = shm.reader.get(key)
            if v is not None:
                return v
        r = self._call(c.GET, self._stub.Get, pb.GetRequest(key=c.as_bytes(key)), timeout)
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
        rpc, req = c.set_call(key, value, ttl, only_if_absent, only_if_present)
        return self._call(rpc, self._stub.Set, req, timeout).stored

    def delete(self, key: c.Key, *, timeout: float | None = None) -> bool:
        """Removes ``key``; returns whether it was there. Retried after a lost
        connection, so a delete whose first attempt reached the sidecar returns False."""
        req = pb.DeleteRequest(key=c.as_bytes(key))
        return self._call(c.DELETE, self._stub.Delete, req, timeout).deleted

    def get_many(self, keys: Iterable[c.Key], *, timeout: float | None = None) -> list[bytes | None]:
        """Values in the order of ``keys`` (None where absent); at most 1000 keys. Keys
        found in shared memory are answered from it, the rest in one call."""
        if self._closed:
            raise c.closed_error()
        results, ask, req = c.batch_get_plan(self._shm and self._shm.reader, keys)
        if not ask:
            return results
        return c.batch_get_merge(results, ask, self._call(c.BATCH_GET, self._stub.BatchGet, req, timeout))

    def set_many(self, items: Iterable[c.Item | tuple], *, timeout: float | None = None) -> list[bool]:
        """Stores :class:`Item` s (or ``(key, value[, ttl])`` tuples) in order; one flag
        per item, False where its condition was not met. On error, earlier items may
        have been stored."""
        rpc, req = c.batch_set_call(items)
        return list(self._call(rpc, self._stub.BatchSet, req, timeout).stored)

    def shm_status(self) -> dict | None:
        """What the shared-memory reader is doing (generation, reason, maps, drops,
        hits, dropped_refs), or None when it is off."""
        return None if self._shm is None else self._shm.status()

    def stats(self, *, timeout: float | None = None) -> c.Stats:
        return c.stats(self._call(c.STATS, self._stub.Stats, pb.StatsRequest(), timeout))

    def prewarm(
        self,
        *,
        keys: int = 0,
        source_timeout: float | timedelta | None = None,
        on_progress: Callable[[c.PrewarmProgress], object] | None = None,
        timeout: float | None = None,
    ) -> c.PrewarmProgress:
        """Loads the hottest ``keys`` (0: the server's --prewarm-keys) from the server's
        prewarm source within ``source_timeout`` (None: its --prewarm-timeout), calling
        ``on_progress`` with each progress message, the final one included, and returns
        the final counts. ``timeout`` bounds the call (default 60 s).

        When ``on_progress`` raises, the stream is cancelled at once and its exception
        propagates as it is. Not retried. Without a prewarm source the server raises
        PrewarmNotConfiguredError."""
        req = c.prewarm_request(keys, source_timeout)
        if self._closed:
            raise c.closed_error()
        attempts = c.Attempts(c.PREWARM, self._retry, timeout, c.DEFAULT_PREWARM_TIMEOUT)
        try:
            stream = self._stub.Prewarm(req, timeout=attempts.remaining(), metadata=self._metadata)
        except ValueError as e:
            if self._closed:  # closed under the call, as in _call
                raise c.closed_error() from e
            raise
        last: c.PrewarmProgress | None = None
        while True:
            try:
                msg = next(stream)
            except StopIteration:
                break
            except grpc.RpcError as e:
                raise attempts.failed(e, self._closed, False)[0] from e
            last = c.progress(msg)
            if on_progress is not None:
                try:
                    on_progress(last)
                except BaseException:
                    stream.cancel()
                    raise
        if last is None or not last.done:
            raise InternalError("prewarm ended without final counts", "INTERNAL")
        return last
