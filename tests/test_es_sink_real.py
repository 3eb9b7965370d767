"""ElasticSink against the real Elasticsearch node: idempotency, dead letters, index routing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from elasticsearch import Elasticsearch
from logpipe.config import SinkConfig
from logpipe.es.setup import load_assets, run_setup
from logpipe.ship.elastic import ElasticSink
from logpipe.ship.factory import make_sink

pytestmark = pytest.mark.es


@pytest.fixture
def es(es_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_url, request_timeout=30)
    run_setup(client, load_assets())
    yield client
    client.close()


@pytest.fixture
def tag(es: Elasticsearch) -> Iterator[str]:
    """A unique service name; the test's indices are deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    es.options(ignore_status=404).indices.delete(index=f"logpipe-{name}-*,logpipe-deadletter-{name}-*",
                                                 allow_no_indices=True, expand_wildcards="all")


def _sink(es_url: str, tag: str, tmp_path: Path, **kw: Any) -> ElasticSink:
    cfg = SinkConfig(url=es_url, deadletter_index=f"logpipe-deadletter-{tag}-%Y.%m.%d",
                     deadletter_path=str(tmp_path / "deadletter.ndjson"), **kw)
    sink = make_sink(cfg)
    assert isinstance(sink, ElasticSink)
    return sink


def _records(tag: str, n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"_id": f"{tag}-{i}", "@timestamp": f"2026-11-24T10:{i % 60:02d}:00.000000Z", "level": "info",
             "service": tag, "message": f"GET /x {i}", "status": 200, "client_ip": "10.0.0.1",
             "duration_ms": 1.5, "log_offset": i * 80} for i in range(start, start + n)]


def _count(es: Elasticsearch, index: str) -> int:
    es.options(ignore_status=404).indices.refresh(index=index, allow_no_indices=True)
    return es.count(index=index, allow_no_indices=True, ignore_unavailable=True)["count"]


def test_same_batch_twice_makes_one_document_per_id(es: Elasticsearch, es_url: str, tag: str, tmp_path: Path) -> None:
    sink = _sink(es_url, tag, tmp_path)
    try:
        first = sink.send(_records(tag, 300))
        second = sink.send(_records(tag, 300))
    finally:
        sink.close()
    assert (first.delivered, first.duplicates) == (300, 0)
    assert (second.delivered, second.duplicates, second.dead_lettered) == (0, 300, 0)
    assert _count(es, f"logpipe-{tag}-*") == 300
    doc = es.get(index=f"logpipe-{tag}-2026.11.24", id=f"{tag}-7")["_source"]
    assert "_id" not in doc and doc["message"] == "GET /x 7"


def test_mapping_conflict_dead_letters_only_the_bad_document(es: Elasticsearch, es_url: str, tag: str,
                                                            tmp_path: Path) -> None:
    records = _records(tag, 20)
    records[5]["status"] = "not-a-number"
    sink = _sink(es_url, tag, tmp_path)
    try:
        result = sink.send(records)
    finally:
        sink.close()
    assert (result.delivered, result.dead_lettered) == (19, 1)
    assert _count(es, f"logpipe-{tag}-*") == 19
    assert _count(es, f"logpipe-deadletter-{tag}-*") == 1
    dead = es.search(index=f"logpipe-deadletter-{tag}-*")["hits"]["hits"][0]
    assert dead["_id"] == f"{tag}-5"
    assert "status" in dead["_source"]["deadletter"]["reason"]
    assert "not-a-number" in dead["_source"]["deadletter"]["record"]
    assert any("not-a-number" in e or "status" in e for e in result.errors)
    mapping = es.indices.get_mapping(index=f"logpipe-{tag}-*")
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["status"]["type"] == "short" and props["client_ip"]["type"] == "ip"


def test_dead_letter_falls_back_to_local_file(es: Elasticsearch, es_url: str, tag: str, tmp_path: Path) -> None:
    records = _records(tag, 3)
    records[1]["status"] = {"nested": "object"}
    sink = _sink(es_url, tag, tmp_path)
    sink.cfg.deadletter_index = "bad#index"  # the dead-letter index refuses too -> local file
    try:
        result = sink.send(records)
    finally:
        sink.close()
    assert (result.delivered, result.dead_lettered) == (2, 1)
    lines = (tmp_path / "deadletter.ndjson").read_bytes().splitlines()
    assert len(lines) == 1
    entry = orjson.loads(lines[0])
    assert entry["record"]["_id"] == f"{tag}-1" and "status" in entry["reason"]


def test_metric_and_alert_records_go_to_their_indices(es: Elasticsearch, es_url: str, tag: str,
                                                      tmp_path: Path) -> None:
    sink = _sink(es_url, tag, tmp_path)
    metric = {"_id": f"{tag}-m", "@timestamp": "2026-11-23T23:59:59.000000Z", "event.kind": "metric",
              "service": tag, "name": f"{tag}_requests", "value": 3}
    alert = {"_id": f"{tag}-a", "@timestamp": "2026-11-24T00:00:01.000000+00:00", "event.kind": "alert",
             "service": tag, "message": "error rate high"}
    try:
        result = sink.send([metric, alert, *_records(tag, 2)])
    finally:
        sink.close()
    assert result.delivered == 4
    es.indices.refresh(index="logpipe-metrics-*,logpipe-alerts-*")
    assert es.get(index="logpipe-metrics-2026.11.23", id=f"{tag}-m")["found"]
    assert es.get(index="logpipe-alerts-2026.11.24", id=f"{tag}-a")["found"]
    es.delete(index="logpipe-metrics-2026.11.23", id=f"{tag}-m", refresh=True)
    es.delete(index="logpipe-alerts-2026.11.24", id=f"{tag}-a", refresh=True)


def test_check_connection_ok_and_describe(es: Elasticsearch, es_url: str, tag: str, tmp_path: Path) -> None:
    sink = _sink(es_url, tag, tmp_path)
    try:
        assert sink.check_connection(5) is None
        assert sink.describe().startswith("elasticsearch http")
    finally:
        sink.close()
