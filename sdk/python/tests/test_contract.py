"""The SDK contract's cases (docs/sdk-contract.md, sdk/testdata/contract), which every
cachee SDK's tests run: changing one rule here fails one of these."""

from __future__ import annotations

import json
import pathlib
import pickle

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

import cachee
from cachee import _common as c
from cachee import _errors
from cachee.v1 import error_reason_pb2

CONTRACT = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "contract"


def load(name: str) -> dict:
    return json.loads((CONTRACT / name).read_text())


ADDRESS = load("address.json")
ERRORS = load("errors.json")
RETRY = load("retry.json")
LIFECYCLE = load("lifecycle.json")


@pytest.mark.parametrize("case", ADDRESS["target_cases"], ids=lambda t: t["name"])
def test_target(case):
    assert c.target(case["explicit"], case["env"]) == case["target"]


@pytest.mark.parametrize("case", ADDRESS["shm_cases"], ids=lambda t: t["name"])
def test_shm_dir(case):
    assert c.shm_dir(case["explicit"], case["env"]) == case["shm_dir"]
    assert c.SEGMENT_FILE == ADDRESS["segment_file"]


@pytest.mark.parametrize("case", ADDRESS["token_cases"], ids=lambda t: t["name"])
def test_token(case):
    md = c.call_metadata(c.auth_token(case["explicit"], case["env"]))
    want = None if case["metadata"] is None else (("authorization", case["metadata"]),)
    assert md == want


class StatusError(grpc.RpcError):
    """A failed call as grpc reports it: a code, a message, and the trailers that carry
    the google.rpc.Status with the ErrorInfo (what the sidecar sends)."""

    def __init__(self, code: grpc.StatusCode, reason: str | None) -> None:
        self._code = code
        self._trailers: tuple = ()
        if reason is not None:
            info = error_details_pb2.ErrorInfo(reason=reason, domain="cachee", metadata={"field": "key"})
            detail = any_pb2.Any()
            detail.Pack(info)
            st = status_pb2.Status(code=code.value[0], message="m", details=[detail])
            self._trailers = (("grpc-status-details-bin", st.SerializeToString()),)

    def code(self):
        return self._code

    def details(self):
        return "m"

    def trailing_metadata(self):
        return self._trailers


def classes(err: BaseException) -> set[str]:
    """The contract's classes err belongs to."""
    return {name for name in ERRORS["classes"] if isinstance(err, getattr(cachee, name + "Error"))}


@pytest.mark.parametrize("case", ERRORS["cases"], ids=lambda t: f'{t["code"]}/{t["reason"]}')
def test_error_class(case):
    e = StatusError(grpc.StatusCode[case["code"]], case["reason"])
    err = _errors.from_rpc_error(e)
    assert classes(err) == {case["class"], *case["also"]}
    assert isinstance(err, cachee.CacheeError)
    assert err.code == case["code"]
    assert err.reason == case["reason"]
    if case["reason"] is not None:
        assert err.metadata == {"field": "key"}


def test_client_error_classes():
    by_situation = {x["situation"]: x for x in ERRORS["client_cases"]}
    errs = {
        "a call on a closed client": c.closed_error(),
        "the SDK's default deadline ran out (the caller gave none)": cachee.SidecarTimeoutError("t", "DEADLINE_EXCEEDED"),
        "the caller's own deadline ran out": cachee.DeadlineExceededError("t", "DEADLINE_EXCEEDED"),
    }
    assert set(errs) == set(by_situation)
    for situation, err in errs.items():
        want = by_situation[situation]
        assert classes(err) == {want["class"], *want["also"]}, situation


def test_attempts_pick_the_deadline_class():
    late = StatusError(grpc.StatusCode.DEADLINE_EXCEEDED, None)
    own = c.Attempts(c.GET, c.RetryPolicy(), None, 1.0).failed(late, False, False)[0]
    assert classes(own) == {"DeadlineExceeded", "Unavailable"}
    callers = c.Attempts(c.GET, c.RetryPolicy(), 1.0, 1.0).failed(late, False, False)[0]
    assert classes(callers) == {"DeadlineExceeded"}
    closed = c.Attempts(c.GET, c.RetryPolicy(), None, 1.0).failed(late, True, False)[0]
    assert classes(closed) == {"Closed"}


def test_every_reason_has_a_class():
    for name, value in error_reason_pb2.ErrorReason.items():
        if value == error_reason_pb2.ERROR_REASON_UNSPECIFIED:
            continue
        assert value in _errors.BY_REASON, name
        assert _errors.reason_value(_errors.reason_name(value)) == value


