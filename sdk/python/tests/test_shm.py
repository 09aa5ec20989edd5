"""Shared-memory reads against the real binary: hits equal what gRPC answers, count in
the sidecar's stats, survive SIGKILL, restart and SIGSTOP of the sidecar without a torn
or wrong value, and work in forked processes."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
import zlib

import pytest

import cachee

WAIT = 30.0  # the most any "eventually" waits on this shared machine


def eventually(what: str, cond, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def reading(c) -> bool:
    st = c.shm_status() if hasattr(c, "shm_status") else c.status()
    return st is not None and st["generation"] is not None


@pytest.fixture
def sidecar(start_server):
    return start_server()


@pytest.fixture
def client(sidecar):
    with cachee.Client(sidecar.sock, shm_dir=sidecar.shm) as c:
        eventually("the client to read the segment", lambda: reading(c))
        yield c


def test_hits_equal_grpc(sidecar, client, key):
    values = {f"{key}:{i}": bytes([i % 256]) * (i * 37 % 3000) for i in range(200)}
    values[f"{key}:empty"] = b""
    values[f"{key}:utf8 ✓"] = "naïve ✓".encode()
    client.set_many(values.items())
    hits = client.shm_status()["hits"]
    with cachee.Client(sidecar.sock, shm_dir="") as grpc_only:
        assert grpc_only.shm_status() is None
        for k, v in values.items():
            assert client.get(k) == v == grpc_only.get(k)
        assert client.get(f"{key}:absent") is None is grpc_only.get(f"{key}:absent")
        keys = [*values, f"{key}:absent"]
        assert client.get_many(keys) == grpc_only.get_many(keys)
    # Every present key was a hit in shared memory, twice (get, get_many).
    assert client.shm_status()["hits"] == hits + 2 * len(values)
    with cachee.SharedMemoryCache(sidecar.shm) as cache:
        assert cache.active
        for k, v in values.items():
            assert cache.get(k) == v
            assert cache.get(k.encode()) == v
        assert cache.get(f"{key}:absent") is None


def test_hits_reach_the_sidecars_stats(client, key):
    client.set(key, b"v")
    before = client.stats().hits
    for _ in range(1000):
        assert client.get(key) == b"v"
    # Reported by the background thread with RecordAccess every 50 ms.
    eventually("the hits to be reported", lambda: client.stats().hits >= before + 1000)


def test_shared_memory_cache_reports_through_the_socket(sidecar, key, monkeypatch):
    with cachee.Client(sidecar.sock, shm_dir="") as c:
        c.set(key, b"v")
        before = c.stats().hits
        monkeypatch.setenv("CACHEE_SOCKET", sidecar.sock)
        with cachee.SharedMemoryCache(sidecar.shm) as cache:
            for _ in range(100):
                assert cache.get(key) == b"v"
        # close() reported the last hits.
        assert c.stats().hits >= before + 100


def test_shared_memory_cache_without_a_sidecar(tmp_path):
    with cachee.SharedMemoryCache(str(tmp_path)) as cache:
        assert cache.get("user:42") is None
        assert not cache.active
        assert cache.status()["reason"]
    assert cachee.SharedMemoryCache("").get("k") is None  # "" turns it off


def test_a_miss_reads_through_grpc(client, key):
    # Written by a client that bypasses nothing: the key is in the segment after.
    client.set(key, b"v")
    assert client.get(key + ":absent") is None
    hits = client.shm_status()["hits"]
    before = client.stats()
    assert client.get(key + ":absent") is None
    # The miss went to the sidecar: it counts a miss, and no shm hit happened.
    assert client.stats().misses == before.misses + 1
    assert client.shm_status()["hits"] == hits


@pytest.mark.asyncio
async def test_async_hit_awaits_nothing(sidecar, key):
    async with cachee.AsyncClient(sidecar.sock, shm_dir=sidecar.shm) as c:
        await c.set(key, b"async")
        eventually("the client to read the segment", lambda: reading(c))
        coro = c.get(key)
        # A hit completes on the coroutine's first step: it never suspended.
        with pytest.raises(StopIteration) as done:
            coro.send(None)
        assert done.value.value == b"async"
        assert await c.get(key + ":absent") is None
        assert await c.get_many([key, key + ":absent"]) == [b"async", None]


def test_a_segment_of_another_sidecar_is_not_read(start_server, key):
    """The segment is read only when the sidecar at the address reports its
    generation: a segment beside another sidecar's socket is not used."""
    a = start_server()
    b = start_server()
    with cachee.Client(a.sock, shm_dir=b.shm) as c:
        eventually("the client to compare generations", lambda: "generation" in (c.shm_status()["reason"] or ""))
        assert c.shm_status()["generation"] is None
        c.set(key, b"a's")
        assert c.get(key) == b"a's"


