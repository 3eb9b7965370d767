"""The byte layout of PackedForward entries, decoded with plain msgpack (not our code)."""

from __future__ import annotations

import calendar
import struct
import time

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from logpipe.fields import record_kind
from logpipe.ship import forward_codec
from logpipe.ship.forward_codec import EntryPacker
from logpipe.ship.forward_tags import TagRenderer, record_kind_fast


def decode(entries: bytes) -> list[tuple[int, int, dict]]:
    out = []
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(entries)
    for t, rec in unpacker:
        assert isinstance(t, msgpack.ExtType) and t.code == 0 and len(t.data) == 8
        secs, nanos = struct.unpack(">II", t.data)
        out.append((secs, nanos, rec))
    return out


def pack_one(record: dict) -> tuple[int, int, dict]:
    tags = TagRenderer("t.{kind}")
    (pieces,) = EntryPacker().entries_by_tag([record], tags).values()
    (entry,) = decode(pieces)
    return entry


def test_event_time_variants():
    base = calendar.timegm((2026, 11, 24, 7, 0, 0))
    assert pack_one({"@timestamp": "2026-11-24T07:00:00.5Z"})[:2] == (base, 500_000_000)
    assert pack_one({"@timestamp": "2026-11-24T07:00:00.123456789Z"})[:2] == (base, 123_456_789)
    assert pack_one({"@timestamp": "2026-11-24T07:00:00Z"})[:2] == (base, 0)
    assert pack_one({"@timestamp": "2026-11-24T09:00:00.250+02:00"})[:2] == (base, 250_000_000)
    assert pack_one({"@timestamp": 1_700_000_000.75})[:2] == (1_700_000_000, 750_000_000)
    before = int(time.time())
    secs, _, rec = pack_one({"message": "no timestamp"})
    assert before <= secs <= time.time() + 1 and rec == {"message": "no timestamp"}
    assert pack_one({"@timestamp": "garbage"})[0] >= before


def test_many_records_same_second_use_cache_correctly():
    recs = [{"@timestamp": f"2026-11-24T07:00:{i % 3:02d}.{i:06d}Z", "i": i} for i in range(1000)]
    (pieces,) = EntryPacker().entries_by_tag(recs, TagRenderer("x")).values()
    got = decode(pieces)
    base = calendar.timegm((2026, 11, 24, 7, 0, 0))
    assert [(s - base, n, r["i"]) for s, n, r in got] == [(i % 3, i * 1000, i) for i in range(1000)]


def test_tag_values_are_made_safe():
    tags = TagRenderer("logpipe.{service}.{kind}")
    assert tags.render({"service": "billing api.v2", "level": "ERROR"}) == "logpipe.billing_api_v2.error"
    assert tags.render({"service": "", "method": "GET", "status": 200}) == "logpipe.unknown.access"
    assert tags.render({"service": {"nested": 1}}) == "logpipe.nested_1.app"
    groups = EntryPacker().entries_by_tag([{"service": ["a"]}, {"service": ["a"]}], tags)
    assert list(groups) == ["logpipe.a.app"] and len(decode(groups["logpipe.a.app"])) == 2


levels = st.one_of(st.none(), st.sampled_from(["info", "ERROR", "Error", "critical", "warn", "FATAL"]),
                   st.text(max_size=8), st.integers())


@given(level=levels, kind=st.one_of(st.none(), st.sampled_from(["", "metric", "alert"])),
       access=st.booleans())
def test_fast_kind_matches_the_schema(level, kind, access):
    record: dict = {}
    if level is not None:
        record["level"] = level
    if kind is not None:
        record["event.kind"] = kind
    if access:
        record.update(method="GET", status=200)
    assert record_kind_fast(record) == record_kind(record)
    tags = TagRenderer("{kind}")
    assert list(EntryPacker().entries_by_tag([record], tags)) == [record_kind(record) or "unknown"]


def test_chunks_split_by_size_and_keep_order():
    recs = [{"@timestamp": "2026-11-24T07:00:00.000001Z", "i": i, "pad": "p" * 200} for i in range(3000)]
    chunks = list(EntryPacker().chunks(recs, TagRenderer("x"), chunk_bytes=64 * 1024, chunk_records=1000))
    # the first chunk of a tag is cut by record count, later ones by measured size
    assert chunks[0][2] == 1000
    assert len(chunks) > 5 and all(len(data) < 1.2 * 64 * 1024 for _, data, _ in chunks[1:])
    got = [r["i"] for _, data, count in chunks for (_, _, r) in decode(data)]
    assert got == list(range(3000))
    assert sum(count for _, _, count in chunks) == 3000


def test_a_value_msgpack_rejects_mid_chunk_is_converted_and_the_chunk_rebuilt(monkeypatch):
    # Pretend the orjson pre-check missed it: msgpack then fails half-way and empties its buffer.
    monkeypatch.setattr(forward_codec, "safe_records", lambda records: records)
    recs = [{"@timestamp": "2026-11-24T07:00:00.5Z", "i": i} for i in range(5)]
    recs[3]["big"] = 2**70
    (data,) = EntryPacker().entries_by_tag(recs, TagRenderer("x")).values()
    got = decode(data)
    assert [r["i"] for _, _, r in got] == [0, 1, 2, 3, 4]
    assert got[3][2]["big"] == str(2**70) and got[0][1] == 500_000_000


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize("value", [_Unprintable(), {1, 2}, b"\x00\xff"])
def test_odd_values_never_stop_delivery(value):
    secs, _, rec = pack_one({"@timestamp": "2026-11-24T07:00:00.5Z", "v": value})
    assert rec["v"] in ("<unprintable _Unprintable>", [1, 2], "\x00\\xff")  # NUL is valid UTF-8
