"""Every sink encoder, fed arbitrary JSON-ish records (deep nesting, huge integers, odd keys,
lone surrogates, NaN...), either encodes a record so that it decodes to the same record, or
sends its safe form (logpipe.safeform: tagged `_encode_failure`, counted). It never raises.

Encoders: the NDJSON renderer (stdout), the archive segment writer, the Elasticsearch bulk
body, the Fluentd PackedForward entries.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe.config import SinkConfig
from logpipe.safeform import INT_MAX, INT_MIN, MAX_DEPTH, TAG_ENCODE_FAILURE, reduce, render_text
from logpipe.ship.archive import ArchiveSink
from logpipe.ship.elastic import ElasticSink
from logpipe.ship.forward_codec import EntryPacker
from logpipe.ship.forward_tags import TagRenderer
from logpipe.ship.stdout import encode_ndjson

# Text with lone surrogates too (what a decoder with surrogateescape leaves behind).
any_text = st.text(st.characters(exclude_categories=()), max_size=12)
huge_ints = st.one_of(st.integers(INT_MAX + 1, 2**200), st.integers(-(2**200), INT_MIN - 1))
scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(INT_MIN, INT_MAX), huge_ints, any_text, st.text(max_size=20),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)), max_leaves=12)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """A value nested 200-1,100 levels deep (around every encoder's limit), lists or objects."""
    depth = draw(st.integers(200, 1_100))
    value: Any = draw(scalars)
    use_dict = draw(st.booleans())
    for _ in range(depth):
        value = {"k": value} if use_dict else [value]
    return value


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "@timestamp": draw(st.sampled_from(["2026-11-24T07:15:27.029167Z", "2026-11-24T07:15:27Z", "yesterday"])),
        "message": draw(st.one_of(st.text(max_size=30), any_text)),
        "service": draw(st.one_of(st.sampled_from(["api", "billing api"]), values, deep())),
    }
    extra = draw(st.dictionaries(any_text, st.one_of(values, deep()) if draw(st.booleans()) else values,
                                 max_size=5))
    for key, value in extra.items():
        rec.setdefault(key, value)
    if draw(st.booleans()):
        rec["level"] = draw(st.one_of(st.sampled_from(["info", "error"]), scalars))
    if draw(st.booleans()):
        rec["tags"] = draw(st.lists(st.text(max_size=8), max_size=3))
    rec["_id"] = draw(st.text("0123456789abcdef", min_size=28, max_size=28))
    return rec


