"""Reads from the sidecar's shared-memory segment, through cachee._native (the Rust
reader cachee-shm, bound with PyO3), and the background thread that keeps the mapping
fresh and reports hits.

Everything about the segment itself (the seqlock, bounds checks, the Expiry rule, the
liveness checks, remapping after restarts, the lossy hit buffer) is cachee-shm's; this
module only schedules it: a thread calls Reader.maintain() every check interval,
answers its confirmation requests with the sidecar's Stats, and reports hits with
RecordAccess every flush interval, as sdk/go does."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

import grpc

from cachee import _common as c
from cachee.v1 import cache_service_pb2 as pb
from cachee.v1 import cache_service_pb2_grpc as pb_grpc

log = logging.getLogger("cachee")

try:
    from cachee import _native
except ImportError as e:  # a platform without a wheel, or a build without cargo
    _native = None  # type: ignore[assignment]
    _NATIVE_ERROR: ImportError | None = e
else:
    _NATIVE_ERROR = None

CHECK_INTERVAL = 0.020  # sdk/go's DefaultCheckInterval
MAX_LAG = 0.500  # sdk/go's DefaultMaxLag
FLUSH_INTERVAL = 0.050  # sdk/go's DefaultFlushInterval

_warned = False
_warn_lock = threading.Lock()


def available() -> bool:
    """Whether the native reader is loaded; when it is not, says why once (a logging
    warning), and clients read over gRPC only."""
    global _warned
    if _native is not None:
        return True
    with _warn_lock:
        if not _warned:
            _warned = True
            log.warning(
                "cachee: shared-memory reads are off, every read goes over gRPC: "
                "the native extension cachee._native could not be loaded (%s)",
                _NATIVE_ERROR,
            )
    return False


def start(shm_dir: str | None, target: str, metadata: Any, timeout: float) -> "Shm | None":
    """A client's segment reader, after a first maintenance step (so that a client made
    beside a running sidecar reads the segment from its first get), or None when
    shared memory is off or the native reader is not there."""
    directory = c.shm_dir(shm_dir)
    if not directory or not available():
        return None
    s = Shm(directory, target, metadata, timeout=timeout)
    s.step()
    return s


# Readers a forked child stopped using: never dropped, since the parent's maintenance
# thread, which did not survive the fork, may have held their lock at fork time.
_abandoned: list[Any] = []
_live: "weakref.WeakSet[Shm]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for s in list(_live):
        s._restart_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Shm:
    """One segment reader with its maintenance thread. ``target``/``metadata`` say
    how to reach the sidecar for confirmation (Stats) and hit reports (RecordAccess),
    over a blocking channel of its own, opened when first needed. With ``confirm``
    False (a process that may never talk to the sidecar), a segment is read as soon
    as it passes the liveness checks, and hits are reported only while the socket is
    there."""

    def __init__(
        self,
        directory: str,
        target: str,
        metadata: Any,
        *,
        confirm: bool = True,
        timeout: float = c.DEFAULT_TIMEOUT,
    ) -> None:
        assert _native is not None
        self.directory = directory
        self._target = target
        self._metadata = metadata
        self._confirm = confirm
        self._timeout = timeout
        self._closed = False
        self._start()
        _live.add(self)

    def _start(self) -> None:
        self.reader = _native.Reader(self.directory, confirm=self._confirm, check_interval=CHECK_INTERVAL, max_lag=MAX_LAG)
        self._lock = threading.Lock()  # the channel
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.CacheServiceStub | None = None
        self._stop = threading.Event()
        self._generation: int | None = None
        self._reason: str | None = None
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="cachee-shm", daemon=True)
        self._thread.start()

    def step(self) -> None:
        """One maintenance step now (done by the thread every check interval): so that
        a client made beside a running sidecar reads the segment from its first get."""
        gen = self.reader.maintain()
        if gen is not None:
            self._confirm_generation(gen)
        self._note_status()

    def _run(self) -> None:
        next_flush = time.monotonic() + FLUSH_INTERVAL
        last_flush = 0.0
        while not self._stop.wait(CHECK_INTERVAL):
            try:
                self.step()
                now = time.monotonic()
                # Report every flush interval, or sooner when the buffer fills, but at
                # most five times an interval, so a hot read loop costs the sidecar a
                # bounded number of calls.
                if now >= next_flush or (self.reader.hits_pending() and now - last_flush >= FLUSH_INTERVAL / 5):
                    self.flush(self._timeout)
                    last_flush, next_flush = now, now + FLUSH_INTERVAL
            except Exception:  # noqa: BLE001 - the thread must outlive any one failure
                log.exception("cachee: shared-memory maintenance failed; retrying")

    def _stub_now(self) -> pb_grpc.CacheServiceStub | None:
        """The channel to the sidecar, opened on first use; None while its socket is
        not there (a process that only reads the segment)."""
        with self._lock:
            if self._stub is None:
                if self._target.startswith("unix://") and not os.path.exists(self._target[len("unix://") :]):
                    return None
                self._channel = grpc.insecure_channel(self._target, options=c.CHANNEL_OPTIONS)
                self._stub = pb_grpc.CacheServiceStub(self._channel)
            return self._stub

    def _confirm_generation(self, gen: int) -> None:
        stub = self._stub_now()
        if stub is None:
            self.reader.confirm(gen, None, f"no sidecar at {self._target}")
            return
        try:
            st = stub.Stats(pb.StatsRequest(), timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            self.reader.confirm(gen, None, f"{e.code().name}: {e.details()}")  # type: ignore[attr-defined]
            return
        self.reader.confirm(gen, st.generation)

    def flush(self, timeout: float) -> None:
        """Reports the hits since the last flush: a sample of their refs, and the
        count of the others. Lost when the sidecar cannot be reached, which costs its
        policy a sample and nothing else."""
        refs, unreported = self.reader.drain_hits()
        if not refs and not unreported:
            return
        stub = self._stub_now()
        if stub is None:
            self.reader.hits_lost(len(refs))
            return
        try:
            stub.RecordAccess(
                pb.RecordAccessRequest(refs=refs, unreported_hits=unreported), timeout=timeout, metadata=self._metadata
            )
        except grpc.RpcError:
            self.reader.hits_lost(len(refs))

    def _note_status(self) -> None:
        """Logs each start and stop of shared-memory reads once."""
        st = self.reader.status()
        gen = st["generation"]
        if gen != self._generation:
            if gen is not None:
                log.info("cachee: reading shared memory (segment %s, generation %016x)", self.directory, gen)
            else:
                log.info("cachee: not reading shared memory: %s", st["reason"])
            self._generation = gen
        elif gen is None and st["reason"] != self._reason:
            log.debug("cachee: not reading shared memory: %s", st["reason"])
        self._reason = st["reason"]

    def status(self) -> dict:
        return self.reader.status()

    def close(self) -> None:
        """Stops the thread, reports the last hits (best effort, within the default
        deadline), stops reading and closes the channel. Final; idempotent."""
        if self._closed:
            return
        self._closed = True
        _live.discard(self)
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self.flush(self._timeout)
        self.reader.close()
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel = self._stub = None

    def _restart_after_fork(self) -> None:
        """In a forked child: the thread and the channel did not survive the fork, and
        the reader's state is the parent's. Map the segment anew and start over."""
        if self._closed or self._pid == os.getpid():
            return
        # The parent's channel is not usable here either: kept, not closed.
        _abandoned.extend((self.reader, self._channel))
        self._start()
