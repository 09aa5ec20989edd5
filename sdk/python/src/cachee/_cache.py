"""SharedMemoryCache: reads from the segment alone, with no round trip."""

from __future__ import annotations

import os

from cachee import _common as c
from cachee import _shm


class SharedMemoryCache:
    """Reads keys straight from the sidecar's shared-memory segment::

        from cachee import SharedMemoryCache
        cache = SharedMemoryCache('/dev/shm/cachee')
        user = cache.get('user:42')  # bytes, or None

    ``path`` is the segment's directory (the sidecar's --shm; a path to the file
    ``cachee.seg`` in it works too); by default ``$CACHEE_SHM``, else /dev/shm/cachee.
    :meth:`get` never makes a round trip: a key the segment does not hold, or any
    moment the segment cannot be read (no sidecar, a restart, a stalled writer), is
    None. Use :class:`cachee.Client` for misses that should reach the sidecar (and its
    L2) and for writes.

    It works in a process that never opens a gRPC channel. Hits are reported to the
    sidecar (so they count in its statistics and eviction policy) by a background
    thread, over the socket at ``address`` (resolved as :class:`cachee.Client` does),
    while that socket is there. Safe to share between threads, and across fork():
    a child maps the segment anew and starts its own thread.

    Without the native extension (cachee._native) every get is None, and a warning
    says why, once."""

    def __init__(self, path: str | None = None, *, address: str | None = None, auth_token: str | None = None) -> None:
        directory = c.shm_dir(path)
        if directory and os.path.basename(directory) == c.SEGMENT_FILE:
            directory = os.path.dirname(directory)
        self.directory = directory
        self._shm: _shm.Shm | None = None
        if directory and _shm.available():
            self._shm = _shm.Shm(
                directory,
                c.target(address),
                c.call_metadata(c.auth_token(auth_token)),
                # No sidecar connection is needed to read: the segment's liveness
                # checks alone decide.
                confirm=False,
            )
            self._shm.step()

    def get(self, key: c.Key) -> bytes | None:
        """The value under ``key`` (bytes or str, as UTF-8) in the segment, or None."""
        shm = self._shm
        if shm is None:
            return None
        return shm.reader.get(key)

    @property
    def active(self) -> bool:
        """Whether a segment is being read now."""
        return self._shm is not None and self._shm.status()["generation"] is not None

    def status(self) -> dict:
        """What the reader is doing: generation (None when no segment is read), reason,
        maps, drops, hits, dropped_refs."""
        if self._shm is None:
            return {"generation": None, "reason": "shared memory is off", "maps": 0, "drops": 0, "hits": 0, "dropped_refs": 0}
        return self._shm.status()

    def close(self) -> None:
        """Reports the last hits and stops reading. Final; later gets return None."""
        shm, self._shm = self._shm, None
        if shm is not None:
            shm.close()

    def __enter__(self) -> "SharedMemoryCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
