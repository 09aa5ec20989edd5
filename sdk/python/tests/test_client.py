"""The blocking client against a real cachee."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest

import cachee


@pytest.fixture
def client(server):
    with cachee.Client(server.sock, timeout=10) as c:
        yield c


def test_get_set_delete(client, key):
    assert client.get(key) is None
    value = bytes([0, 1, 0xFF]) * 40  # binary-safe
    assert client.set(key, value, ttl=3600)
    assert client.get(key) == value
    assert client.set(key, "text")  # str is UTF-8
    assert client.get(key.encode()) == b"text"
    assert client.delete(key)
    assert not client.delete(key)
    assert client.get(key) is None


def test_empty_value_is_a_hit(client, key):
    assert client.set(key, b"")
    assert client.get(key) == b""


def test_conditions(client, key):
    assert not client.set(key, b"x", only_if_present=True)
    assert client.get(key) is None
    assert client.set(key, b"1", only_if_absent=True)
    assert not client.set(key, b"2", only_if_absent=True)
    assert client.set(key, b"3", only_if_present=True)
    assert client.get(key) == b"3"
    with pytest.raises(ValueError):
        client.set(key, b"4", only_if_absent=True, only_if_present=True)


def test_ttl_expires(client, key):
    assert client.set(key, b"v", ttl=timedelta(milliseconds=50))
    deadline = time.monotonic() + 10
    while client.get(key) is not None:  # expiry is the server's clock, not ours
        assert time.monotonic() < deadline, "key did not expire"
        time.sleep(0.02)


def test_batches(client, key):
    keys = [f"{key}:{i}" for i in range(5)]
    stored = client.set_many(
        [(keys[0], b"a"), cachee.Item(keys[1], b"b", ttl=60), cachee.Item(keys[0], b"z", only_if_absent=True)]
    )
    assert stored == [True, True, False]
    assert client.get_many([keys[1], keys[2], keys[0], keys[1]]) == [b"b", None, b"a", b"b"]


def test_stats(client, key):
    before = client.stats()
    client.set(key, b"v")
    client.get(key)
    client.get(key + ":absent")
    after = client.stats()
    assert after.sets >= before.sets + 1
    assert after.hits >= before.hits + 1
    assert after.misses >= before.misses + 1
    assert after.entries >= 1
    assert after.memory_limit_bytes > 0
    assert after.eviction == "cachee-lfu"
    assert after.uptime > timedelta(0)
    assert 0.0 < after.hit_rate < 1.0


def test_prewarm_not_configured(client):
    with pytest.raises(cachee.FailedPreconditionError) as e:
        client.prewarm(on_progress=lambda p: None)
    assert e.value.code == "FAILED_PRECONDITION"
    assert e.value.reason == "PREWARM_NOT_CONFIGURED"


def test_invalid_arguments(client, key):
    with pytest.raises(cachee.InvalidArgumentError) as e:
        client.get(b"")
    assert e.value.reason == "KEY_EMPTY"
    with pytest.raises(cachee.InvalidArgumentError) as e:
        client.set(key, b"x" * ((1 << 20) + 1))  # over the 8mb server's 1 MiB value limit
    assert e.value.reason == "VALUE_TOO_LARGE"
    assert e.value.metadata["field"] == "value"
    with pytest.raises(cachee.InvalidArgumentError) as e:
        client.set(key, b"x", ttl=-1)
    assert e.value.reason == "INVALID_TTL"
    with pytest.raises(cachee.InvalidArgumentError) as e:
        client.get_many([b"k"] * 1001)
    assert e.value.reason == "BATCH_TOO_LARGE"


def test_deadline_exceeded(client, key):
    # A deadline that has passed before the call starts fails without a call.
    with pytest.raises(cachee.DeadlineExceededError) as e:
        client.get(key, timeout=0)
    assert e.value.code == "DEADLINE_EXCEEDED"


def test_message_too_large(client, key):
    # Over the server's MaxRecvMsgSize: gRPC itself refuses it, with no ErrorInfo.
    with pytest.raises(cachee.ResourceExhaustedError) as e:
        client.set(key, b"x" * (2 << 20))
    assert e.value.reason is None


def test_env_selects_tcp(server, key, monkeypatch):
    host, port = server.tcp.rsplit(":", 1)
    monkeypatch.setenv("CACHE_HOST", host)
    monkeypatch.setenv("CACHE_PORT", port)
    with cachee.Client() as c:
        assert c.target == server.tcp
        assert c.set(key, b"over tcp")
    with cachee.Client(server.sock) as c:
        assert c.get(key) == b"over tcp"


def test_target():
    assert cachee.target("/x.sock") == "unix:/x.sock"
    assert cachee.target("unix:///x.sock") == "unix:///x.sock"
    assert cachee.target("h:1") == "h:1"


def test_which_calls_may_be_retried():
    from cachee._common import may_retry

    # A connection reset (no reason) after a conditional write may hide an applied write.
    assert not may_retry(False, "UNAVAILABLE", None)
    assert may_retry(True, "UNAVAILABLE", None)  # Get, BatchGet, Stats, plain Set
    # The server refused the call before applying it: any call may go again.
    assert may_retry(False, "UNAVAILABLE", "OVERLOADED")
    assert may_retry(False, "UNAVAILABLE", "SHUTTING_DOWN")
    assert not may_retry(False, "UNAVAILABLE", "PREWARM_SOURCE_UNAVAILABLE")
    assert not may_retry(True, "ABORTED", "READ_CONTENDED")


def test_retries_until_the_server_is_up(start_server, short_dir):
    sock = os.path.join(short_dir, "late.sock")
    started = threading.Timer(0.5, lambda: start_server(sock=sock))
    started.start()
    try:
        retry = cachee.RetryPolicy(max_attempts=1000, initial_backoff=0.05, max_backoff=0.2)
        with cachee.Client(sock, retry=retry) as c:
            assert c.set("late", b"v", timeout=60)
    finally:
        started.join()


def test_retries_stop_at_the_deadline(short_dir):
    sock = os.path.join(short_dir, "absent.sock")
    # Uncapped, these retries would wait about 1000 x 0.5 s.
    retry = cachee.RetryPolicy(max_attempts=1000, initial_backoff=0.5, max_backoff=0.5)
    with cachee.Client(sock, retry=retry) as c:
        t0 = time.monotonic()
        # The last attempt's UNAVAILABLE, or DEADLINE_EXCEEDED if the deadline ran out
        # during an attempt on a loaded machine: either way no retry went past it.
        with pytest.raises((cachee.UnavailableError, cachee.DeadlineExceededError)):
            c.get("k", timeout=1.0)
        # Generous slack for a loaded machine: the point is that it stopped near 1 s
        # and not after hundreds of retries.
        assert time.monotonic() - t0 < 5.0


def test_no_retry_policy_fails_fast(short_dir):
    sock = os.path.join(short_dir, "absent.sock")
    with cachee.Client(sock, retry=cachee.RetryPolicy(max_attempts=1)) as c:
        with pytest.raises(cachee.UnavailableError) as e:
            c.get("k", timeout=5)
        assert e.value.reason is None  # from gRPC itself, not from the server
