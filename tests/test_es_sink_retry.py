"""The sink's retry policy against a scripted stand-in for Elasticsearch (429s, outages, 401).

A real server cannot be made to reject specific items on demand; this one answers `_bulk`
the way Elasticsearch does (per-item statuses, product header) under our control.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fake_es import EsHandler

from logpipe.config import SinkConfig
from logpipe.ship.base import SinkFatalError, SinkStopped
from logpipe.ship.elastic import ElasticSink
from logpipe.ship.stdout import encode_ndjson


class FakeES:
    """Records every bulk request; `decide(id, seen_count)` returns (status, error_type)."""

    def __init__(self, port: int = 0, auth_fail: bool = False) -> None:
        self.requests: list[list[str]] = []
        self.seen: dict[str, int] = {}
        self.stored: dict[str, dict[str, Any]] = {}
        self.decide = lambda doc_id, n: (201, "")
        self.auth_fail = auth_fail
        self.max_request_docs = 0  # > 0: answer 413 to bigger bulk requests, like http.max_content_length
        fake = self

        class Handler(EsHandler):
            def do_GET(self) -> None:
                if fake.auth_fail:
                    self._reply(401, {"error": {"type": "security_exception", "reason": "unable to authenticate"}})
                    return
                self._reply(200, {"status": "green"})

            def do_PUT(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                if fake.auth_fail:
                    self._reply(401, {"error": {"type": "security_exception", "reason": "unable to authenticate"}})
                    return
                lines = raw.splitlines()
                if fake.max_request_docs and len(lines) // 2 > fake.max_request_docs:
                    fake.requests.append(["413"])
                    self._reply(413, {"error": {"type": "content_too_long", "reason": "request too large"}})
                    return
                ids = []
                items = []
                errors = False
                for action, source in zip(lines[::2], lines[1::2], strict=True):
                    doc_id = json.loads(action)["create"]["_id"]
                    ids.append(doc_id)
                    n = fake.seen.get(doc_id, 0)
                    fake.seen[doc_id] = n + 1
                    status, etype = fake.decide(doc_id, n)
                    if status == 201 and doc_id in fake.stored:
                        status, etype = 409, "version_conflict_engine_exception"
                    item: dict[str, Any] = {"status": status}
                    if status == 201:
                        fake.stored[doc_id] = json.loads(source)
                    else:
                        errors = True
                        item["error"] = {"type": etype, "reason": f"{etype} for {doc_id}"}
                    items.append({"create": item})
                fake.requests.append(ids)
                self._reply(200, {"errors": errors, "items": items})

            do_POST = do_PUT

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True, params=["native", "ndjson", "python"])
def road(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every policy holds on each road: `send(records)` through the native bulk encoder, the
    core road's `send_ndjson(bytes)` (records decoded only for retries and dead letters), and
    the Python encoder (`LOGPIPE_CORE=off`)."""
    if request.param == "python":
        monkeypatch.setattr(ElasticSink, "_bulk_encoder", lambda self: None)
    elif request.param == "ndjson":
        def send(self: ElasticSink, records: list[dict[str, Any]]) -> Any:
            data, _ = encode_ndjson(records)
            return self.send_ndjson(data, len(records))
        monkeypatch.setattr(ElasticSink, "send", send)
    return str(request.param)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _records(n: int, prefix: str = "d") -> list[dict[str, Any]]:
    return [{"_id": f"{prefix}{i}", "@timestamp": "2026-11-24T10:00:00.000000Z", "service": "api",
             "message": f"m{i}"} for i in range(n)]


def _sink(port: int, tmp_path: Path, **kw: Any) -> ElasticSink:
    cfg = SinkConfig(url=kw.pop("url", f"http://127.0.0.1:{port}"), deadletter_path=str(tmp_path / "dl.ndjson"),
                     concurrency=kw.pop("concurrency", 1), **kw)
    sink = ElasticSink(cfg)
    sink.backoff_base_s = 0.01
    sink.backoff_max_s = 0.05
    return sink


def test_only_rejected_items_are_retried_until_accepted(tmp_path: Path) -> None:
    fake = FakeES()
    rejected = {"d3", "d7"}
    fake.decide = lambda doc_id, n: (429, "es_rejected_execution_exception") if doc_id in rejected and n < 2 else (201, "")
    sink = _sink(fake.port, tmp_path)
    try:
        result = sink.send(_records(10))
    finally:
        sink.close()
        fake.close()
    assert result.delivered == 10 and result.dead_lettered == 0
    assert fake.requests[0] == [f"d{i}" for i in range(10)]
    assert fake.requests[1:] == [["d3", "d7"], ["d3", "d7"]]  # nothing else resent
    assert result.retries == 4


