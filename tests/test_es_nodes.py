"""Several Elasticsearch nodes: round robin over live ones, a failing node benched for 30 s,
its request resent to another node at once, per-node state on /metrics, URL lists in config.

The multi-node cluster itself runs in tests/test_es_cluster.py; here a dead port and a fake
node answering 503 stand next to the shared node, so these tests are quick.
"""

from __future__ import annotations

import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from elasticsearch import Elasticsearch
from logpipe.config import SinkConfig, load_config
from logpipe.es.nodes import Node, NodePool
from logpipe.metrics.prometheus import make_registry
from logpipe.metrics.tap import LogMetricsTap
from logpipe.ship.base import SinkConfigError
from logpipe.ship.elastic import ElasticSink
from logpipe.ship.factory import make_sink
from logpipe.stages import PipelineStats


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _records(service: str, n: int) -> list[dict[str, Any]]:
    return [{"@timestamp": "2026-11-24T10:00:00.000000Z", "service": service, "message": f"line {i}",
             "_id": f"{service}-{i}"} for i in range(n)]


def test_round_robin_skips_a_benched_node_until_its_30_seconds_are_up() -> None:
    clock = Clock()
    pool = NodePool([Node("a", "A"), Node("b", "B"), Node("c", "C")], clock=clock)
    assert [pool.pick().url for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    assert pool.mark_down(pool.nodes[1], "refused") is True  # others are live: move the work there
    assert pool.states == {"a": True, "b": False, "c": True}
    clock.t += 29.9
    assert {pool.pick().url for _ in range(6)} == {"a", "c"}
    clock.t += 0.2
    assert "b" in {pool.pick().url for _ in range(3)}  # retried after 30 s
    pool.mark_up(pool.nodes[1])
    assert pool.states["b"] is True


def test_with_every_node_down_pick_returns_the_one_benched_longest_ago() -> None:
    clock = Clock()
    pool = NodePool([Node("a", 1), Node("b", 2)], clock=clock)
    assert pool.mark_down(pool.nodes[0], "x") is True
    clock.t += 1
    assert pool.mark_down(pool.nodes[1], "x") is False  # nobody left: the caller backs off
    assert pool.live_count() == 0
    assert pool.pick().url == "a"


def test_urls_from_config_list_and_comma_separated_flag(tmp_path: Path) -> None:
    conf = tmp_path / "logpipe.toml"
    conf.write_text('[sink]\nurls = ["http://127.0.0.1:9401", "http://127.0.0.1:9402"]\n'
                    'username = "elastic"\npassword = "s3cret-pw"\n', encoding="utf-8")
    sink = make_sink(load_config(conf).sink)
    assert isinstance(sink, ElasticSink)
    assert list(sink.node_states()) == ["http://127.0.0.1:9401", "http://127.0.0.1:9402"]
    sink.close()
    flag = make_sink(SinkConfig(url="http://127.0.0.1:9401, http://127.0.0.1:9402,http://127.0.0.1:9403"))
    assert len(flag.node_states()) == 3
    flag.close()
    with pytest.raises(SinkConfigError, match="mix schemes"):
        make_sink(SinkConfig(url="http://127.0.0.1:9401,https://127.0.0.1:9402"))


@pytest.mark.es
def test_a_dead_node_is_benched_and_its_request_goes_to_a_live_one(es_url: str, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    service = f"nodes{uuid.uuid4().hex[:8]}"
    sink = ElasticSink(SinkConfig(url=f"{dead},{es_url}", deadletter_path=str(tmp_path / "dl.ndjson"),
                                  concurrency=1, max_batch_docs=100))
    client = Elasticsearch(es_url)
    try:
        result = sink.send(_records(service, 1000))  # ten bulk requests, round robin
        assert result.delivered == 1000
        assert result.rerouted == 1  # the dead node failed once, then sat out
        assert sink.node_states() == {dead: False, es_url: True}
        client.indices.refresh(index=f"logpipe-{service}-*")
        assert client.count(index=f"logpipe-{service}-*")["count"] == 1000
    finally:
        sink.close()
        client.options(ignore_status=404).indices.delete(index=f"logpipe-{service}-*", allow_no_indices=True)
        client.close()


class _Failing(BaseHTTPRequestHandler):
    """A node that answers every request with 503 (e.g. a proxy in front of a dead node)."""

    hits = 0
    auth: list[str] = []

    def _fail(self) -> None:
        type(self).hits += 1
        type(self).auth.append(self.headers.get("authorization", ""))
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = b'{"error":{"type":"unavailable","reason":"node is going away"},"status":503}'
        self.send_response(503)
        self.send_header("content-type", "application/json")
        self.send_header("x-elastic-product", "Elasticsearch")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _fail

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.es
def test_a_node_answering_5xx_is_benched_and_metrics_show_it_down(es_url: str, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bad = f"http://127.0.0.1:{server.server_address[1]}"
    service = f"nodes{uuid.uuid4().hex[:8]}"
    sink = ElasticSink(SinkConfig(urls=[bad, es_url], deadletter_path=str(tmp_path / "dl.ndjson"),
                                  concurrency=1, max_batch_docs=50, username="shipper", password="pw-123"))
    client = Elasticsearch(es_url)
    try:
        result = sink.send(_records(service, 500))
        assert result.delivered == 500 and result.dead_lettered == 0
        assert result.rerouted == 1 and _Failing.hits == 1
        assert _Failing.auth == ["Basic c2hpcHBlcjpwdy0xMjM="]  # the credentials apply to every node
        stats = PipelineStats(sink_nodes=sink.node_states(), sink_rerouted=result.rerouted)
        text = generate_latest(make_registry(LogMetricsTap(stats=stats))).decode()
        assert f'logpipe_sink_node_up{{node="{bad}"}} 0.0' in text
        assert f'logpipe_sink_node_up{{node="{es_url}"}} 1.0' in text
        assert "logpipe_sink_requests_rerouted_total 1.0" in text
    finally:
        sink.close()
        server.shutdown()
        client.options(ignore_status=404).indices.delete(index=f"logpipe-{service}-*", allow_no_indices=True)
        client.close()


@pytest.mark.es
def test_query_takes_the_node_list_and_skips_a_dead_node(es_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from logpipe.cli import cli

    service = f"nodes{uuid.uuid4().hex[:8]}"
    sink = ElasticSink(SinkConfig(url=es_url, deadletter_path=str(tmp_path / "dl.ndjson")))
    client = Elasticsearch(es_url)
    try:
        sink.send(_records(service, 3))
        client.indices.refresh(index=f"logpipe-{service}-*")
        dead = f"http://127.0.0.1:{_closed_port()}"
        res = CliRunner().invoke(cli, ["query", f"service:{service}", "--es", f"{dead},{es_url}", "--json",
                                       "--index", f"logpipe-{service}-*"])
        assert res.exit_code == 0, res.output
        assert len(res.output.splitlines()) == 3
    finally:
        sink.close()
        client.options(ignore_status=404).indices.delete(index=f"logpipe-{service}-*", allow_no_indices=True)
        client.close()