def json_view(value: Any) -> Any:
    """What a JSON round trip gives back: NaN/Infinity as null, tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_view(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_view(v) for v in value]
    return value


def msgpack_view(value: Any) -> Any:
    """What a msgpack round trip gives back, with NaN as a marker (NaN != NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return "<nan>"
    if isinstance(value, dict):
        return {k: msgpack_view(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [msgpack_view(v) for v in value]
    return value


def check(original: dict[str, Any], got: dict[str, Any], reduced: bool, view: Any = json_view) -> None:
    """`got` is `original` as it was, or its safe form; never anything else."""
    if not reduced:
        assert got == view(original)
        return
    tags = got["tags"]
    assert tags[-1] == TAG_ENCODE_FAILURE
    if _plain(original.get("tags")) and _depth(original.get("tags")) < MAX_DEPTH:
        assert tags[:-1] == view(original.get("tags", []))  # the record's own tags kept first
    assert got["_id"] == original["_id"]
    assert got == view(reduce(original))
    missing = False
    for key, value in original.items():
        if key in ("tags", "_id"):
            continue
        if (_plain(key) and _plain(value) and _depth(value) < MAX_DEPTH and key not in ("message", "level")
                and not key.startswith("_overflow.")):
            assert got[key] == view(value)  # a field that was fine stays as it was
        if key.startswith("_overflow.") and got.get(key) != view(value):
            missing = True  # replaced by ours
        elif _plain(key) and key not in got and not any(  # (a key with surrogates is renamed)
                k == f"_overflow.{key}" or k.startswith(f"_overflow.{key}.") for k in got):
            missing = True
    if missing:  # a dropped field is still there, in the original record's text
        assert got["message"] == render_text(original)
    for key, digits in got.items():
        if key.startswith("_overflow.") and key not in original:
            assert digits.lstrip("-").isdigit() or (digits.startswith("[") and digits.endswith("]"))


def _depth(value: Any) -> int:
    """Nesting of the chains `deep()` builds (the other values are shallow)."""
    depth = 0
    while isinstance(value, list | dict) and value:
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
        depth += 1
    return depth + (1 if isinstance(value, list | dict) else 0)


def _plain(value: Any) -> bool:
    """No big integer and no lone surrogate anywhere inside (so the field needs no cleaning)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(v, int) and not isinstance(v, bool) and not INT_MIN <= v <= INT_MAX:
            return False
    return True


PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.data_too_large])


@PROFILE
@given(rec=records())
def test_ndjson_renderer(rec: dict[str, Any]) -> None:
    data, reduced = encode_ndjson([rec])
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    check(rec, json.loads(data), bool(reduced))


@settings(PROFILE, max_examples=40)
@given(rec=records())
def test_archive_segment(tmp_path_factory: Any, rec: dict[str, Any]) -> None:
    root = tmp_path_factory.mktemp("archive")
    sink = ArchiveSink(SinkConfig(url=f"file:{root}"))
    result = sink.send([rec, {"message": "next", "_id": "n"}])
    (segment,) = Path(root).rglob("*.ndjson.gz")
    first, second = gzip.decompress(segment.read_bytes()).splitlines()
    assert result.delivered == 2 and json.loads(second) == {"message": "next", "_id": "n"}
    check(rec, json.loads(first), bool(result.encode_failures))


_ES = ElasticSink(SinkConfig(url="http://127.0.0.1:9", concurrency=1))  # never connects: only encodes


@PROFILE
@given(rec=records())
def test_elasticsearch_bulk_body(rec: dict[str, Any]) -> None:
    count = [0]
    (line,) = _ES._encode([rec], count)
    action, source, rest = line.split(b"\n")
    assert rest == b""
    assert json.loads(action)["create"]["_id"] == rec["_id"]
    got = json.loads(source)
    assert "_id" not in got
    got["_id"] = rec["_id"]  # the id travels in the action line
    check(rec, got, bool(count[0]))


@PROFILE
@given(rec=records())
def test_forward_entries(rec: dict[str, Any]) -> None:
    packer = EntryPacker()
    (entries,) = packer.entries_by_tag([rec], TagRenderer("logpipe.{service}")).values()
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(entries)
    ((_, got),) = list(unpacker)
    check(rec, msgpack_view(got), bool(packer.reduced), view=msgpack_view)


@PROFILE
@given(rec=records())
def test_the_safe_form_is_taken_by_every_encoder(rec: dict[str, Any]) -> None:
    import orjson
    import ormsgpack

    safe = reduce(rec)
    orjson.dumps(safe)
    ormsgpack.packb(safe)
    msgpack.packb(safe)
    assert safe["tags"][-1] == TAG_ENCODE_FAILURE and safe["_id"] == rec["_id"]


@PROFILE
@given(rec=records())
def test_metric_record_ids_never_raise_and_are_deterministic(rec: dict[str, Any]) -> None:
    """Metric/alert records get their `_id` from their content on the delivery thread: content
    orjson refuses (before: a float level as a dict key) must not end delivery."""
    from logpipe.pipeline import derived_ids

    rec = {k: v for k, v in rec.items() if k != "_id"} | {"event.kind": "metric", "levels": {2.5: 1, "info": 3}}
    first = derived_ids([dict(rec)])[0]["_id"]
    assert first == derived_ids([dict(rec)])[0]["_id"] and len(first) == 28


_ES_ECS = ElasticSink(SinkConfig(url="http://127.0.0.1:9", concurrency=1, schema="ecs"))


@PROFILE
@given(rec=records())
def test_ecs_renderings_never_raise(rec: dict[str, Any]) -> None:
    count = [0]
    (line,) = _ES_ECS._encode([rec], count)
    action, source, _ = line.split(b"\n")
    assert json.loads(action)["create"]["_id"] == rec["_id"]
    doc = json.loads(source)
    assert "_id" not in doc and doc["ecs"] == {"version": "8.11.0"}
    assert (TAG_ENCODE_FAILURE in doc.get("tags", [])) == bool(count[0])
    data, reduced = encode_ndjson([rec], schema="ecs")  # stdout/archive with schema = "ecs"
    assert (TAG_ENCODE_FAILURE in json.loads(data).get("tags", [])) == bool(reduced)
