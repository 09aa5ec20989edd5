"""The asyncio client: the same calls as :class:`cachee.Client`, as coroutines."""

from __future__ import annotations

import asyncio
import inspect
from datetime import timedelta
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar

import grpc
import grpc.aio

from cachee import _common as c
from cachee import _shm
from cachee._errors import InternalError
from cachee.v1 import cache_service_pb2 as pb
from cachee.v1 import cache_service_pb2_grpc as pb_grpc

T = TypeVar("T")

# What grpc.aio raises for a call made on a channel that is closed.
_CLOSED_CHANNEL = (ValueError, grpc.aio.UsageError)


def _cancelled_by_close(closed: bool) -> bool:
    """Whether a CancelledError out of a call comes from close() (which cancels the
    calls in flight) rather than from the caller's task being cancelled."""
    if not closed:
        return False
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return cancelling is None or cancelling() == 0


class AsyncClient:
    """An asyncio connection to a cachee sidecar; arguments as :class:`cachee.Client`.
    Create and use it inside one event loop; ``async with`` closes it.

    Cancelling a call's task cancels its RPC and raises asyncio.CancelledError. A hit
    in shared memory returns without awaiting anything."""

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = c.DEFAULT_TIMEOUT,
        retry: c.RetryPolicy = c.RetryPolicy(),
        auth_token: str | None = None,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
        shm_dir: str | None = None,
    ) -> None:
        self.target = c.target(address)
        self._timeout = timeout
        self._retry = retry
        self._metadata = c.call_metadata(c.auth_token(auth_token))
        self._closed = False
        self._channel = grpc.aio.insecure_channel(
            self.target, options=c.CHANNEL_OPTIONS, interceptors=list(interceptors) or None
        )
        self._stub = pb_grpc.CacheServiceStub(self._channel)
        self._shm = _shm.start(shm_dir, self.target, self._metadata, timeout)

    def _known_down(self) -> bool:
        """The last connection attempt failed and none has succeeded since."""
        return self._channel.get_state(try_to_connect=False) is grpc.ChannelConnectivity.TRANSIENT_FAILURE

    async def close(self) -> None:
        """Releases the connection. Final and idempotent: calls in flight complete or
        raise ClosedError, and every later call raises ClosedError without I/O."""
        if self._closed:
            return
        self._closed = True
        if self._shm is not None:
            # Joins the maintenance thread and reports the last hits: off the loop.
            await asyncio.get_running_loop().run_in_executor(None, self._shm.close)
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(
        self, rpc: c.Rpc, method: Callable[..., Awaitable[T]], request: Any, timeout: float | None
    ) -> T:
        """Sends ``request`` (built once) with ``method``, retried as the contract says."""
        if self._closed:
            raise c.closed_error()
        attempts = c.Attempts(rpc, self._retry, timeout, self._timeout)
        while True:
            try:
                return await method(request, timeout=attempts.remaining(), metadata=self._metadata)
            except grpc.RpcError as e:
                err, wait = attempts.failed(e, self._closed, self._known_down())
                if wait is None:
                    raise err from e
            except _CLOSED_CHANNEL as e:
                if self._closed:
                    raise c.closed_error() from e
                raise
            except asyncio.CancelledError as e:
                if _cancelled_by_close(self._closed):
                    raise c.closed_error() from e
                raise
            await asyncio.sleep(wait)

    async def get(self, key: c.Key, *, timeout: float | None = None) -> bytes | None:
        if self._closed:
            raise c.closed_error()
        shm = self._shm
        if shm is not None:
            v = shm.reader.get(key)
            if v is not None:
                return v
        r = await self._call(c.GET, self._stub.Get, pb.GetRequest(key=c.as_bytes(key)), timeout)
        return r.value if r.found else None

    async def set(
        self,
        key: c.Key,
        value: c.Value,
        *,
        ttl: c.TTL = None,
        only_if_absent: bool = False,
        only_if_present: bool = False,
        timeout: float | None = None,
    ) -> bool:
        rpc, req = c.set_call(key, value, ttl, only_if_absent, only_if_present)
        return (await self._call(rpc, self._stub.Set, req, timeout)).stored

    async def delete(self, key: c.Key, *, timeout: float | None = None) -> bool:
        req = pb.DeleteRequest(key=c.as_bytes(key))
        return (await self._call(c.DELETE, self._stub.Delete, req, timeout)).deleted

    async def get_many(self, keys: Iterable[c.Key], *, timeout: float | None = None) -> list[bytes | None]:
        if self._closed:
            raise c.closed_error()
        results, ask, req = c.batch_get_plan(self._shm and self._shm.reader, keys)
        if not ask:
            return results
        return c.batch_get_merge(results, ask, await self._call(c.BATCH_GET, self._stub.BatchGet, req, timeout))

    async def set_many(self, items: Iterable[c.Item | tuple], *, timeout: float | None = None) -> list[bool]:
        rpc, req = c.batch_set_call(items)
        return list((await self._call(rpc, self._stub.BatchSet, req, timeout)).stored)

    def shm_status(self) -> dict | None:
        """As :meth:`cachee.Client.shm_status`."""
        return None if self._shm is None else self._shm.status()

    async def stats(self, *, timeout: float | None = None) -> c.Stats:
        return c.stats(await self._call(c.STATS, self._stub.Stats, pb.StatsRequest(), timeout))

    def prewarm_stream(
        self,
        *,
        keys: int = 0,
        source_timeout: float | timedelta | None = None,
        timeout: float | None = None,
    ) -> "PrewarmStream":
        """Starts a prewarm (arguments as :meth:`prewarm`) and returns its progress as
        an async iterator; the last item has ``done`` set::

            async for p in client.prewarm_stream():
                print(p.loaded, "of", p.requested)

        Leaving the loop early, or :meth:`PrewarmStream.cancel`, cancels the prewarm's
        stream."""
        req = c.prewarm_request(keys, source_timeout)
        if self._closed:
            raise c.closed_error()
        attempts = c.Attempts(c.PREWARM, self._retry, timeout, c.DEFAULT_PREWARM_TIMEOUT)
        try:
            call = self._stub.Prewarm(req, timeout=attempts.remaining(), metadata=self._metadata)
        except _CLOSED_CHANNEL as e:
            if self._closed:
                raise c.closed_error() from e
            raise
        return PrewarmStream(self, call, attempts)

    async def prewarm(
        self,
        *,
        keys: int = 0,
        source_timeout: float | timedelta | None = None,
        on_progress: Callable[[c.PrewarmProgress], object] | None = None,
        timeout: float | None = None,
    ) -> c.PrewarmProgress:
        """As :meth:`cachee.Client.prewarm`. ``on_progress`` may be a plain function or
        a coroutine function; when it raises, the stream is cancelled at once and its
        exception propagates as it is."""
        stream = self.prewarm_stream(keys=keys, source_timeout=source_timeout, timeout=timeout)
        async with stream:
            async for p in stream:
                if on_progress is not None:
                    r = on_progress(p)
                    if inspect.isawaitable(r):
                        await r
        assert stream.last is not None  # the stream raises unless it ended on the final counts
        return stream.last


