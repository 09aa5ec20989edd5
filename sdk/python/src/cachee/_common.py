"""What the sync and asyncio clients share: where the sidecar is, the token, retries,
conversions. The rules are the SDK contract's (docs/sdk-contract.md), which every cachee
SDK follows and whose cases (sdk/testdata/contract) this package's tests run."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Mapping, NamedTuple, Union

import grpc
from google.protobuf import duration_pb2

from cachee._errors import (
    CacheeError,
    ClosedError,
    DeadlineExceededError,
    InternalError,
    SidecarTimeoutError,
    from_rpc_error,
    reason_name,
)
from cachee.v1 import cache_service_pb2 as pb
from cachee.v1 import error_reason_pb2 as er

DEFAULT_SOCKET = "/var/run/cachee/cachee.sock"
DEFAULT_SHM_DIR = "/dev/shm/cachee"
SEGMENT_FILE = "cachee.seg"
DEFAULT_PORT = 6380
# A call's deadline when the caller gives none; Prewarm's (the sidecar bounds a
# prewarm by its own --prewarm-timeout, which the call must outlive).
DEFAULT_TIMEOUT = 1.0
DEFAULT_PREWARM_TIMEOUT = 60.0

# Environment variables the clients read. One set but empty counts as unset, except
# CACHEE_SHM, whose empty value turns shared memory off.
ENV_SOCKET = "CACHEE_SOCKET"
ENV_HOST = "CACHE_HOST"
ENV_PORT = "CACHE_PORT"
ENV_SHM = "CACHEE_SHM"
ENV_AUTH_TOKEN = "CACHEE_AUTH_TOKEN"

Key = Union[bytes, str]
Value = Union[bytes, bytearray, memoryview, str]
TTL = Union[float, int, timedelta, None]

# Reconnecting to a sidecar that went away: first after 20 ms, growing 1.6x (gRPC
# core's own multiplier) to at most 1 s. The sidecar is local and cheap to redial.
RECONNECT_INITIAL_MS = 20
RECONNECT_MULTIPLIER = 1.6
RECONNECT_MAX_MS = 1000

# The time a connection attempt gets to complete (the sidecar's HTTP/2 SETTINGS
# included), as sdk/go's MinConnectTimeout: a local sidecar that takes longer is not
# going to answer. gRPC core reads it from grpc.min_reconnect_backoff_ms; set as low
# as the first backoff, attempts to a sidecar on a busy machine time out.
MIN_CONNECT_TIMEOUT_MS = 1000

# BatchGet of many large values easily exceeds gRPC's 4 MiB default receive limit;
# the sidecar is local and trusted, so the limit is the sidecar's.
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", RECONNECT_INITIAL_MS),
    ("grpc.min_reconnect_backoff_ms", MIN_CONNECT_TIMEOUT_MS),
    ("grpc.max_reconnect_backoff_ms", RECONNECT_MAX_MS),
]


def target(address: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The gRPC target: ``address`` when given (``unix:///path.sock``, ``unix:/path``, a
    path ``/path.sock``, or ``host:port``), else ``$CACHEE_SOCKET``, else
    ``$CACHE_HOST:$CACHE_PORT`` (either may be left out: localhost, 6380), else the
    default socket. Sockets come out as ``unix:///abs/path``, TCP as ``host:port``."""
    env = os.environ if env is None else env
    if address:
        return _normal_target(address)
    if env.get(ENV_SOCKET):
        return _normal_target(env[ENV_SOCKET])
    host, port = env.get(ENV_HOST), env.get(ENV_PORT)
    if not host and not port:
        return "unix://" + DEFAULT_SOCKET
    host = host or "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{host}:{port or DEFAULT_PORT}"


def _normal_target(t: str) -> str:
    if t.startswith("/"):
        return "unix://" + t
    if t.startswith("unix:///"):
        return t
    if t.startswith("unix:/"):
        return "unix://" + t[len("unix:") :]
    return t


