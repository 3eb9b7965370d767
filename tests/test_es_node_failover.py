"""Several Elasticsearch nodes at the sink level, against loopback stand-ins (README, "Several
Elasticsearch nodes"): TLS and credentials reach every listed node, only the listed nodes are
asked (no sniffing), a node that times out is benched and its request goes to another at once,
and with every node down the sink keeps waiting until one comes back."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fluentd_receiver import make_test_pki

from logpipe.config import SinkConfig
from logpipe.ship.base import SendResult
from logpipe.ship.elastic import ElasticSink


class Node:
    """A stand-in node: accepts every bulk item (201) and records each request's path and auth."""

    def __init__(self, port: int = 0, tls: Any = None) -> None:
        self.requests: list[tuple[str, str, str]] = []  # (method, path, authorization)
        self.docs = 0
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                node.requests.append((self.command, self.path, self.headers.get("authorization", "")))
                lines = raw.splitlines()
                node.docs += len(lines) // 2
                body = json.dumps({"errors": False, "items": [{"create": {"status": 201}}] * (len(lines) // 2)})
                data = body.encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("x-elastic-product", "Elasticsearch")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _records(n: int) -> list[dict[str, Any]]:
    return [{"_id": f"d{i}", "@timestamp": "2026-11-24T10:00:00.000000Z", "service": "api", "message": f"m{i}"}
            for i in range(n)]


def _sink(tmp_path: Path, urls: list[str], **kw: Any) -> ElasticSink:
    sink = ElasticSink(SinkConfig(urls=urls, deadletter_path=str(tmp_path / "dl.ndjson"), concurrency=1,
                                  max_batch_docs=10, **kw))
    sink.backoff_base_s = 0.01
    sink.backoff_max_s = 0.05
    return sink


def test_tls_and_credentials_apply_to_every_node_and_no_other_node_is_asked(tmp_path: Path) -> None:
    pki = make_test_pki(str(tmp_path))
    nodes = [Node(tls=pki.server_context()) for _ in range(2)]
    sink = _sink(tmp_path, [f"https://127.0.0.1:{n.port}" for n in nodes], ca_file=pki.ca_file,
                 username="shipper", password="s3cret-pw")
    try:
        result = sink.send(_records(40))  # four bulk requests, round robin over the two nodes
    finally:
        sink.close()
        for n in nodes:
            n.close()
    assert result.delivered == 40 and result.rerouted == 0
    assert [n.docs for n in nodes] == [20, 20]  # both verified against ca_file, over TLS
    for n in nodes:
        assert {auth for _, _, auth in n.requests} == {"Basic c2hpcHBlcjpzM2NyZXQtcHc="}
        # only bulk requests: nobody asked a node for the cluster's other nodes (sniffing)
        assert {path.split("?")[0] for _, path, _ in n.requests} == {"/_bulk"}


def test_a_node_that_times_out_is_benched_and_its_request_goes_to_another_at_once(tmp_path: Path) -> None:
    hung = socket.socket()  # accepts connections (kernel backlog) and never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    live = Node()
    hung_url = f"http://127.0.0.1:{hung.getsockname()[1]}"
    sink = _sink(tmp_path, [hung_url, f"http://127.0.0.1:{live.port}"])
    first = sink.nodes.nodes[0]
    first.client = first.client.options(request_timeout=0.5)  # instead of the default 60 s
    try:
        result = sink.send(_records(50))  # five bulk requests
    finally:
        sink.close()
        live.close()
        hung.close()
    assert result.delivered == 50 and live.docs == 50
    assert result.rerouted == 1  # the hung node timed out once, then sat out
    assert sink.node_states()[hung_url] is False
    assert "timed out" in first.last_error.lower() or "timeout" in first.last_error.lower(), first.last_error


def test_with_every_node_down_the_sink_waits_until_one_comes_back(tmp_path: Path) -> None:
    ports = [_free_port(), _free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    sink = _sink(tmp_path, urls)
    result = SendResult()
    sender = threading.Thread(target=lambda: result.merge(sink.send(_records(30))), daemon=True)
    sender.start()
    deadline = time.monotonic() + 30
    while any(sink.node_states().values()) and time.monotonic() < deadline:
        threading.Event().wait(0.02)
    assert not any(sink.node_states().values()), "both nodes should be benched"
    assert sender.is_alive(), "with every node down the sink must wait, not fail"
    back = Node(ports[1])
    try:
        sender.join(timeout=60)
        assert not sender.is_alive()
    finally:
        sink.close()
        back.close()
    assert result.delivered == 30 and back.docs == 30


def test_once_summary_counts_requests_rerouted_from_a_dead_node(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(json.dumps({"level": "info", "message": f"line {i}", "service": "api"}) + "\n"
                           for i in range(20)), encoding="utf-8")
    live = Node()
    dead = f"http://127.0.0.1:{_free_port()}"
    try:
        proc = subprocess.run([sys.executable, "-m", "logpipe", "tail", str(log), "--once", "--no-metrics",
                               "--checkpoint", str(tmp_path / "cp.json"),
                               "--sink", f"{dead},http://127.0.0.1:{live.port}"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        live.close()
    assert proc.returncode == 0, proc.stderr
    assert live.docs == 20
    assert "; 1 requests retried on other nodes (1 of 2 down at the end)" in proc.stderr, proc.stderr