class PrewarmStream:
    """A prewarm's progress messages, as an async iterator (see
    :meth:`AsyncClient.prewarm_stream`). ``last`` is the latest one."""

    def __init__(self, client: AsyncClient, call: Any, attempts: c.Attempts) -> None:
        self._client = client
        self._call = call
        self._attempts = attempts
        self._ended = False
        self.last: c.PrewarmProgress | None = None

    def __aiter__(self) -> "PrewarmStream":
        return self

    async def __anext__(self) -> c.PrewarmProgress:
        if self._ended:
            raise StopAsyncIteration
        try:
            msg = await self._call.read()
        except grpc.RpcError as e:
            self._ended = True
            raise self._attempts.failed(e, self._client._closed, False)[0] from e
        except asyncio.CancelledError as e:
            self._ended = True
            self._call.cancel()
            if _cancelled_by_close(self._client._closed):
                raise c.closed_error() from e
            raise
        if msg is grpc.aio.EOF:
            self._ended = True
            if self.last is None or not self.last.done:
                raise InternalError("prewarm ended without final counts", "INTERNAL")
            raise StopAsyncIteration
        self.last = c.progress(msg)
        return self.last

    def cancel(self) -> None:
        """Cancels the prewarm's stream (the sidecar stops loading)."""
        if not self._ended:
            self._ended = True
            self._call.cancel()

    async def aclose(self) -> None:
        self.cancel()

    async def __aenter__(self) -> "PrewarmStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cancel()

    def __del__(self) -> None:
        # An abandoned loop does not leave the stream open until its deadline.
        if not self._ended:
            self._call.cancel()