def test_409_counts_as_duplicate_and_is_not_retried(tmp_path: Path) -> None:
    fake = FakeES()
    sink = _sink(fake.port, tmp_path)
    try:
        first = sink.send(_records(5))
        second = sink.send(_records(5))
    finally:
        sink.close()
        fake.close()
    assert (first.delivered, first.duplicates) == (5, 0)
    assert (second.delivered, second.duplicates, second.retries) == (0, 5, 0)
    assert len(fake.requests) == 2


def test_unreachable_cluster_is_retried_until_it_comes_up(tmp_path: Path) -> None:
    port = _free_port()
    sink = _sink(port, tmp_path)
    holder: dict[str, FakeES] = {}
    timer = threading.Timer(0.8, lambda: holder.setdefault("es", FakeES(port)))
    timer.start()
    started = time.monotonic()
    try:
        result = sink.send(_records(20))
    finally:
        timer.join()
        sink.close()
        holder["es"].close()
    assert time.monotonic() - started >= 0.7
    assert result.delivered == 20 and result.retries >= 1
    assert sorted(holder["es"].stored) == sorted(f"d{i}" for i in range(20))


def test_stop_event_ends_the_retry_loop_and_acks_nothing(tmp_path: Path) -> None:
    sink = _sink(_free_port(), tmp_path)
    threading.Timer(0.3, sink.stop_event.set).start()
    started = time.monotonic()
    with pytest.raises(SinkStopped):
        sink.send(_records(3))
    assert time.monotonic() - started < 5
    sink.close()


def test_rejected_credentials_are_fatal_and_masked(tmp_path: Path) -> None:
    fake = FakeES(auth_fail=True)
    sink = _sink(fake.port, tmp_path, url=f"http://elastic:Hunter2secret@127.0.0.1:{fake.port}")
    try:
        problem = sink.check_connection(2)
        with pytest.raises(SinkFatalError) as info:
            sink.send(_records(2))
    finally:
        sink.close()
        fake.close()
    assert problem is not None and "credentials" in problem
    for text in (problem, str(info.value), sink.describe()):
        assert "Hunter2secret" not in text
        assert "elastic:***@127.0.0.1" in text


def test_unreachable_check_connection_names_masked_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGPIPE_ES_API_KEY", "id1:apikeysecret")
    port = _free_port()
    sink = _sink(port, tmp_path, url=f"http://bob:pw-s3cret@127.0.0.1:{port}")
    started = time.monotonic()
    problem = sink.check_connection(1.0)
    sink.close()
    assert time.monotonic() - started < 5
    assert problem == f"cannot reach Elasticsearch at http://bob:***@127.0.0.1:{port}: connection refused"


def test_concurrent_parts_all_acknowledged_and_split_by_bytes(tmp_path: Path) -> None:
    fake = FakeES()
    sink = _sink(fake.port, tmp_path, concurrency=3, max_batch_bytes=20_000, max_batch_docs=400)
    try:
        result = sink.send(_records(3000))
    finally:
        sink.close()
        fake.close()
    assert result.delivered == 3000 and len(fake.stored) == 3000
    assert len(fake.requests) > 3
    assert max(len(r) for r in fake.requests) <= 400
    assert all("_id" not in doc for doc in fake.stored.values())  # metadata, not source


def test_item_level_permission_error_is_fatal_not_dead_lettered(tmp_path: Path) -> None:
    fake = FakeES()
    fake.decide = lambda doc_id, n: (403, "security_exception")
    sink = _sink(fake.port, tmp_path)
    try:
        with pytest.raises(SinkFatalError, match="refused to index"):
            sink.send(_records(2))
    finally:
        sink.close()
        fake.close()
    assert not (tmp_path / "dl.ndjson").exists()


