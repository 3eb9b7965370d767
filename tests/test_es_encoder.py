"""The Elasticsearch bulk body does not depend on where `_id` sits (issue 13, item 20).

The body is the same for any key order and any input `tags` (the enricher adds them after
the id): the action carries the id, the source is the record without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.config import SinkConfig
from logpipe.ship.elastic import ElasticSink


@pytest.fixture(scope="module")
def sink() -> Iterator[ElasticSink]:
    s = ElasticSink(SinkConfig(url="http://127.0.0.1:9", concurrency=1))  # never connects: only encodes
    yield s
    s.close()


def reference(record: dict[str, Any], index: str) -> bytes:
    """The bulk lines written out by hand: `create` with the id, then the record without it."""
    action = {"create": {"_index": index, "_id": record["_id"]}}
    source = {k: v for k, v in record.items() if k != "_id"}
    return orjson.dumps(action) + b"\n" + orjson.dumps(source) + b"\n"


keys = st.text(st.characters(codec="utf-8"), max_size=10).filter(lambda k: k != "_id")
leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False),
                 st.text(max_size=20))
value = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(keys, inner, max_size=3)), max_leaves=8)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    fields = draw(st.dictionaries(keys, value, max_size=6))
    fields |= {"@timestamp": "2026-11-24T07:15:27.029167Z", "service": "api"}
    if draw(st.booleans()):  # input tags, anywhere
        fields["tags"] = draw(st.lists(st.text(max_size=8), max_size=3))
    if draw(st.booleans()):  # an `_id` lookalike inside a value must not be cut
        fields["nested"] = {"_id": draw(st.sampled_from(["x", "abc", "5d87a790b2771c6b000000000000"]))}
    items = list(fields.items())
    at = draw(st.integers(0, len(items)))
    doc_id = draw(st.sampled_from(["5d87a790b2771c6b000000000000", "abc", 'we"ird,"_id":"x"}', "x"]))
    return dict(items[:at] + [("_id", doc_id)] + items[at:])


@settings(max_examples=300, deadline=None)
@given(recs=st.lists(records(), min_size=1, max_size=5))
def test_the_bulk_body_is_the_same_for_any_key_order_and_tags(sink: ElasticSink, recs: list[dict[str, Any]],
                                                              ) -> None:
    lines = sink._encode(recs)
    assert lines == [reference(r, sink.namer.index_for(r)) for r in recs]
    for line in lines:
        action, source, _ = line.split(b"\n")
        assert "_id" not in json.loads(source)
