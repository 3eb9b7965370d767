"""`logpipe query` against the real Elasticsearch node."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from elasticsearch import Elasticsearch
from logpipe.cli import cli
from logpipe.config import SinkConfig
from logpipe.es.search import follow
from logpipe.es.setup import load_assets, run_setup
from logpipe.ship.elastic import ElasticSink

pytestmark = pytest.mark.es


@pytest.fixture(scope="module")
def story(es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two services' records, one request spanning both (and two days), indexed and refreshed."""
    client = Elasticsearch(es_url)
    run_setup(client, load_assets())
    tag = f"q{uuid.uuid4().hex[:8]}"
    rid = f"req-{tag}"
    recs: list[dict[str, Any]] = []
    base = datetime(2026, 11, 23, 23, 59, 58, tzinfo=UTC)
    for i in range(8):  # same millisecond for pairs: log_offset breaks the tie
        ts = (base + timedelta(seconds=i // 2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        svc = f"{tag}-api" if i % 2 == 0 else f"{tag}-worker"
        recs.append({"_id": f"{tag}-{i}", "@timestamp": ts, "level": "error" if i == 5 else "info",
                     "service": svc, "message": f"step {i} of the story", "request_id": rid,
                     "log_offset": 1000 + i, "status": 502 if i == 5 else 200})
    for i in range(5):
        recs.append({"_id": f"{tag}-x{i}", "@timestamp": f"2026-11-24T00:00:{10 + i}.000000Z", "level": "info",
                     "service": f"{tag}-api", "message": "unrelated", "request_id": f"other-{i}",
                     "log_offset": i, "status": 200})
    sink = ElasticSink(SinkConfig(url=es_url, deadletter_path=str(tmp_path_factory.mktemp("dl") / "d.ndjson")))
    assert sink.send(recs).delivered == len(recs)
    sink.close()
    pattern = f"logpipe-{tag}-*"
    client.indices.refresh(index=pattern)
    yield {"tag": tag, "rid": rid, "index": pattern, "url": es_url}
    client.indices.delete(index=pattern)
    client.close()


def _json(output: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_request_id_returns_the_story_in_order_across_indices(story: dict[str, Any]) -> None:
    res = CliRunner().invoke(cli, ["query", "--es", story["url"], "--request-id", story["rid"], "--json"])
    assert res.exit_code == 0, res.output
    hits = _json(res.output)
    assert [h["log_offset"] for h in hits] == list(range(1000, 1008))
    assert {h["service"] for h in hits} == {f"{story['tag']}-api", f"{story['tag']}-worker"}


def test_query_string_newest_first_with_limit_and_fields(story: dict[str, Any]) -> None:
    res = CliRunner().invoke(cli, ["query", f"service:{story['tag']}-api AND NOT request_id:{story['rid']}",
                                   "--es", story["url"], "--index", story["index"], "--limit", "3",
                                   "--json", "--fields", "request_id,log_offset"])
    assert res.exit_code == 0, res.output
    assert _json(res.output) == [{"request_id": f"other-{i}", "log_offset": i} for i in (4, 3, 2)]


def test_ranges_and_time_window(story: dict[str, Any]) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["query", "status:>=500", "--es", story["url"], "--index", story["index"], "--json"])
    assert [h["log_offset"] for h in _json(res.output)] == [1005]
    res = runner.invoke(cli, ["query", "", "--es", story["url"], "--index", story["index"], "--json",
                              "--from", "2026-11-24T00:00:11Z", "--until", "2026-11-24T00:00:12.5Z"])
    assert [h["request_id"] for h in _json(res.output)] == ["other-2", "other-1"]


def test_table_output(story: dict[str, Any]) -> None:
    res = CliRunner().invoke(cli, ["query", "level:error", "--es", story["url"], "--index", story["index"]])
    assert res.exit_code == 0
    assert "step 5 of the story" in res.output and "502" in res.output and "1 hit(s)" in res.output


def test_errors_are_one_clear_line(story: dict[str, Any]) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["query", "status:[500 TO", "--es", story["url"], "--index", story["index"]])
    assert res.exit_code == 1
    assert len(res.output.strip().splitlines()) == 1 and "Failed to parse query" in res.output
    res = runner.invoke(cli, ["query", "x", "--es", story["url"], "--index", "logpipe-does-not-exist"])
    assert res.exit_code == 1
    assert res.output.strip().endswith("no such index [logpipe-does-not-exist]")


def test_follow_shows_new_matches_once(es_url: str, tmp_path: Path) -> None:
    client = Elasticsearch(es_url)
    tag = f"f{uuid.uuid4().hex[:8]}"
    sink = ElasticSink(SinkConfig(url=es_url, deadletter_path=str(tmp_path / "d.ndjson")))
    now = datetime.now(UTC)
    stop = threading.Event()

    def rec(i: int) -> dict[str, Any]:
        return {"_id": f"{tag}-{i}", "@timestamp": (now + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "service": tag, "level": "error", "message": f"live {i}"}

    seen: list[str] = []
    try:
        sink.send([rec(0), rec(1)])
        client.indices.refresh(index=f"logpipe-{tag}-*")
        gen = follow(client, f"service:{tag}", index=f"logpipe-{tag}-*", interval_s=0.2,
                     start=now - timedelta(seconds=1), stop=stop, max_polls=6)
        for hit in gen:
            seen.append(hit.source["message"])
            if len(seen) == 2:
                sink.send([rec(2)])
                client.indices.refresh(index=f"logpipe-{tag}-*")
    finally:
        sink.close()
        client.indices.delete(index=f"logpipe-{tag}-*")
        client.close()
    assert seen == ["live 0", "live 1", "live 2"]


def test_follow_cli_prints_recent_matches_and_stops(es_url: str, tmp_path: Path) -> None:
    client = Elasticsearch(es_url)
    tag = f"g{uuid.uuid4().hex[:8]}"
    sink = ElasticSink(SinkConfig(url=es_url, deadletter_path=str(tmp_path / "d.ndjson")))
    ts = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        sink.send([{"_id": f"{tag}-1", "@timestamp": ts, "service": tag, "status": 503, "message": "upstream down"}])
        client.indices.refresh(index=f"logpipe-{tag}-*")
        res = CliRunner().invoke(cli, ["query", f"service:{tag} AND status:>=500", "--es", es_url, "--follow",
                                       "--interval", "0.1", "--max-polls", "2"])
    finally:
        sink.close()
        client.indices.delete(index=f"logpipe-{tag}-*")
        client.close()
    assert res.exit_code == 0, res.output
    assert res.output.count("upstream down") == 1 and "503" in res.output