def test_other_item_errors_are_dead_lettered_and_acknowledged(tmp_path: Path) -> None:
    fake = FakeES()
    # the original is rejected as unparseable; the dead-letter index takes it
    fake.decide = lambda doc_id, n: (400, "document_parsing_exception") if n == 0 and doc_id == "d1" else (201, "")
    sink = _sink(fake.port, tmp_path)
    try:
        result = sink.send(_records(3))
    finally:
        sink.close()
        fake.close()
    assert (result.delivered, result.dead_lettered) == (2, 1)
    assert fake.requests == [["d0", "d1", "d2"], ["d1"]]
    assert "document_parsing_exception" in result.errors[0]
    letter = fake.stored["d1"]["deadletter"]  # the rejected record itself, whatever the road
    assert json.loads(letter["record"]) == _records(3)[1] and letter["index"] == "logpipe-api-2026.11.24"


def test_a_fatal_part_stops_the_other_parts_retrying(tmp_path: Path) -> None:
    fake = FakeES()
    # part 1 (d0..) hits a permission error, the other parts are throttled forever
    fake.decide = lambda doc_id, n: (403, "security_exception") if doc_id == "d0" else (429, "es_rejected_execution_exception")
    sink = _sink(fake.port, tmp_path, concurrency=2)
    started = time.monotonic()
    try:
        with pytest.raises(SinkFatalError):
            sink.send(_records(1000))
    finally:
        sink.close()
        fake.close()
    assert time.monotonic() - started < 5


def test_request_too_large_is_split_until_it_fits(tmp_path: Path) -> None:
    fake = FakeES()
    fake.max_request_docs = 30
    sink = _sink(fake.port, tmp_path)
    try:
        result = sink.send(_records(100))
    finally:
        sink.close()
        fake.close()
    assert result.delivered == 100 and result.dead_lettered == 0
    assert sorted(fake.stored) == sorted(f"d{i}" for i in range(100))
    assert fake.requests.count(["413"]) >= 2


def test_encoding_strips_only_the_top_level_id_and_names_the_right_index(tmp_path: Path) -> None:
    """The fast path cuts a trailing `_id` out of the serialised record; every other shape
    (id not last, not a string, no id, nested `_id`, other day or service) must come out
    exactly as a plain `create` action plus the record without `_id`."""
    sink = _sink(1, tmp_path)  # never connects: only encodes
    records: list[dict[str, Any]] = [
        {"@timestamp": "2026-11-24T10:00:00.000000Z", "service": "api", "message": "a", "_id": "x1"},
        {"@timestamp": "2026-11-24T11:00:00.000000Z", "service": "api", "message": "b", "_id": "x2"},
        {"_id": "x3", "@timestamp": "2026-11-24T12:00:00.000000Z", "service": "api", "message": "id first"},
        {"@timestamp": "2026-11-24T12:00:00.000000Z", "service": "api", "message": "int id", "_id": 7},
        {"@timestamp": "2026-11-24T12:00:00.000000Z", "service": "api", "message": "no id"},
        {"@timestamp": "2026-11-24T12:00:00.000000Z", "service": "api", "nested": {"_id": "x5"}, "_id": "x5"},
        {"@timestamp": "2026-11-24T12:00:00.000000Z", "service": "api", "message": 'q"}\n', "_id": 'we"ird'},
        {"@timestamp": "2026-11-25T00:00:00.000000Z", "service": "api", "message": "next day", "_id": "x6"},
        {"@timestamp": "2026-11-25T00:00:00.000000Z", "service": "web", "message": "other service", "_id": "x7"},
        {"@timestamp": "2026-11-25T00:00:00+02:00", "service": "web", "message": "offset", "_id": "x8"},
        {"@timestamp": "2026-11-25T00:00:00.000000Z", "service": "web", "event.kind": "metric", "_id": "x9"},
    ]
    originals = [dict(r) for r in records]
    lines = sink._encode(records)
    sink.close()
    assert records == originals  # the records are not modified
    assert len(lines) == len(records)
    for rec, line in zip(records, lines, strict=True):
        action_text, source_text, rest = line.split(b"\n")
        assert rest == b""
        action = json.loads(action_text)["create"]
        assert action["_index"] == sink.namer.index_for(rec)
        if "_id" in rec:
            assert action["_id"] == str(rec["_id"])
        else:
            assert "_id" not in action
        assert json.loads(source_text) == {k: v for k, v in rec.items() if k != "_id"}
    indices = [json.loads(line.split(b"\n")[0])["create"]["_index"] for line in lines]
    assert indices[-4:] == ["logpipe-api-2026.11.25", "logpipe-web-2026.11.25",
                            "logpipe-web-2026.11.24",  # +02:00: still the day before in UTC
                            "logpipe-metrics-2026.11.25"]
