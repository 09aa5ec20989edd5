"""A grpc client interceptor that records every attempt a client sends: a real hook
on the real channel, so tests can see retries and that a retry sends the very request
object the first attempt sent (the value is not copied again)."""

from __future__ import annotations

import asyncio
import threading

import grpc
import grpc.aio


class Attempts(grpc.UnaryUnaryClientInterceptor):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (method, id of the request object, status code name or "OK") per attempt,
        # in order. The requests are kept alive, so that ids are not reused.
        self.log: list[tuple[str, int, str]] = []
        self.requests: list[object] = []

    def intercept_unary_unary(self, continuation, details, request):
        outcome = continuation(details, request)
        code = outcome.code() if outcome.exception() is not None else grpc.StatusCode.OK
        self._note(details.method, request, code)
        return outcome

    def _note(self, method, request, code) -> None:
        name = method.decode() if isinstance(method, bytes) else method
        with self.lock:
            self.log.append((name.rsplit("/", 1)[-1], id(request), code.name))
            self.requests.append(request)


class AsyncAttempts(Attempts, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        call = await continuation(details, request)
        try:
            await call
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()
        except asyncio.CancelledError:
            # The caller's task was cancelled: note whether that cancelled the RPC.
            self._note(details.method, request, grpc.StatusCode.CANCELLED if call.cancelled() else grpc.StatusCode.UNKNOWN)
            raise
        self._note(details.method, request, code)
        return call