def shm_dir(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The shared-memory segment's directory: ``explicit`` when given (``""`` turns
    shared memory off), else ``$CACHEE_SHM`` when set (set and empty: off), else
    /dev/shm/cachee. None means off."""
    env = os.environ if env is None else env
    d = explicit if explicit is not None else env.get(ENV_SHM, DEFAULT_SHM_DIR)
    return d or None


def auth_token(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The bearer token to send: ``explicit`` when given, else ``$CACHEE_AUTH_TOKEN``
    (the variable the sidecar reads its own --auth-token from). None means none."""
    env = os.environ if env is None else env
    return explicit or env.get(ENV_AUTH_TOKEN) or None


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    """The metadata every call carries: the token as ``authorization: Bearer <token>``."""
    return (("authorization", f"Bearer {token}"),) if token else None


class Rpc(NamedTuple):
    """A call as the retry rule sees it: the proto method; ``safe``: repeating it after
    a failure that may have followed its effect (a connection lost mid-call) leaves the
    same state; ``retried``: it is ever sent again."""

    name: str
    safe: bool
    retried: bool = True


GET = Rpc("Get", True)
BATCH_GET = Rpc("BatchGet", True)
STATS = Rpc("Stats", True)
DELETE = Rpc("Delete", True)
SET = Rpc("Set", True)
# A conditional write repeated after it was applied could see its own first attempt.
SET_IF = Rpc("Set", False)
BATCH_SET = Rpc("BatchSet", True)
BATCH_SET_IF = Rpc("BatchSet", False)
# Prewarm is long and started by a person or a deploy step; RecordAccess a sample of
# hits whose loss costs nothing.
PREWARM = Rpc("Prewarm", False, retried=False)
RECORD_ACCESS = Rpc("RecordAccess", False, retried=False)

_OVERLOADED = reason_name(er.ERROR_REASON_OVERLOADED)
_SHUTTING_DOWN = reason_name(er.ERROR_REASON_SHUTTING_DOWN)
_READ_CONTENDED = reason_name(er.ERROR_REASON_READ_CONTENDED)


def may_retry(rpc: Rpc, code: grpc.StatusCode | str, reason: str | None, known_down: bool) -> bool:
    """Whether a call that failed with ``code`` and ErrorInfo ``reason`` may be sent
    again (docs/sdk-contract.md, section 5). Refusals the sidecar made before applying
    anything (OVERLOADED, SHUTTING_DOWN) and contended reads always; a lost connection
    (UNAVAILABLE with no reason) only for calls that are safe to repeat, and not while
    the sidecar is known to be down (the last connection attempt failed): the call then
    fails at once while gRPC reconnects in the background. Nothing else."""
    if not rpc.retried:
        return False
    code = code.name if isinstance(code, grpc.StatusCode) else code
    if code == "UNAVAILABLE" and reason in (_OVERLOADED, _SHUTTING_DOWN):
        return True
    if code == "ABORTED" and reason == _READ_CONTENDED:
        return True
    if code == "UNAVAILABLE" and not reason:
        return rpc.safe and not known_down
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and after what waits, a call that :func:`may_retry` allows is sent
    again: at most ``max_attempts`` in all (the first included), waiting before retry
    n a time uniform in [d/2, d], d = min(initial_backoff x multiplier^(n-1),
    max_backoff), in seconds. No retry waits past the call's deadline: when the next
    wait would end at or after it, the last error is raised."""

    max_attempts: int = 3
    initial_backoff: float = 0.010
    max_backoff: float = 0.200
    multiplier: float = 2.0

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1-based), jittered over the upper
        half of the step, so that many clients retrying together spread out."""
        step = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return random.uniform(step / 2, step)

    def next_wait(self, attempt: int, deadline: float) -> float | None:
        """The wait before the attempt after ``attempt`` (1-based), or None when out
        of attempts or the wait would end at or after ``deadline`` (time.monotonic)."""
        if attempt >= self.max_attempts:
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
    """Keys and values as bytes; ``str`` as UTF-8. ``bytes`` are passed on as they are."""
    if isinstance(b, str):
        return b.encode()
    return b if type(b) is bytes else bytes(b)


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


def set_call(key: Key, value: Value, ttl: TTL, nx: bool, xx: bool) -> tuple[Rpc, pb.SetRequest]:
    """The request of a Set, built once for all its attempts, and how it is retried."""
    req = pb.SetRequest(key=as_bytes(key), value=as_bytes(value), ttl=duration(ttl), condition=condition(nx, xx))
    return (SET_IF if nx or xx else SET), req


