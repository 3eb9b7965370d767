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
from logpipe.ship.forward_tags import TagRenderer


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
def test_the_kind_in_a_tag_is_the_schema_kind(level, kind, access):
    record: dict = {}
    if level is not None:
        record["level"] = level
    if kind is not None:
        record["event.kind"] = kind
    if access:
        record.update(method="GET", status=200)
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
    monkeypatch.setattr(forward_codec, "safe_records", lambda records: (records, 0))
    recs = [{"@timestamp": "2026-11-24T07:00:00.5Z", "i": i} for i in range(5)]
    recs[3]["big"] = 2**70
    packer = EntryPacker()
    (data,) = packer.entries_by_tag(recs, TagRenderer("x")).values()
    got = decode(data)
    assert [r["i"] for _, _, r in got] == [0, 1, 2, 3, 4]
    # the safe form (logpipe.safeform): the digits under _overflow.<field>, tagged, counted
    assert "big" not in got[3][2] and got[3][2]["_overflow.big"] == str(2**70) and got[0][1] == 500_000_000
    assert got[3][2]["tags"] == ["_encode_failure"] and packer.reduced == 1


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize("value", [_Unprintable(), {1, 2}, b"\x00\xff"])
def test_odd_values_never_stop_delivery(value):
    secs, _, rec = pack_one({"@timestamp": "2026-11-24T07:00:00.5Z", "v": value})
    assert rec["v"] in ("<unprintable _Unprintable>", [1, 2], "\x00\\xff")  # NUL is valid UTF-8


from logpipe import _core  # noqa: E402, F401 - required: pip install -e . builds it; missing is a failure, not a skip


@given(secs=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50), digits=st.integers(0, 12),
       frac=st.integers(0, 999_999_999_999))
def test_the_core_reads_tailer_stamps_as_event_time_does(secs, digits, frac):
    stamps = [time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) +
              (f".{(frac + i) % 10**digits:0{digits}d}" if digits else "") + "Z" for i, s in enumerate(secs)]

    def odd(value):
        raise AssertionError(f"the core left {value!r} to Python")

    assert _core.entry_prefixes(stamps, odd) == [b"\x92\xd7\x00" + forward_codec.event_time(s) for s in stamps]


@pytest.mark.parametrize("odd", ["2026-02-30T00:00:00.1Z", "2026-13-01T00:00:00.1Z", "2026-01-01T24:00:00.1Z",
                                 "2026-01-01T00:00:60.1Z", "1969-12-31T23:59:59.1Z", "2026-01-01 00:00:00.1Z",
                                 "2026-01-01T00:00:0.12Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.1\udcffZ",
                                 "２０２６-01-01T00:00:00.1Z", "2026-01-01T00:00:00.١Z", None, 1_700_000_000, 1.5])
def test_the_core_leaves_other_stamps_to_event_time(odd):
    asked = []

    def answer(value):
        asked.append(value)
        return forward_codec.event_time(value)

    stamps = ["2026-01-01T00:00:00.1Z", odd, "2026-01-01T00:00:00.1Z"]
    with pytest.MonkeyPatch.context() as mp:  # "now" for unreadable ones: the same both times
        mp.setattr(time, "time_ns", lambda: 1_795_504_527_123_456_789)
        got = _core.entry_prefixes(stamps, answer)
        want = [b"\x92\xd7\x00" + forward_codec.event_time(s) for s in stamps]
    assert asked == [odd] and got == want
    recs = [{"@timestamp": s, "i": i} for i, s in enumerate(stamps)]
    (data,) = EntryPacker().entries_by_tag(recs, TagRenderer("x")).values()
    assert [r["i"] for _, _, r in decode(data)] == [0, 1, 2]


