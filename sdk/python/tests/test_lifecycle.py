"""The SDK contract's end-to-end cases against the real binary: the token, refusals
retried, prewarm progress and a callback that raises, cancellation, close()."""

from __future__ import annotations

import asyncio
import json
import pathlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import cachee
from attempts import AsyncAttempts, Attempts

LIFECYCLE = json.loads(
    (pathlib.Path(__file__).resolve().parents[2] / "testdata" / "contract" / "lifecycle.json").read_text()
)
TOKEN = "py-test-token-0123456789"


def every_call(c):
    """One call of each method of the contract's after_close cases (coroutines, on an
    AsyncClient)."""
    return {
        "Get": lambda: c.get("k"),
        "BatchGet": lambda: c.get_many(["k"]),
        "Set": lambda: c.set("k", b"v"),
        "BatchSet": lambda: c.set_many([("k", b"v")]),
        "Delete": lambda: c.delete("k"),
        "Stats": lambda: c.stats(),
        "Prewarm": lambda: c.prewarm(),
    }


def test_after_close(server):
    rec = Attempts()
    c = cachee.Client(server.sock, interceptors=[rec])
    assert c.set("after-close", b"v")
    c.close()
    sent = len(rec.log)
    calls = every_call(c)
    for case in LIFECYCLE["after_close"]:
        with pytest.raises(getattr(cachee, case["class"] + "Error")):
            calls[case["method"]]()
    assert len(rec.log) == sent  # no attempt was made
    c.close()  # again: nothing changes
    with pytest.raises(cachee.ClosedError):
        c.get("k")


def test_close_during_calls(server, key):
    """Calls in flight when close() runs complete or raise ClosedError: never a raw
    grpc error, and nothing after close reconnects."""
    c = cachee.Client(server.sock)
    c.set(key, b"v" * 1000)
    outcomes: list[object] = []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                c.get(key)
            except Exception as e:  # noqa: BLE001 - what escapes is the point
                outcomes.append(e)
                if isinstance(e, cachee.ClosedError):
                    return

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    c.close()
    for t in threads:
        t.join(10)
    stop.set()
    assert outcomes and all(type(e) is cachee.ClosedError for e in outcomes), outcomes


@pytest.mark.asyncio
async def test_async_after_close(server):
    c = cachee.AsyncClient(server.sock)
    assert await c.set("after-close", b"v")
    await c.close()
    calls = every_call(c)
    for case in LIFECYCLE["after_close"]:
        with pytest.raises(getattr(cachee, case["class"] + "Error")):
            await calls[case["method"]]()
    with pytest.raises(cachee.ClosedError):
        async for _ in c.prewarm_stream():
            pass
    await c.close()


@pytest.mark.asyncio
async def test_async_close_during_calls(server, key):
    c = cachee.AsyncClient(server.sock)
    await c.set(key, b"v")

    async def loop():
        while True:
            await c.get(key)

    tasks = [asyncio.create_task(loop()) for _ in range(4)]
    await asyncio.sleep(0.1)
    await c.close()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(type(e) is cachee.ClosedError for e in done), done


def test_token(start_server, key, monkeypatch):
    s = start_server(f"--auth-token={TOKEN}")
    with cachee.Client(s.sock) as c:
        with pytest.raises(cachee.UnauthenticatedError) as e:
            c.set(key, b"v")
        assert e.value.code == "UNAUTHENTICATED"
    with cachee.Client(s.sock, auth_token="wrong-token-0123456789") as c:
        with pytest.raises(cachee.UnauthenticatedError):
            c.get(key)
    with cachee.Client(s.sock, auth_token=TOKEN) as c:
        assert c.set(key, b"v")
    monkeypatch.setenv("CACHEE_AUTH_TOKEN", TOKEN)
    with cachee.Client(s.sock) as c:
        assert c.get(key) == b"v"