def test_every_class_is_exported():
    for name in ERRORS["classes"]:
        cls = getattr(cachee, name + "Error")
        assert issubclass(cls, cachee.CacheeError)
        assert name + "Error" in cachee.__all__


def test_errors_pickle_and_keep_their_cause():
    cause = StatusError(grpc.StatusCode.INVALID_ARGUMENT, "VALUE_TOO_LARGE")
    try:
        try:
            raise cause
        except grpc.RpcError as e:
            raise _errors.from_rpc_error(e) from e
    except cachee.CacheeError as e:
        err = e
    assert err.__cause__ is cause
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cachee.ValueTooLargeError
    assert (back.message, back.code, back.reason, back.metadata) == ("m", "INVALID_ARGUMENT", "VALUE_TOO_LARGE", {"field": "key"})
    assert str(back) == str(err) == "INVALID_ARGUMENT VALUE_TOO_LARGE: m"
    closed = pickle.loads(pickle.dumps(c.closed_error()))
    assert type(closed) is cachee.ClosedError


RPCS = {
    ("Get", False): c.GET,
    ("BatchGet", False): c.BATCH_GET,
    ("Stats", False): c.STATS,
    ("Delete", False): c.DELETE,
    ("Set", False): c.SET,
    ("Set", True): c.SET_IF,
    ("BatchSet", False): c.BATCH_SET,
    ("BatchSet", True): c.BATCH_SET_IF,
    ("Prewarm", False): c.PREWARM,
    ("RecordAccess", False): c.RECORD_ACCESS,
}


@pytest.mark.parametrize(
    "case",
    RETRY["cases"],
    ids=lambda t: f'{t["method"]}{"?" if t["conditional"] else ""}/{t["code"]}/{t["reason"]}/{"down" if t["known_down"] else "up"}',
)
def test_retry(case):
    rpc = RPCS[(case["method"], case["conditional"])]
    assert rpc.name == case["method"]
    assert c.may_retry(rpc, case["code"], case["reason"], case["known_down"]) is case["retry"]
    # The same through the loop both clients run: an attempt that fails so is retried
    # (a wait is given) exactly when the rule says.
    attempts = c.Attempts(rpc, c.RetryPolicy(), 10.0, 10.0)
    err, wait = attempts.failed(StatusError(grpc.StatusCode[case["code"]], case["reason"]), False, case["known_down"])
    assert (wait is not None) is case["retry"]


def test_every_method_has_a_case():
    assert {(m, False) for m in RETRY["methods"]} <= set(RPCS)


def test_defaults():
    d = RETRY["defaults"]
    p = cachee.RetryPolicy()
    assert c.DEFAULT_TIMEOUT == d["timeout_ms"] / 1000
    assert c.DEFAULT_PREWARM_TIMEOUT == d["prewarm_timeout_ms"] / 1000
    assert p.max_attempts == d["max_attempts"]
    assert p.initial_backoff == d["backoff_initial_ms"] / 1000
    assert p.multiplier == d["backoff_multiplier"]
    assert p.max_backoff == d["backoff_max_ms"] / 1000
    assert d["backoff_jitter"] == "uniform in [d/2, d]"
    assert (c.RECONNECT_INITIAL_MS, c.RECONNECT_MULTIPLIER, c.RECONNECT_MAX_MS) == (
        d["reconnect_initial_ms"],
        d["reconnect_multiplier"],
        d["reconnect_max_ms"],
    )
    assert ("grpc.initial_reconnect_backoff_ms", d["reconnect_initial_ms"]) in c.CHANNEL_OPTIONS
    assert ("grpc.max_reconnect_backoff_ms", d["reconnect_max_ms"]) in c.CHANNEL_OPTIONS
    for n in range(1, 10):
        step = min(d["backoff_initial_ms"] * d["backoff_multiplier"] ** (n - 1), d["backoff_max_ms"]) / 1000
        for _ in range(50):
            assert step / 2 <= p.backoff(n) <= step


def test_no_wait_past_the_deadline():
    p = cachee.RetryPolicy(max_attempts=100, initial_backoff=0.5, max_backoff=0.5)
    import time

    assert p.next_wait(1, time.monotonic() + 0.2) is None  # the wait would end after it
    assert p.next_wait(1, time.monotonic() + 60) is not None
    assert p.next_wait(100, time.monotonic() + 60) is None  # out of attempts


def test_after_close_cases_name_every_call():
    methods = {x["method"] for x in LIFECYCLE["after_close"]}
    assert methods == {"Get", "BatchGet", "Set", "BatchSet", "Delete", "Stats", "Prewarm"}
    assert {x["class"] for x in LIFECYCLE["after_close"]} == {"Closed"}