def test_grouping_matches_render_and_keeps_order_within_a_tag():
    tags = TagRenderer("logpipe.{service}.{kind}")
    levels = ["info", "ERROR", None, "warn", 3, "critical"]
    recs = []
    for i in range(600):
        rec = {"@timestamp": "2026-11-24T07:00:00.000001Z", "i": i, "service": ["api", "db", None][i % 3]}
        if levels[i % 6] is not None:
            rec["level"] = levels[i % 6]
        if i % 5 == 0:
            rec.update(method="GET", status=200)
        if i % 11 == 0:
            rec["event.kind"] = "metric"
        recs.append(rec)
    chunks = list(EntryPacker().chunks(recs, tags, chunk_records=70))
    seen: dict[str, list[int]] = {}
    for tag, data, count in chunks:
        got = [r["i"] for _, _, r in decode(data)]
        assert len(got) == count and all(tags.render(recs[i]) == tag for i in got)
        seen.setdefault(tag, []).extend(got)
    assert sorted(i for ids in seen.values() for i in ids) == list(range(600))
    assert all(ids == sorted(ids) for ids in seen.values())


def test_python_types_beyond_json_pack_as_text():
    import dataclasses
    import datetime as dt
    import enum
    import uuid

    class Color(enum.Enum):
        RED = 1

    @dataclasses.dataclass
    class Point:
        x: int

    recs = [{"@timestamp": "2026-11-24T07:00:00.5Z", "i": i, "f": 1.5, "neg": -7, "big": 2**63, "none": None,
             "t": True, "l": [1, "a", {"n": [2]}], "s": "é ✓ 𝄞"} for i in range(50)]
    recs[3].update(when=dt.datetime(2026, 1, 2, 3, 4, 5, 6), day=dt.date(2026, 1, 2), id=uuid.UUID(int=7),
                   color=Color.RED, point=Point(1), tup=(1, 2))
    got = decode(EntryPacker().entries_by_tag(recs, TagRenderer("x"))["x"])
    assert [r for _, _, r in got[:3]] == recs[:3]
    assert {k: got[3][2][k] for k in ("when", "day", "id", "color", "point", "tup")} == {
        "when": "2026-01-02T03:04:05.000006", "day": "2026-01-02", "id": str(uuid.UUID(int=7)),
        "color": "Color.RED", "point": str(Point(1)), "tup": [1, 2]}


def test_message_parts_are_one_packed_forward_message():
    packer = EntryPacker()
    for size in (10, 300, 70_000):
        entries = b"\x92\xd7\x00" + bytes(8) + b"\x80"
        entries = entries * (size // len(entries) + 1)
        parts = packer.message_parts("a.tag", entries, 7, "cid", False)
        assert msgpack.unpackb(b"".join(parts), raw=False) == ["a.tag", entries, {"size": 7, "chunk": "cid"}]


def test_unvetted_pipeline_records_pack_the_same_and_odd_ints_still_convert():
    """The pipeline's records skip the orjson vet (`vet=False`); what ormsgpack cannot take
    (an int beyond 64 bits) still goes through the exact per-record conversion."""
    recs = [{"@timestamp": "2026-11-24T07:00:00.5Z", "service": "api", "i": i} for i in range(300)]
    recs[7]["big"] = 2**70
    packer = EntryPacker()
    vetted = [(t, d, c) for t, d, c in packer.chunks(recs, TagRenderer("x.{service}"))]
    unvetted = [(t, d, c) for t, d, c in packer.chunks(recs, TagRenderer("x.{service}"), vet=False)]
    assert vetted == unvetted
    got = decode(unvetted[0][1])
    assert got[7][2]["_overflow.big"] == str(2**70) and [r["i"] for _, _, r in got] == list(range(300))
    assert packer.reduced == 2  # once per call


def test_the_pipeline_marks_its_sink_as_fed_json_clean_records(tmp_path):
    from logpipe.config import Config
    from logpipe.pipeline import NullSink, Pipeline

    sink = NullSink()
    assert sink.json_clean_input is False  # a sink used on its own vets what it is given
    Pipeline(Config(), front=None, sink=sink)  # type: ignore[arg-type]
    assert sink.json_clean_input is True