# Values that name their key and version and end with a checksum of everything before
# them, with a filler whose length varies with the version, so that a torn read (half
# of one version and half of another, or another key's bytes) cannot pass check().
def self_checking(key: str, version: int) -> bytes:
    v = f"{key}|{version}|".encode() + bytes(ord("a") + (version + i) % 26 for i in range(version % 97 + 20))
    return v + b"|%08x" % zlib.crc32(v)


def check(key: str, v: bytes) -> None:
    body, sep, tail = v[:-9], v[-9:-8], v[-8:]
    assert sep == b"|" and b"%08x" % zlib.crc32(body) == tail, (key, v)
    k, ver, _ = body.split(b"|", 2)
    assert k.decode() == key and v == self_checking(key, int(ver)), (key, v)


class ReadLoop:
    """Three threads reading random keys and a writer rewriting them, recording any
    value that fails its check and any error but UnavailableError (a sidecar down)."""

    def __init__(self, c: cachee.Client, keys: list[str]) -> None:
        self.c, self.keys = c, keys
        self.stop = threading.Event()
        self.bad: list[object] = []
        self.reads = self.found = self.unavailable = 0
        self.threads = [threading.Thread(target=self.read, args=(i,)) for i in range(3)]
        self.threads.append(threading.Thread(target=self.write))
        for t in self.threads:
            t.start()

    def read(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            k = rng.choice(self.keys)
            try:
                v = self.c.get(k)
            except cachee.UnavailableError:
                self.unavailable += 1
                continue
            except Exception as e:  # noqa: BLE001 - recorded, and the test fails on it
                self.bad.append(e)
                continue
            self.reads += 1
            if v is not None:
                self.found += 1
                try:
                    check(k, v)
                except AssertionError as e:
                    self.bad.append(e)

    def write(self) -> None:
        rng = random.Random(99)
        ver = 0
        while not self.stop.is_set():
            ver += 1
            k = rng.choice(self.keys)
            try:
                self.c.set(k, self_checking(k, ver))
            except cachee.UnavailableError:
                time.sleep(0.001)
            except Exception as e:  # noqa: BLE001
                self.bad.append(e)

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


@pytest.mark.parametrize("restart", [(), ("--max-memory=16mb",)], ids=["warm", "new-file"])
def test_sidecar_killed_mid_read(sidecar, client, restart, caplog):
    """SIGKILL under a read loop that mixes shared-memory and gRPC reads with writes,
    then a restart on the same segment (warm: recovered with a new generation) or on
    a new file (another size: the old one retired): no torn or foreign value, only
    UnavailableError while the sidecar is down, and shared memory again after."""
    caplog.set_level(logging.INFO, logger="cachee")
    keys = [f"restart:{i}" for i in range(200)]
    client.set_many((k, self_checking(k, 0)) for k in keys)
    gen0 = client.stats().generation
    loop = ReadLoop(client, keys)
    try:
        base = client.shm_status()["hits"]
        eventually("shm hits before the kill", lambda: client.shm_status()["hits"] > base + 5000)
        killed = time.monotonic()
        sidecar.kill()
        eventually("the segment to be dropped", lambda: not reading(client))
        # Logged, not asserted: how long the dead sidecar's segment was still read
        # (the 20 ms check interval, plus scheduling).
        logging.getLogger("test").info("segment dropped %.0f ms after SIGKILL", (time.monotonic() - killed) * 1000)
        eventually("reads failing with UnavailableError", lambda: loop.unavailable > 0)
        sidecar.start(*restart)
        eventually("the new segment to be read", lambda: reading(client) and client.shm_status()["maps"] >= 2)
        hits = client.shm_status()["hits"]
        eventually("shm hits after the restart", lambda: client.shm_status()["hits"] > hits + 5000)
    finally:
        loop.end()
    assert not loop.bad, loop.bad[:5]
    st = client.stats()
    assert st.generation != gen0
    if not restart:
        assert st.entries > 0, "a warm restart lost every entry"
    with cachee.Client(sidecar.sock, shm_dir="") as grpc_only:
        for k in keys:
            a, b = client.get(k), grpc_only.get(k)
            assert a == b
            if a is not None:
                check(k, a)


def test_sidecar_stalled(sidecar, client, key):
    """SIGSTOP stops the writer's clock: the client stops reading the segment within
    the lag bound (500 ms, checked every 20 ms), and calls that need the sidecar fail
    with its own deadline; after SIGCONT it maps the segment again."""
    client.set(key, b"v")
    maps = client.shm_status()["maps"]
    sidecar.pause()
    try:
        eventually("the stalled segment to be dropped", lambda: not reading(client))
        with pytest.raises(cachee.SidecarTimeoutError) as e:
            client.get(key, timeout=None)
        assert isinstance(e.value, cachee.UnavailableError)
    finally:
        sidecar.resume()
    eventually("shared memory again", lambda: reading(client) and client.shm_status()["maps"] > maps)
    assert client.get(key) == b"v"


def test_four_forked_processes(sidecar, client):
    """A SharedMemoryCache made before fork (as a preloading server does) keeps working
    in four children reading at once: each maps the segment again and reports its hits
    through its own thread and channel."""
    keys = [f"fork:{i}" for i in range(100)]
    client.set_many((k, self_checking(k, 1)) for k in keys)
    before = client.stats().hits
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CACHE_", "CACHEE_"))}
    env["CACHEE_SOCKET"] = sidecar.sock
    script = os.path.join(os.path.dirname(__file__), "forked_readers.py")
    out = subprocess.run(
        [sys.executable, script, sidecar.shm, "20000", str(len(keys))], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    children = [r for r in results if "hits" in r or "error" in r]
    assert len(children) == 4 and all("error" not in r for r in children), results
    assert len({r["pid"] for r in children}) == 4
    for r in children:
        assert r["hits"] == 20000 == r["reader_hits"], r
    assert [r["exitcode"] for r in results if "exitcode" in r] == [0] * 4
    assert {"parent_reads": True} in results
    # The children's hits reached the sidecar through their own reporters.
    eventually(f"the children's hits in the sidecar's stats {results}", lambda: client.stats().hits >= before + 4 * 20000)


NO_NATIVE = """
import logging, sys
sys.modules["cachee._native"] = None  # what an import of a missing or broken extension raises
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
import cachee
for _ in range(2):
    with cachee.Client(sys.argv[1]) as c:
        assert c.shm_status() is None
        assert c.set("no-native", b"v")
        assert c.get("no-native") == b"v"
assert cachee.SharedMemoryCache(sys.argv[2]).get("no-native") is None
print("ok")
"""


def test_without_the_native_extension(sidecar):
    """The SDK works over gRPC, and says why shared memory is off, once."""
    out = subprocess.run(
        [sys.executable, "-c", NO_NATIVE, sidecar.sock, sidecar.shm], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ok\n"
    warnings = [line for line in out.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, out.stderr
    assert "cachee._native" in warnings[0] and "gRPC" in warnings[0]


def test_token_for_the_segment(start_server, key):
    """The generation is confirmed with the token too: without it the segment of a
    sidecar that requires one is not read (and neither is anything over gRPC)."""
    token = "py-shm-token-0123456789"
    s = start_server(f"--auth-token={token}")
    with cachee.Client(s.sock, shm_dir=s.shm, auth_token=token) as c:
        c.set(key, b"v")
        eventually("the client to read the segment", lambda: reading(c))
        assert c.get(key) == b"v"
    with cachee.Client(s.sock, shm_dir=s.shm) as c:
        eventually("the confirmation to be refused", lambda: "UNAUTHENTICATED" in (c.shm_status()["reason"] or ""))
        assert not reading(c)
