"""The asyncio client: the same calls as :class:`cachee.Client`, as coroutines."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any, Awaitable, Callable, Iterable, TypeVar

import grpc.aio

from cachee import _common as c
from cachee._errors import DeadlineExceededError, InternalError, from_rpc_error
from cachee.v1 import cache_service_pb2 as pb
from cachee.v1 import cache_service_pb2_grpc as pb_grpc

T = TypeVar("T")


class AsyncClient:
    """An asyncio connection to a cachee sidecar; arguments as :class:`cachee.Client`.
    Create and use it inside one event loop; ``async with`` closes it."""

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
        self._channel = grpc.aio.insecure_channel(self.target, options=c.CHANNEL_OPTIONS)
        self._stub = pb_grpc.CacheServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(
        self,
        method: Callable[..., Awaitable[T]],
        request: Any,
        timeout: float | None,
        safe: bool = True,
    ) -> T:
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        attempt = 1
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # gRPC may still complete a call whose deadline has passed; don't start one.
                raise DeadlineExceededError("DEADLINE_EXCEEDED", "deadline passed before the call")
            try:
                return await method(request, timeout=remaining)
            except grpc.aio.AioRpcError as e:
                err = from_rpc_error(e)
            if not c.may_retry(safe, err.code, err.reason):
                raise err
            wait = self._retry.next_wait(attempt, err.code, deadline)
            if wait is None:
                raise err
            await asyncio.sleep(wait)
            attempt += 1

    async def get(self, key: c.Key, *, timeout: float | None = None) -> bytes | None:
        r = await self._call(self._stub.Get, pb.GetRequest(key=c.as_bytes(key)), timeout)
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
        req = c.set_request(key, value, ttl, only_if_absent, only_if_present)
        safe = not (only_if_absent or only_if_present)
        return (await self._call(self._stub.Set, req, timeout, safe)).stored

    async def delete(self, key: c.Key, *, timeout: float | None = None) -> bool:
        req = pb.DeleteRequest(key=c.as_bytes(key))
        r = await self._call(self._stub.Delete, req, timeout, safe=False)
        return r.deleted

    async def get_many(self, keys: Iterable[c.Key], *, timeout: float | None = None) -> list[bytes | None]:
        req = pb.BatchGetRequest(keys=[c.as_bytes(k) for k in keys])
        r = await self._call(self._stub.BatchGet, req, timeout)
        return [x.value if x.found else None for x in r.results]

    async def set_many(self, items: Iterable[c.Item | tuple], *, timeout: float | None = None) -> list[bool]:
        r = await self._call(self._stub.BatchSet, c.batch_set_request(items), timeout, safe=False)
        return list(r.stored)

    async def stats(self, *, timeout: float | None = None) -> c.Stats:
        return c.stats(await self._call(self._stub.Stats, pb.StatsRequest(), timeout))

    async def prewarm(
        self,
        *,
        keys: int = 0,
        source_timeout: float | timedelta | None = None,
        on_progress: Callable[[c.PrewarmProgress], None] | None = None,
        timeout: float | None = None,
    ) -> c.PrewarmProgress:
        req = c.prewarm_request(keys, source_timeout)
        call_timeout = c.DEFAULT_PREWARM_TIMEOUT if timeout is None else timeout
        try:
            async for msg in self._stub.Prewarm(req, timeout=call_timeout):
                p = c.progress(msg)
                if p.done:
                    return p
                if on_progress is not None:
                    on_progress(p)
        except grpc.aio.AioRpcError as e:
            raise from_rpc_error(e) from None
        raise InternalError("INTERNAL", "prewarm ended without final counts")
