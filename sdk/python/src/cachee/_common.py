"""What the sync and asyncio clients share: addresses, retries, conversions."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Union

from google.protobuf import duration_pb2

from cachee.v1 import cache_service_pb2 as pb

DEFAULT_SOCKET = "/var/run/cachee/cachee.sock"
DEFAULT_PORT = 6380
DEFAULT_TIMEOUT = 5.0
# A prewarm runs until the server's own --prewarm-timeout; the call must outlive it.
DEFAULT_PREWARM_TIMEOUT = 60.0

Key = Union[bytes, str]
Value = Union[bytes, str]
TTL = Union[float, int, timedelta, None]

# Channel options. BatchGet of many large values easily exceeds gRPC's 4 MiB default
# receive limit; the sidecar is local and trusted, so the limit follows the server's.
# gRPC core waits about 1 s before reconnecting after a failed connect, longer than
# the default retries wait in all; a local sidecar is cheap to redial, so start at 50 ms.
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

# ErrorInfo reasons of an UNAVAILABLE the server sends before it applies anything.
REFUSED_REASONS = frozenset({"OVERLOADED", "SHUTTING_DOWN"})


def may_retry(safe: bool, code: str, reason: str | None) -> bool:
    """Whether a call that failed with ``code`` and ErrorInfo ``reason`` may be sent
    again. Only UNAVAILABLE is retried. ``safe`` calls (Get, BatchGet, Stats, a Set
    without a condition) give the same result when repeated, so any UNAVAILABLE is
    retried; any other call (a conditional Set, Delete, BatchSet) only when the
    server said it refused the call before applying it (OVERLOADED, SHUTTING_DOWN):
    a plain UNAVAILABLE, e.g. a connection reset, may come after the write was applied."""
    if code != "UNAVAILABLE":
        return False
    return safe or reason in REFUSED_REASONS


def target(address: str | None = None) -> str:
    """The gRPC target to dial.

    An explicit ``address`` wins: ``unix:///path.sock``, a path starting with ``/``, or
    ``host:port``. Otherwise ``CACHE_HOST``/``CACHE_PORT`` (the variables the sidecar's
    pod spec sets) select TCP, then ``CACHEE_SOCKET`` (the variable cachee's own CLI
    reads) a socket, and last the default socket /var/run/cachee/cachee.sock."""
    if address:
        if address.startswith("/"):
            return "unix:" + address
        return address
    host, port = os.environ.get("CACHE_HOST"), os.environ.get("CACHE_PORT")
    if host or port:
        host = host or "localhost"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal
        return f"{host}:{port or DEFAULT_PORT}"
    return "unix:" + (os.environ.get("CACHEE_SOCKET") or DEFAULT_SOCKET)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of calls that failed with UNAVAILABLE (the server is restarting or not
    up yet), with exponential backoff and jitter. Only calls that are safe to repeat
    (Get, BatchGet, Stats, Set without a condition) are retried on any UNAVAILABLE;
    others only when the server refused them unapplied (see :func:`may_retry`). No retry sleeps past the call's
    deadline: when the next wait would end after it, the last error is raised."""

    max_attempts: int = 4
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    multiplier: float = 2.0

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1-based), jittered over the upper half
        of the exponential step, so that many clients restarting with a server spread out."""
        step = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return random.uniform(step / 2, step)

    def next_wait(self, attempt: int, code: str, deadline: float) -> float | None:
        """How long to wait before retrying a call whose ``attempt`` failed with
        ``code``, or None to give up: not UNAVAILABLE, out of attempts, or the wait would
        end at or after ``deadline`` (on the time.monotonic clock)."""
        if code != "UNAVAILABLE" or attempt >= self.max_attempts:
            return None
        wait = self.backoff(attempt)
        return wait if time.monotonic() + wait < deadline else None


@dataclass(frozen=True)
class Item:
    """One write of :meth:`Client.set_many`."""

    key: Key
    value: Value
    ttl: TTL = None
    only_if_absent: bool = False
    only_if_present: bool = False


@dataclass(frozen=True)
class Stats:
    """The server's counters since it started; see proto/cachee/v1/cache_service.proto."""

    hits: int
    misses: int
    sets: int
    deletes: int
    evictions: int
    expirations: int
    entries: int
    memory_used_bytes: int
    memory_limit_bytes: int
    hit_rate: float
    uptime: timedelta
    latency_p50: timedelta
    latency_p95: timedelta
    latency_p99: timedelta
    generation: int
    eviction: str
    segment_path: str


@dataclass(frozen=True)
class PrewarmProgress:
    """How far a prewarm has got; ``done`` is True on the final counts."""

    requested: int
    loaded: int
    skipped: int
    failed: int
    elapsed: timedelta
    done: bool


def as_bytes(b: Key | Value) -> bytes:
    return b.encode() if isinstance(b, str) else bytes(b)


def duration(ttl: TTL) -> duration_pb2.Duration | None:
    if ttl is None:
        return None
    d = duration_pb2.Duration()
    if isinstance(ttl, timedelta):
        d.FromTimedelta(ttl)
    else:
        d.FromNanoseconds(round(ttl * 1e9))
    return d


def condition(only_if_absent: bool, only_if_present: bool) -> int:
    if only_if_absent and only_if_present:
        raise ValueError("only_if_absent and only_if_present exclude each other")
    if only_if_absent:
        return pb.SET_CONDITION_IF_ABSENT
    if only_if_present:
        return pb.SET_CONDITION_IF_PRESENT
    return pb.SET_CONDITION_UNSPECIFIED


def set_request(key: Key, value: Value, ttl: TTL, nx: bool, xx: bool) -> pb.SetRequest:
    return pb.SetRequest(
        key=as_bytes(key), value=as_bytes(value), ttl=duration(ttl), condition=condition(nx, xx)
    )


def batch_set_request(items: Iterable[Item | tuple]) -> pb.BatchSetRequest:
    out = []
    for it in items:
        if not isinstance(it, Item):
            it = Item(*it)
        out.append(
            pb.BatchSetItem(
                key=as_bytes(it.key),
                value=as_bytes(it.value),
                ttl=duration(it.ttl),
                condition=condition(it.only_if_absent, it.only_if_present),
            )
        )
    return pb.BatchSetRequest(items=out)


def prewarm_request(keys: int, source_timeout: float | timedelta | None) -> pb.PrewarmRequest:
    if keys < 0:
        raise ValueError("keys must not be negative")
    return pb.PrewarmRequest(keys=keys, timeout=duration(source_timeout))


def stats(r: pb.StatsResponse) -> Stats:
    return Stats(
        hits=r.hits,
        misses=r.misses,
        sets=r.sets,
        deletes=r.deletes,
        evictions=r.evictions,
        expirations=r.expirations,
        entries=r.entries,
        memory_used_bytes=r.memory_used_bytes,
        memory_limit_bytes=r.memory_limit_bytes,
        hit_rate=r.hit_rate,
        uptime=r.uptime.ToTimedelta(),
        latency_p50=r.latency_p50.ToTimedelta(),
        latency_p95=r.latency_p95.ToTimedelta(),
        latency_p99=r.latency_p99.ToTimedelta(),
        generation=r.generation,
        eviction=r.eviction,
        segment_path=r.segment_path,
    )


def progress(r: pb.PrewarmResponse) -> PrewarmProgress:
    c = r.counts
    return PrewarmProgress(
        requested=c.requested,
        loaded=c.loaded,
        skipped=c.skipped,
        failed=c.failed,
        elapsed=c.elapsed.ToTimedelta(),
        done=r.done,
    )