@pytest.mark.asyncio
async def test_async_token(start_server, key):
    s = start_server(f"--auth-token={TOKEN}")
    async with cachee.AsyncClient(s.sock) as c:
        with pytest.raises(cachee.UnauthenticatedError):
            await c.get(key)
    async with cachee.AsyncClient(s.sock, auth_token=TOKEN) as c:
        assert await c.set(key, b"v")
        assert await c.get(key) == b"v"


BIG = 700 << 10


def overloaded_server(start_server, key):
    """A sidecar whose client memory holds little more than one call of the largest
    message, holding a large value: concurrent Gets of it over gRPC each reserve the
    value's bytes for their answer, and those that find no room are refused with
    OVERLOADED before anything is sent."""
    s = start_server("--max-client-memory=2334720")  # the least the 8mb sidecar takes
    with cachee.Client(s.sock, shm_dir="") as c:
        c.set(key, b"o" * BIG)
    return s


def test_overloaded_is_retried(start_server, key):
    s = overloaded_server(start_server, key)
    rec = Attempts()
    # More attempts than the default, so that a call refused again and again (four
    # threads contend for one answer's memory) still ends in a success to look at.
    retry = cachee.RetryPolicy(max_attempts=50, initial_backoff=0.01, max_backoff=0.1)
    with cachee.Client(s.sock, timeout=60, retry=retry, interceptors=[rec], shm_dir="") as c, ThreadPoolExecutor(4) as pool:
        for _ in range(20):
            assert all(v == b"o" * BIG for v in pool.map(lambda i: c.get(key), range(32)))
            if any(code == "UNAVAILABLE" for _, _, code in rec.log):
                break
        else:
            pytest.fail("the sidecar refused no call: OVERLOADED was not exercised")
    # A refused attempt was followed by a successful one with the same request
    # object: retried, and the request was not built again for the retry.
    by_request: dict[int, list[str]] = {}
    for method, req, code in rec.log:
        assert method == "Get"
        by_request.setdefault(req, []).append(code)
    retried = [codes for codes in by_request.values() if len(codes) > 1]
    assert retried
    for codes in retried:
        assert codes[-1] == "OK" and set(codes[:-1]) == {"UNAVAILABLE"}, codes


def test_overloaded_error_when_retries_run_out(start_server, key):
    s = overloaded_server(start_server, key)
    errors: list[BaseException] = []

    def get(i):
        try:
            c.get(key)
        except cachee.CacheeError as e:
            errors.append(e)

    with cachee.Client(s.sock, timeout=30, retry=cachee.RetryPolicy(max_attempts=1), shm_dir="") as c:
        with ThreadPoolExecutor(8) as pool:
            for _ in range(20):
                list(pool.map(get, range(64)))
                if errors:
                    break
    assert errors, "the sidecar refused no call"
    for e in errors:
        assert type(e) is cachee.OverloadedError, e
        assert isinstance(e, cachee.UnavailableError)
        assert e.reason == "OVERLOADED"


PREWARM_KEYS = 20000


@pytest.fixture
def warm_source(start_server, redis_url):
    """A redis-server holding PREWARM_KEYS keys (written through a cachee with it as
    L2), and a fresh sidecar with it as L2 and prewarm source whose L1 is empty."""
    # Generous L2 timeouts: this machine is shared, and a slow write is not the point.
    writer = start_server(f"--l2={redis_url}", "--max-memory=64mb", "--l2-timeout=10s")
    with cachee.Client(writer.sock, timeout=30) as c:
        for start in range(0, PREWARM_KEYS, 1000):
            c.set_many([(f"warm:{i}", f"v{i}".encode()) for i in range(start, start + 1000)])
    # A sidecar with an L2 prewarms as it starts: of one key, which is over once a
    # prewarm of one key is not refused.
    s = start_server(
        f"--l2={redis_url}", "--max-memory=64mb", "--l2-timeout=10s", "--prewarm-timeout=60s", "--prewarm-keys=1"
    )
    with cachee.Client(s.sock) as c:
        assert settled_entries(c) <= 2
    return s


