"""The native PackedForward encoder (`logpipe._core.EntryEncoder`, core/src/msgpack.rs) against
the Python one.

The reference is `EntryPacker.chunks` with the core off (`LOGPIPE_CORE=off`: every EventTime
read by `forward_codec.event_time`, every record packed by ormsgpack): for the records of an NDJSON batch (what the core road carries), the native encoder must give
the same chunks — same tags in the same order, same cuts, the same msgpack bytes of each
`[EventTime, record]` entry — also over several batches through one packer (group ids persist).
"""

from __future__ import annotations

import math
import time
from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe import _core  # noqa: E402, F401 - required: pip install -e . builds it; missing is a failure, not a skip
from logpipe.safeform import INT_MAX, INT_MIN
from logpipe.ship.forward_codec import EntryPacker
from logpipe.ship.forward_tags import TagRenderer
from logpipe.ship.stdout import encode_ndjson

any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates too
scalars = st.one_of(st.none(), st.booleans(), st.floats(), st.integers(INT_MIN, INT_MAX),
                    st.integers(-(2**70), 2**70), any_text, st.text(max_size=40),
                    st.sampled_from(["\"", "\\", "\x00\x1f\u2028", "é😀", "x" * 40, "y" * 300]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=20), st.dictionaries(any_text, inner, max_size=18)), max_leaves=24)
frac = st.text("0123456789", min_size=0, max_size=12)
stamps = st.one_of(
    st.builds(lambda d, f: d + ("." + f if f else "") + "Z",
              st.sampled_from(["2026-11-24T07:15:27", "1970-01-01T00:00:00", "2024-02-29T23:59:59",
                               "2026-02-29T00:00:00", "2026-11-24T07:15:60", "1969-12-31T23:59:59",
                               "2106-02-07T06:28:16", "2106-02-07T06:28:15", "2026-13-01T00:00:00",
                               "2026-11-24T24:00:00", "2026-11-24 07:15:27", "２０２６-11-24T07:15:27"]), frac),
    st.sampled_from(["2026-11-24T07:15:27+00:00", "2026-11-24T07:15:27.5+02:00", "2026-11-24", "2026-11-24T07:15:27.Z",
                     "2026-11-24T07:15:27.١٢Z", "yesterday", ""]),
    st.integers(-5, 2**33), st.floats(-1, 2**33), st.none(), st.booleans(), st.text(max_size=30))
levels = st.one_of(st.sampled_from(["info", "error", "ERROR", "warn", "critical", "Fatal"]), scalars)
templates = st.sampled_from(["logpipe.{service}.{kind}", "app.{service}", "fixed", "{level}.{status}.{kind}"])


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    rec = draw(st.dictionaries(any_text, values, max_size=5))
    for key, strategy in (("@timestamp", stamps), ("service", st.one_of(st.sampled_from(["api", "a b", "é"]), scalars)),
                          ("level", levels), ("event.kind", st.sampled_from(["metric", "alert", "", None])),
                          ("status", st.sampled_from([200, 500, None])), ("method", st.just("GET")),
                          ("message", any_text), ("_id", st.text("0123456789abcdef", min_size=28, max_size=28))):
        if draw(st.integers(0, 2)):
            rec[key] = draw(strategy)
    return rec


def native_and_python(batches: list[list[dict[str, Any]]], template: str, chunk_bytes: int,
                      chunk_records: int) -> tuple[list[Any], list[Any]]:
    """Chunks of each batch's NDJSON through the native encoder and, decoded, through `chunks`
    with the core off."""
    tags = TagRenderer(template)
    native, python = EntryPacker(), EntryPacker()
    got, want = [], []
    for batch in batches:
        data, _ = encode_ndjson(batch)
        decoded = [orjson.loads(line) for line in data.splitlines()]
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LOGPIPE_CORE", "off")
            ref = list(python.chunks(decoded, tags, chunk_bytes=chunk_bytes, chunk_records=chunk_records))
        got.append(native.ndjson_chunks(data, tags, chunk_bytes=chunk_bytes, chunk_records=chunk_records))
        want.append(ref)
    return got, want


PROFILE = settings(max_examples=300, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROFILE
@given(batches=st.lists(st.lists(records(), min_size=1, max_size=8), min_size=1, max_size=3), template=templates,
       chunk_bytes=st.sampled_from([1, 200, 4096, 1 << 20]), chunk_records=st.sampled_from([1, 3, 2000]))
def test_native_chunks_are_the_python_ones(batches: list[list[dict[str, Any]]], template: str,
                                           chunk_bytes: int, chunk_records: int) -> None:
    with pytest.MonkeyPatch.context() as mp:  # "now" for unreadable timestamps: the same on both roads
        mp.setattr(time, "time_ns", lambda: 1_795_504_527_123_456_789)
        got, want = native_and_python(batches, template, chunk_bytes, chunk_records)
    assert got == want


def test_entries_decode_to_the_records() -> None:
    recs = [{"@timestamp": "2026-11-24T07:15:27.029167Z", "service": "api", "level": "info", "n": -(2**63),
             "u": 2**64 - 1, "f": 0.1, "big": 1e300, "t": "é\n\"", "l": [1, [2, {}]], "_id": "x"}]
    data, _ = encode_ndjson(recs)
    ((tag, entries, count),) = EntryPacker().ndjson_chunks(data, TagRenderer("logpipe.{service}.{kind}"))
    assert (tag, count) == ("logpipe.api.app", 1)
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=lambda code, b: (code, b))
    unpacker.feed(entries)
    ((stamp, got),) = list(unpacker)
    assert stamp == (0, (1_795_504_527).to_bytes(4, "big") + (29_167_000).to_bytes(4, "big"))
    assert got == recs[0] and not math.isnan(got["f"])


@PROFILE
@given(stamps=st.lists(st.builds(lambda d, f: d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{f}" if f else "") + "Z",
                                 st.datetimes(min_value=__import__("datetime").datetime(1970, 1, 1),
                                              max_value=__import__("datetime").datetime(2106, 2, 7)),
                                 st.text("0123456789", max_size=9)), min_size=1, max_size=30),
       same_width=st.booleans())
def test_tailer_timestamps_read_by_the_core_match_event_time(stamps: list[str], same_width: bool) -> None:
    """The tailer's own form, which the core reads itself, whether a batch's stamps share their
    width or not."""
    if same_width:
        stamps = [s[:19] + ".123Z" for s in stamps]
    batch = [{"@timestamp": s, "service": "api", "message": "m"} for s in stamps]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "time_ns", lambda: 1_795_504_527_123_456_789)
        got, want = native_and_python([batch], "logpipe.{service}", 1 << 20, 2000)
    assert got == want


def test_a_list_or_object_in_a_tag_field_stays_on_the_native_road() -> None:
    recs = [{"service": ["a"], "i": 0}, {"service": "b", "i": 1}, {"service": {"x": 1}, "i": 2}, {"service": ["a"], "i": 3}]
    data, _ = encode_ndjson(recs)
    tags = TagRenderer("logpipe.{service}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "time_ns", lambda: 1_795_504_527_123_456_789)
        got = EntryPacker().ndjson_chunks(data, tags)
        want = list(EntryPacker().chunks(recs, tags))
    assert got == want and [t for t, _, _ in got] == ["logpipe.a", "logpipe.b", "logpipe.x_1"]
