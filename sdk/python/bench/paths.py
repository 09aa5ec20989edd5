"""The Python row of bench/report's "SDK paths": one hot key read through each path
Python has to a sidecar, per-call latency.

    CACHEE_SOCKET=... CACHEE_SHM=... BENCH_KEY=hot BENCH_N=200000 BENCH_TIME_LIMIT=20 \\
        python sdk/python/bench/paths.py

prints one JSON object per path and line:

    {"sdk": "python", "path": "shm", "p50_ns": ..., "p99_ns": ..., "mean_ns": ..., "n": ..., "timing": "spaced"}

Paths: shm (SharedMemoryCache.get), client-shm (Client.get answered from the
segment), grpc (Client.get with shared memory off) and redis (redis-py's GET over the
same socket, cachee's RESP). Each call is timed on its own with time.perf_counter_ns
("spaced": a figure includes one read of the clock and the loop's own step, together
about 60-70 ns here, which BENCH_EMPTY=1 prints as the path "empty"), after a
warm-up, for BENCH_N calls per path or until a quarter of BENCH_TIME_LIMIT (seconds,
for the whole runner) has passed. The key must hold a value (100 bytes in
make bench) and the segment must be the sidecar's. Every value read is checked
against the one gRPC returns."""

from __future__ import annotations

import json
import os
import time

import cachee

WARMUP = 2000


def measure(fn, key, want: bytes, n: int, limit: float) -> list[int]:
    for _ in range(WARMUP):
        if fn(key) != want:
            raise SystemExit(f"{fn!r}: wrong value for {key!r}")
    clock = time.perf_counter_ns
    out = []
    append = out.append
    stop = time.monotonic() + limit
    for i in range(n):
        t0 = clock()
        fn(key)
        append(clock() - t0)
        if i & 1023 == 0 and time.monotonic() > stop:
            break
    return out


def emit(path: str, samples: list[int], **extra) -> None:
    samples.sort()
    n = len(samples)
    row = {
        "sdk": "python",
        "path": path,
        "p50_ns": samples[n // 2],
        "p99_ns": samples[min(n - 1, n * 99 // 100)],
        "mean_ns": round(sum(samples) / n),
        "n": n,
        "timing": "spaced",
        **extra,
    }
    print(json.dumps(row), flush=True)


def main() -> None:
    sock, shm = os.environ["CACHEE_SOCKET"], os.environ["CACHEE_SHM"]
    key = os.environ.get("BENCH_KEY", "hot")
    n = int(os.environ.get("BENCH_N", "200000"))
    limit = float(os.environ.get("BENCH_TIME_LIMIT", "60")) / 4

    with cachee.Client(sock, shm_dir="") as grpc_only:
        want = grpc_only.get(key)
        if want is None:
            raise SystemExit(f"{key!r} is not in the sidecar")
        if os.environ.get("BENCH_EMPTY"):
            emit("empty", measure(lambda k: want, key, want, n, limit))

        cache = cachee.SharedMemoryCache(shm)
        deadline = time.monotonic() + 10
        while not cache.active:
            if time.monotonic() > deadline:
                raise SystemExit(f"the segment in {shm} is not read: {cache.status()['reason']}")
            time.sleep(0.01)
        emit("shm", measure(cache.get, key, want, n, limit))
        cache.close()

        with cachee.Client(sock, shm_dir=shm) as c:
            deadline = time.monotonic() + 10
            while c.shm_status()["generation"] is None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the client does not read {shm}: {c.shm_status()['reason']}")
                time.sleep(0.01)
            emit("client-shm", measure(c.get, key, want, n, limit))

        emit("grpc", measure(grpc_only.get, key, want, n, limit))

    import redis  # the reference: make install-python puts it in the venv

    r = redis.Redis(unix_socket_path=sock)
    emit("redis", measure(r.get, key, want, n, limit))
    r.close()


if __name__ == "__main__":
    main()