def settled_entries(c: cachee.Client) -> int:
    """The sidecar's entry count once no prewarm runs: a prewarm of one key is refused
    with PrewarmRunningError while one does."""
    deadline = time.monotonic() + 30
    while True:
        try:
            c.prewarm(keys=1)
            return c.stats().entries
        except cachee.PrewarmRunningError:
            assert time.monotonic() < deadline, "the prewarm did not stop"
            time.sleep(0.01)


def test_prewarm_progress(warm_source):
    seen: list[cachee.PrewarmProgress] = []
    with cachee.Client(warm_source.sock) as c:
        final = c.prewarm(keys=PREWARM_KEYS, on_progress=seen.append)
        assert final.done and final.requested == PREWARM_KEYS
        assert final.loaded + final.skipped + final.failed == PREWARM_KEYS
        assert len(seen) >= 2 and seen[-1] == final
        assert not any(p.done for p in seen[:-1])
        loaded = [p.loaded for p in seen]
        assert loaded == sorted(loaded)
        assert c.get("warm:123") == b"v123"


class Stop(Exception):
    pass


def test_prewarm_callback_raises(warm_source):
    """The stream is cancelled at once, so the sidecar stops loading, and the
    callback's own exception is what the call raises."""
    raised = Stop("enough")
    calls = []

    def cb(p):
        calls.append(p)
        raise raised

    with cachee.Client(warm_source.sock) as c:
        with pytest.raises(Stop) as e:
            c.prewarm(keys=PREWARM_KEYS, on_progress=cb)
        assert e.value is raised
        assert len(calls) == 1
        # Left open, the stream would have let the sidecar load every key.
        assert settled_entries(c) < PREWARM_KEYS // 2


@pytest.mark.asyncio
async def test_async_prewarm_stream(warm_source):
    async with cachee.AsyncClient(warm_source.sock) as c:
        seen = [p async for p in c.prewarm_stream(keys=PREWARM_KEYS)]
        assert seen[-1].done and seen[-1].requested == PREWARM_KEYS
        assert not any(p.done for p in seen[:-1])
        assert await c.get("warm:7") == b"v7"


@pytest.mark.asyncio
async def test_async_prewarm_callback_raises(warm_source):
    raised = Stop("enough")

    async def cb(p):
        raise raised

    async with cachee.AsyncClient(warm_source.sock) as c:
        with pytest.raises(Stop) as e:
            await c.prewarm(keys=PREWARM_KEYS, on_progress=cb)
        assert e.value is raised
    with cachee.Client(warm_source.sock) as sc:
        assert settled_entries(sc) < PREWARM_KEYS // 2


@pytest.mark.asyncio
async def test_async_prewarm_stream_left_early(warm_source):
    async with cachee.AsyncClient(warm_source.sock) as c:
        async with c.prewarm_stream(keys=PREWARM_KEYS) as stream:
            async for p in stream:
                assert not p.done
                break
    with cachee.Client(warm_source.sock) as sc:
        assert settled_entries(sc) < PREWARM_KEYS // 2


@pytest.mark.asyncio
async def test_cancellation(start_server, key):
    """Cancelling a task cancels its call: asyncio.CancelledError, and the client
    goes on working. The sidecar is stopped (SIGSTOP) so that the call hangs."""
    s = start_server()
    rec = AsyncAttempts()
    async with cachee.AsyncClient(s.sock, timeout=60, interceptors=[rec]) as c:
        assert await c.set(key, b"v")
        s.pause()
        try:
            task = asyncio.create_task(c.get(key))
            await asyncio.sleep(0.2)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            s.resume()
        assert await c.get(key) == b"v"
    # The cancelled attempt ended CANCELLED: the RPC itself was cancelled.
    assert ("Get", "CANCELLED") in {(m, code) for m, _, code in rec.log}
