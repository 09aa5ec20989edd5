"""The blocking client against a real cachee."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import grpc
import pytest

import cachee
from attempts import Attempts


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
    with pytest.raises(cachee.PrewarmNotConfiguredError) as e:
        client.prewarm(on_progress=lambda p: None)
    assert e.value.code == "FAILED_PRECONDITION"
    assert e.value.reason == "PREWARM_NOT_CONFIGURED"


def test_invalid_arguments(client, key):
    with pytest.raises(cachee.KeyEmptyError) as e:
        client.get(b"")
    assert e.value.reason == "KEY_EMPTY"
    with pytest.raises(cachee.InvalidTTLError) as e:
        client.set(key, b"x", ttl=-1)
    assert isinstance(e.value, cachee.InvalidArgumentError)
    with pytest.raises(cachee.BatchTooLargeError) as e:
        client.get_many([b"k"] * 1001)
    assert e.value.reason == "BATCH_TOO_LARGE"


def test_oversized_set(client, key):
    # Over the 8mb server's 1 MiB value limit, within its message limit: the sidecar
    # names the field and the limit.
    with pytest.raises(cachee.ValueTooLargeError) as e:
        client.set(key, b"x" * ((1 << 20) + 1))
    assert isinstance(e.value, cachee.InvalidArgumentError)
    assert e.value.reason == "VALUE_TOO_LARGE"
    assert e.value.metadata["field"] == "value"
    assert isinstance(e.value.__cause__, grpc.RpcError)
    # Over the message limit too: refused before the value is looked at, as
    # MessageTooLargeError (with reason MESSAGE_TOO_LARGE from a sidecar that names
    # it, none from gRPC's own size check).
    with pytest.raises(cachee.MessageTooLargeError) as e:
        client.set(key, b"x" * (2 << 20))
    assert isinstance(e.value, cachee.InvalidArgumentError)
    assert e.value.code == "RESOURCE_EXHAUSTED"
    assert e.value.reason in (None, "MESSAGE_TOO_LARGE")


def test_deadline_exceeded(client, key):
    # A deadline that has passed before the call starts fails without a call.
    with pytest.raises(cachee.DeadlineExceededError) as e:
        client.get(key, timeout=0)
    assert e.value.code == "DEADLINE_EXCEEDED"
    assert not isinstance(e.value, cachee.UnavailableError)  # the caller's own deadline


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
    assert cachee.target("/x.sock") == "unix:///x.sock"
    assert cachee.target("unix:///x.sock") == "unix:///x.sock"
    assert cachee.target("h:1") == "h:1"


def test_a_client_made_before_the_sidecar(start_server, short_dir):
    sock = os.path.join(short_dir, "late.sock")
    rec = Attempts()
    with cachee.Client(sock, interceptors=[rec]) as c:
        with pytest.raises(cachee.UnavailableError) as e:
            c.get("k")
        assert e.value.reason is None  # from gRPC itself, not from the server
        # Known to be down (its last connection attempt failed): the call fails at
        # once, without a retry, and the client keeps reconnecting in the background.
        sent = len(rec.log)
        with pytest.raises(cachee.UnavailableError):
            c.get("k")
        assert len(rec.log) == sent + 1
        start_server(sock=sock)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert c.set("late", b"v")
                break
            except cachee.UnavailableError:
                assert time.monotonic() < deadline, "the client did not reconnect"
                time.sleep(0.05)
        assert c.get("late") == b"v"


def test_retries_stop_at_the_deadline(short_dir):
    sock = os.path.join(short_dir, "absent.sock")
    # Uncapped, these retries would wait about 1000 x 0.5 s; a wait that would end past
    # the 1 s deadline is not made, so there are at most two attempts.
    retry = cachee.RetryPolicy(max_attempts=1000, initial_backoff=0.5, max_backoff=0.5)
    rec = Attempts()
    with cachee.Client(sock, retry=retry, interceptors=[rec]) as c:
        with pytest.raises(cachee.UnavailableError):
            c.get("k", timeout=1.0)
    assert 1 <= len(rec.log) <= 2
