"""The asyncio client against a real cachee."""

from __future__ import annotations

import asyncio

import pytest

import cachee


@pytest.mark.asyncio
async def test_async_calls(server, key):
    async with cachee.AsyncClient(server.sock, timeout=10) as c:
        assert await c.get(key) is None
        assert await c.set(key, b"v1", ttl=60)
        assert not await c.set(key, b"v2", only_if_absent=True)
        # Concurrent calls share one channel.
        got = await asyncio.gather(*(c.get(key) for _ in range(20)))
        assert got == [b"v1"] * 20
        assert await c.set_many([(key + ":b", b"b")]) == [True]
        assert await c.get_many([key, key + ":b", key + ":c"]) == [b"v1", b"b", None]
        assert (await c.stats()).hits >= 20
        assert await c.delete(key)
        with pytest.raises(cachee.FailedPreconditionError) as e:
            await c.prewarm()
        assert e.value.reason == "PREWARM_NOT_CONFIGURED"
        with pytest.raises(cachee.InvalidArgumentError) as e:
            await c.set(b"", b"v")
        assert e.value.reason == "KEY_EMPTY"


@pytest.mark.asyncio
async def test_async_retries_stop_at_the_deadline(tmp_path):
    retry = cachee.RetryPolicy(max_attempts=1000, initial_backoff=0.5, max_backoff=0.5)
    async with cachee.AsyncClient(str(tmp_path / "absent.sock"), retry=retry) as c:
        with pytest.raises((cachee.UnavailableError, cachee.DeadlineExceededError)):
            await asyncio.wait_for(c.get("k", timeout=1.0), 10)
