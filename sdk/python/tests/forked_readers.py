"""Four processes forked from one that made a SharedMemoryCache (as a preloading
server's workers are) read the segment at once; run by test_shm.py in a fresh
interpreter, so that the parent is a plain application, not the test runner with its
many channels. Prints one JSON line: per child, its pid, hits, its reader's count of
hits and of refs it could not report."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
import zlib

import cachee

cache: cachee.SharedMemoryCache


def check(key: str, v: bytes) -> None:
    body, tail = v[:-9], v[-8:]
    if b"%08x" % zlib.crc32(body) != tail or not body.startswith(key.encode() + b"|"):
        raise AssertionError(f"{key}: {v!r}")


def child(keys: list[str], n: int, q) -> None:
    try:
        deadline = time.monotonic() + 30
        while not cache.active:
            if time.monotonic() > deadline:
                raise AssertionError(f"the child reads no segment: {cache.status()['reason']}")
            time.sleep(0.01)
        hits = 0
        for i in range(n):
            k = keys[i % len(keys)]
            v = cache.get(k)
            if v is not None:
                check(k, v)
                hits += 1
        shm = cache._shm
        cache.close()  # reports the last hits
        st = shm.status()
        q.put({"pid": multiprocessing.current_process().pid, "hits": hits, "reader_hits": st["hits"], "lost_refs": st["dropped_refs"]})
    except BaseException as e:  # noqa: BLE001 - sent to the parent
        q.put({"error": repr(e)})


def main() -> None:
    global cache
    shm, n, nkeys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    keys = [f"fork:{i}" for i in range(nkeys)]
    cache = cachee.SharedMemoryCache(shm)  # CACHEE_SOCKET names the sidecar
    deadline = time.monotonic() + 30
    while not cache.active:
        assert time.monotonic() < deadline, cache.status()
        time.sleep(0.01)
    # The parent reads too, so its reporter has opened its channel before the fork.
    for k in keys:
        cache.get(k)
    time.sleep(0.2)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=child, args=(keys, n, q)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        results.append({"exitcode": p.exitcode})
    results.append({"parent_reads": cache.get(keys[0]) is not None})
    cache.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
