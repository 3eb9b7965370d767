"""`logpipe tail --once` into a real Elasticsearch gives the same documents under the same `_id`s
whether the native core (its NDJSON and its bulk encoder) or the Python road does the work.

Before the sink encoders, the pipeline turned the core off for an Elasticsearch sink (it took
dicts only): `test_the_pipeline_takes_the_core_road_to_elasticsearch` fails on that code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from elasticsearch import Elasticsearch
from logpipe.config import Config, InputConfig, SinkConfig
from logpipe.enrich import Enricher
from logpipe.pipeline import Pipeline
from logpipe.ship.elastic import ElasticSink
from logpipe.stages import PipelineStats
from logpipe.tail.source import TailFront

pytestmark = pytest.mark.es
from logpipe import _core  # noqa: E402, F401 - required: pip install -e . builds it; missing is a failure, not a skip

REPO = Path(__file__).resolve().parents[1]


def _lines(tag: str) -> list[bytes]:
    ts = "2026-11-24T07:15:27.%06dZ"
    plain = [{"@timestamp": ts % i, "level": "info", "message": f"GET /x/{i} 200", "service": tag,
              "status": 200, "duration_ms": i / 7, "bytes": 1000 * i, "ctx": {"a": [1, 2], "b": None, "é": "😀"}}
             for i in range(40)]
    lines = [orjson.dumps(r) for r in plain]
    lines += [
        # escapes as a writer may leave them (the core keeps its bytes; documents decode the same)
        b'{"@timestamp":"2026-11-24T07:15:28.000001Z","level":"warning","message":"a\\/b \\"q\\" \\\\ \\n",'
        b'"service":"' + tag.encode() + b'","n":-0,"f":1.50}',
        # \\u escapes and a foreign `_id` (kept as _source_id): the Python road inside the core road
        b'{"@timestamp":"2026-11-24T07:15:29.000001Z","level":"info","message":"caf\\u00e9","service":"'
        + tag.encode() + b'","_id":"theirs"}',
        b'{"time":"2026-11-24 07:15:30","msg":"foreign shape","service":"' + tag.encode() + b'"}',
        b"not json at all, user@example.com",
        b'{"@timestamp":"2026-11-25T00:00:00.5Z","level":"error","message":"mail bob@example.com","service":"'
        + tag.encode() + b'"}',
        b'{"@timestamp":"2026-11-24T07:15:31.000001Z","level":"info","message":"no service"}',
    ]
    return lines


@pytest.fixture
def es(es_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def tag(es: Elasticsearch) -> Iterator[str]:
    name = f"core{uuid.uuid4().hex[:10]}"
    yield name
    es.options(ignore_status=404).indices.delete(index=f"{name}-*", allow_no_indices=True, expand_wildcards="all")


def _tail(es_url: str, log: Path, index: str, workdir: Path, core: str) -> subprocess.CompletedProcess[str]:
    conf = workdir / f"{core}.toml"
    conf.write_text(f'[sink]\nurl = "{es_url}"\nindex = "{index}-{{service}}-%Y.%m.%d"\n'
                    f'deadletter_index = "{index}-dl"\ndeadletter_path = "{workdir / "dl.ndjson"}"\n')
    env = {**os.environ, "LOGPIPE_CORE": core, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "logpipe", "tail", "--once", "--no-metrics", "--format", "json",
                           "--config", str(conf), "--checkpoint", str(workdir / f"{core}.ckpt"), str(log)],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=120)


def _documents(es: Elasticsearch, index: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """_id -> (index name without the run's prefix, source); the dead-letter index must be empty."""
    assert es.count(index=f"{index}-dl", ignore_unavailable=True)["count"] == 0
    es.indices.refresh(index=f"{index}-*")
    hits = es.search(index=f"{index}-*,-{index}-dl", size=1000, query={"match_all": {}})["hits"]["hits"]
    docs = {}
    for h in hits:
        src = h["_source"]
        if "_parse_failure" in src.get("tags", ()):  # stamped with the time it was read
            src.pop("@timestamp")
        docs[h["_id"]] = (h["_index"][len(index):], src)
    return docs


def test_same_documents_and_ids_with_the_core_on_and_off(es: Elasticsearch, es_url: str, tag: str,
                                                         tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    lines = _lines(tag)
    log.write_bytes(b"\n".join(lines) + b"\n")
    runs = {}
    for core in ("off", "on"):
        proc = _tail(es_url, log, f"{tag}-{core}", tmp_path, core)
        assert proc.returncode == 0, proc.stderr
        runs[core] = _documents(es, f"{tag}-{core}")
    assert len(runs["on"]) == len(lines)
    assert runs["on"] == runs["off"]
    sources = [src for _, src in runs["on"].values()]
    assert any(s.get("_source_id") == "theirs" for s in sources)
    assert not any("bob@example.com" in orjson.dumps(s).decode() for s in sources)  # scrubbed on both roads
    assert {f"-{tag}-2026.11.24", f"-{tag}-2026.11.25", "-unknown-2026.11.24"} <= {ix for ix, _ in runs["on"].values()}


def test_the_pipeline_takes_the_core_road_to_elasticsearch(tmp_path: Path) -> None:
    cfg = Config()
    cfg.inputs = [InputConfig(paths=[str(tmp_path / "a.log")], format="json")]
    cfg.pipeline.checkpoint_path = str(tmp_path / "ckpt.json")
    cfg.sink = SinkConfig(url="http://127.0.0.1:9")
    sink = ElasticSink(cfg.sink)
    try:
        stats = PipelineStats()
        pipeline = Pipeline(cfg, TailFront(cfg, stats, once=True), sink, stats=stats, enricher=Enricher("h"))
        assert sink.accepts_ndjson()
        assert pipeline._core is not None
        ecs = ElasticSink(SinkConfig(url="http://127.0.0.1:9", schema="ecs"))
        assert not ecs.accepts_ndjson()  # ECS renaming stays in Python
        ecs.close()
    finally:
        sink.close()
