"""Runs the real cachee binary for the tests: $CACHEE_BIN, or one built with go build."""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from cachee_server import Server

REPO = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def cachee_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    if os.environ.get("CACHEE_BIN"):
        return os.environ["CACHEE_BIN"]
    out = tmp_path_factory.mktemp("bin") / "cachee"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/cachee"], cwd=REPO, check=True)
    return str(out)


@pytest.fixture(scope="session")
def server(cachee_bin: str):
    s = Server(cachee_bin)
    yield s
    s.stop()


@pytest.fixture
def start_server(cachee_bin: str):
    """Starts extra servers (with extra flags) for one test."""
    started: list[Server] = []

    def start(*args: str, sock: str | None = None) -> Server:
        s = Server(cachee_bin, *args, sock=sock)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def short_dir():
    """A fresh directory with a short path, for sockets (at most 107 bytes), removed
    after the test."""
    d = tempfile.mkdtemp(prefix="cachee-py")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A key of the test's own, so that tests sharing the server do not collide."""
    return f"py:{request.node.name}:{time.monotonic_ns()}"


@pytest.fixture
def redis_url(short_dir):
    """A real redis-server on a free loopback port, for the tests that need an L2 or a
    prewarm source; stopped after the test."""
    for _ in range(10):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", short_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        if proc.poll() is None:
            break
    else:
        raise RuntimeError("redis-server did not start")
    yield f"redis://127.0.0.1:{port}"
    proc.kill()
    proc.wait()
