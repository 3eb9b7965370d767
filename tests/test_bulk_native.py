"""The native bulk encoder (`logpipe._core.BulkEncoder`, core/src/bulk.rs) against the Python one.

The reference is `ElasticSink._encode`, the road the sink takes with `LOGPIPE_CORE=off`: for the
same records, the native encoder fed their NDJSON (what the archive, stdout and the core road
carry) must give the same bulk body byte for byte — the same `_index` (day, service, kind rules),
the same `_id` in the action, the same document without its top-level `_id`, and the same safe
form for poison records. Where it cannot vouch for a record (an `_id` that is a float, list or
object) it says so and the sink takes the reference road for that batch.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe import _core  # noqa: E402, F401 - required: pip install -e . builds it; missing is a failure, not a skip
from logpipe.config import SinkConfig
from logpipe.safeform import INT_MAX, INT_MIN
from logpipe.ship.elastic import ElasticSink
from logpipe.ship.stdout import encode_ndjson

any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates too
huge_ints = st.one_of(st.integers(INT_MAX + 1, 2**100), st.integers(-(2**100), INT_MIN - 1))
scalars = st.one_of(st.none(), st.booleans(), st.floats(), st.integers(INT_MIN, INT_MAX), huge_ints,
                    any_text, st.text(max_size=20), st.sampled_from(["\"", "\\", "\x00\x1f\u2028", "é😀", "/"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)), max_leaves=12)
timestamps = st.one_of(
    st.sampled_from(["2026-11-24T07:15:27.029167Z", "2026-11-24T07:15:27Z", "2026-11-24T07:15:27+00:00",
                     "2026-11-24T23:15:27-05:00", "2026-11-24T07:15:27", "2026-11-24", "yesterday",
                     "2026-13-45T00:00:00Z", "２０２６-11-24T07:15:27Z", "2026\\-11-24Z", ""]),
    st.integers(0, 2**40), st.floats(0, 2e12), st.none(), st.text(max_size=30))
services = st.one_of(st.sampled_from(["api", "Billing API", "a/b c", "..x..", "", "api"]), values)
kinds = st.sampled_from(["metric", "alert", "browser", "other", None, 3])
ids = st.one_of(st.text(max_size=30), any_text, st.integers(INT_MIN, INT_MAX), st.booleans(), st.none(),
                st.sampled_from(['we"ird,"_id":"x"}', "5d87a790b2771c6b000000000000", "\\", "é"]))


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    fields = draw(st.dictionaries(any_text, values, max_size=5))
    for key, strategy in (("@timestamp", timestamps), ("service", services), ("event.kind", kinds),
                          ("message", any_text), ("tags", st.lists(st.text(max_size=6), max_size=3))):
        if draw(st.integers(0, 3)):
            fields[key] = draw(strategy)
    fields.pop("_id", None)
    items = list(fields.items())
    if draw(st.integers(0, 5)):  # usually an id, anywhere in the record
        doc_id = draw(ids)
        if draw(st.booleans()):  # a nested lookalike must stay
            items.append(("nested", {"_id": doc_id}))
        at = draw(st.integers(0, len(items)))
        items.insert(at, ("_id", doc_id))
    return dict(items)


def python_body(records: list[dict[str, Any]]) -> tuple[bytes, int]:
    """The reference road's bulk body and its count of records in the safe form."""
    sink = ElasticSink(SinkConfig(url="http://127.0.0.1:9", concurrency=1))  # never connects
    count = [0]
    body = b"".join(sink._encode(records, count))
    sink.close()
    return body, count[0]


def native_body(data: bytes) -> bytes | None:
    sink = ElasticSink(SinkConfig(url="http://127.0.0.1:9", concurrency=1))
    got = sink._native_body(sink._bulk_encoder(), data, None)
    sink.close()
    return None if got is None else got.data


PROFILE = settings(max_examples=400, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROFILE
@given(batch=st.lists(records(), min_size=1, max_size=6))
def test_native_bulk_body_is_the_python_one(batch: list[dict[str, Any]]) -> None:
    data, reduced = encode_ndjson(batch)
    want, want_reduced = python_body(batch)
    got = native_body(data)
    if any(isinstance(r.get("_id"), float | list | dict) for r in batch):
        assert got is None  # left to the reference road
        return
    assert got == want
    assert reduced == want_reduced


@PROFILE
@given(batch=st.lists(records(), min_size=1, max_size=6))
def test_index_cache_does_not_leak_between_records(batch: list[dict[str, Any]]) -> None:
    """One encoder for many batches (its name cache lives across calls) gives what a fresh one does."""
    sink = ElasticSink(SinkConfig(url="http://127.0.0.1:9", concurrency=1, index="logs-{service}-{kind}-%Y.%m.%d"))
    batch = [r for r in batch if not isinstance(r.get("_id"), float | list | dict)]
    for rec in batch + batch[::-1]:
        data, _ = encode_ndjson([rec])
        got = sink._native_body(sink._bulk_encoder(), data, None)
        assert got is not None and got.data == b"".join(sink._encode([rec]))
    sink.close()


def test_what_the_native_encoder_leaves_to_python_still_goes_out() -> None:
    """A float `_id` (str() of a float is Python's business) takes the reference road, same body."""
    sink = ElasticSink(SinkConfig(url="http://127.0.0.1:9", concurrency=1))
    recs = [{"@timestamp": "2026-11-24T07:15:27Z", "message": "m", "_id": 1.5}]
    data, _ = encode_ndjson(recs)
    assert sink._native_body(sink._bulk_encoder(), data, None) is None
    assert b"".join(sink._encode(recs)).startswith(b'{"create":{"_index":"logpipe-unknown-2026.11.24","_id":"1.5"}}\n')
    sink.close()


def test_documents_keep_the_core_ndjson_bytes() -> None:
    """The core's own NDJSON (escapes as the log line had them) goes into the document as it is;
    it decodes to the same document the Python road sends."""
    line = b'{"@timestamp":"2026-11-24T07:15:27.029167Z","level":"info","message":"a\\/b","_id":"k1"}\n'
    got = native_body(line)
    assert got is not None
    action, doc, _ = got.split(b"\n")
    assert orjson.loads(action) == {"create": {"_index": "logpipe-unknown-2026.11.24", "_id": "k1"}}
    assert doc == b'{"@timestamp":"2026-11-24T07:15:27.029167Z","level":"info","message":"a\\/b"}'
    want = python_body([orjson.loads(line)])[0].split(b"\n")
    assert [orjson.loads(x) for x in want[:2]] == [orjson.loads(action), orjson.loads(doc)]
