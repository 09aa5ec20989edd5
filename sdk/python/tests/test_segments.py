"""Every case of the segment conformance fixtures (sdk/testdata/segments, written by
the Go writer's generator) through the Python binding of the Rust reader, with the
reader's clock injected as each case gives it."""

from __future__ import annotations

import json
import pathlib

import pytest

from cachee import _native

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "segments"
CASES = json.loads((FIXTURES / "cases.json").read_text())


def decode(b: dict) -> bytes:
    p = bytes.fromhex(b["hex"])
    n = b.get("len", 0)
    return p if not n else (p * (n // len(p) + 1))[:n]


def open_segment(name: str):
    """The segment, or the fixtures' name for why it cannot be opened."""
    try:
        return _native.Segment(str(FIXTURES / name / "cachee.seg"))
    except _native.SegmentError as e:
        kind, message = e.args
        assert kind in ("format", "stale"), message
        return kind


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["name"])
def test_case(case):
    seg = open_segment(case["segment"])
    key = decode(case["key"])
    if isinstance(seg, str):
        assert seg == case["expect"], case["why"]
        return
    result, value, ref = seg.lookup(key, case["now_ms"])
    assert result == case["expect"], case["why"]
    if result == "hit":
        assert value == decode(case["value"]), case["why"]
        assert ref == int(case["ref"], 16), case["why"]
        # A str key is its UTF-8 bytes.
        try:
            text = key.decode()
        except UnicodeDecodeError:
            return
        assert seg.lookup(text, case["now_ms"])[1] == value
    else:
        assert value is None and ref == 0


@pytest.mark.parametrize("info", CASES["segments"], ids=lambda s: s["name"])
def test_generation(info):
    seg = open_segment(info["name"])
    if not isinstance(seg, str):
        assert seg.generation == int(info["generation"], 16)


def test_key_types():
    seg = _native.Segment(str(FIXTURES / "data" / "cachee.seg"))
    with pytest.raises(TypeError):
        seg.lookup(42, 0)
    with pytest.raises(TypeError):
        _native.Reader(str(FIXTURES / "data")).get(bytearray(b"k"))