def batch_set_call(items: Iterable[Item | tuple]) -> tuple[Rpc, pb.BatchSetRequest]:
    out = []
    conditional = False
    for it in items:
        if not isinstance(it, Item):
            it = Item(*it)
        conditional = conditional or it.only_if_absent or it.only_if_present
        out.append(
            pb.BatchSetItem(
                key=as_bytes(it.key),
                value=as_bytes(it.value),
                ttl=duration(it.ttl),
                condition=condition(it.only_if_absent, it.only_if_present),
            )
        )
    return (BATCH_SET_IF if conditional else BATCH_SET), pb.BatchSetRequest(items=out)


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


class Attempts:
    """The attempts of one call: its deadline, and what to do when one fails. Both
    clients run the same loop::

        while True:
            try:
                return send(timeout=attempts.remaining())
            except grpc.RpcError as e:
                err, wait = attempts.failed(e, closed, known_down)
                if wait is None:
                    raise err from e
            sleep(wait)

    The request is built before the loop, once: a retry sends the same message."""

    __slots__ = ("rpc", "policy", "own", "deadline", "attempt")

    def __init__(self, rpc: Rpc, policy: RetryPolicy, timeout: float | None, default: float) -> None:
        self.rpc = rpc
        self.policy = policy
        # The client's own deadline, not the caller's: running out of it means the
        # sidecar did not answer in time (SidecarTimeoutError, also Unavailable).
        self.own = timeout is None
        self.deadline = time.monotonic() + (default if timeout is None else timeout)
        self.attempt = 1

    def remaining(self) -> float:
        """Seconds left for the next attempt; raises the deadline error when none are
        (gRPC may still complete a call whose deadline has passed: don't start one)."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._deadline_error()("deadline passed before the call", "DEADLINE_EXCEEDED")
        return left

    def _deadline_error(self) -> type[CacheeError]:
        return SidecarTimeoutError if self.own else DeadlineExceededError

    def failed(self, e: grpc.RpcError, closed: bool, known_down: bool) -> tuple[CacheeError, float | None]:
        """The error of a failed attempt, and the wait before the next one (None: raise
        the error now)."""
        if closed:
            return ClosedError("client closed during the call"), None
        err = from_rpc_error(e)
        if err.code == "DEADLINE_EXCEEDED":
            cls = self._deadline_error()
            if type(err) is not cls:
                err = cls(err.message, err.code, err.reason, err.metadata)
        if not may_retry(self.rpc, err.code or "", err.reason, known_down):
            return err, None
        wait = self.policy.next_wait(self.attempt, self.deadline)
        self.attempt += 1
        return err, wait


def closed_error() -> ClosedError:
    return ClosedError("client closed")


# The sidecar's limit on keys per BatchGet: a larger batch goes to it whole, to get
# its BATCH_TOO_LARGE.
MAX_BATCH = 1000


def batch_get_plan(reader: object | None, keys: Iterable[Key]) -> tuple[list[bytes | None], list[int], pb.BatchGetRequest]:
    """The results a BatchGet already has from shared memory (``reader``, when one is
    mapped), the indexes of the keys still to ask the sidecar for, and that request."""
    keys = list(keys)
    results: list[bytes | None] = [None] * len(keys)
    if reader is None or len(keys) > MAX_BATCH:
        ask = list(range(len(keys)))
    else:
        ask = []
        for i, k in enumerate(keys):
            v = reader.get(k)  # type: ignore[attr-defined]
            if v is None:
                ask.append(i)
            else:
                results[i] = v
    return results, ask, pb.BatchGetRequest(keys=[as_bytes(keys[i]) for i in ask])


def batch_get_merge(results: list[bytes | None], ask: list[int], r: pb.BatchGetResponse) -> list[bytes | None]:
    if len(r.results) != len(ask):
        raise InternalError(f"BatchGet returned {len(r.results)} results for {len(ask)} keys", "INTERNAL")
    for i, x in zip(ask, r.results):
        results[i] = x.value if x.found else None
    return results
