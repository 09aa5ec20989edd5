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
        with pytest.raises(cachee.PrewarmNotConfiguredError) as e:
            await c.prewarm()
        assert e.value.reason == "PREWARM_NOT_CONFIGURED"
        with pytest.raises(cachee.KeyEmptyError) as e:
            await c.set(b"", b"v")
        assert e.value.reason == "KEY_EMPTY"


@pytest.mark.asyncio
async def test_async_oversized_set(server, key):
    async with cachee.AsyncClient(server.sock) as c:
        with pytest.raises(cachee.ValueTooLargeError) as e:
            await c.set(key, b"x" * ((1 << 20) + 1))
        assert e.value.reason == "VALUE_TOO_LARGE"
        assert e.value.metadata["field"] == "value"


@pytest.mark.asyncio
async def test_async_down_sidecar(tmp_path):
    async with cachee.AsyncClient(str(tmp_path / "absent.sock")) as c:
        with pytest.raises(cachee.UnavailableError) as e:
            await c.get("k")
        assert e.value.reason is None
