"""An Elasticsearch outage must not make memory grow: failed bulk attempts leave no garbage
cycles that hold a bulk body.

Anything that only the cycle collector can free stays around until it runs; during an
outage every retry used to leave the request body of that attempt in such a cycle
(exception -> traceback -> frame -> body). The test forces retries against a loopback server that answers
503 or drops the connection, then asks the collector what it would have to free."""

from __future__ import annotations

import gc
import threading
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fake_es import EsHandler

from logpipe.config import SinkConfig
from logpipe.ship.elastic import ElasticSink

FAILURES = 6


class FlakyES:
    """Fails the first `failures` bulk requests (503 or a dropped connection), then accepts."""

    def __init__(self, mode: str, failures: int) -> None:
        self.bulk_requests = 0
        fake = self

        class Handler(EsHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                fake.bulk_requests += 1
                if fake.bulk_requests <= failures:
                    if mode == "close":
                        self.close_connection = True
                        return
                    self._reply(503, {"error": {"type": "unavailable_shards_exception", "reason": "outage"},
                                      "status": 503})
                    return
                n = len(raw.splitlines()) // 2
                self._reply(200, {"errors": False, "items": [{"create": {"status": 201}}] * n})

            do_POST = do_PUT

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["503", "close"])
def flaky(request: pytest.FixtureRequest) -> Iterator[FlakyES]:
    fake = FlakyES(request.param, FAILURES)
    yield fake
    fake.close()


def _holds(obj: Any, marker: bytes) -> bool:
    for ref in gc.get_referents(obj):
        if isinstance(ref, bytes | bytearray) and marker in ref:
            return True
        if isinstance(ref, memoryview) and marker in ref.tobytes():
            return True
    return False


def test_retries_leave_no_cycle_holding_a_bulk_body(flaky: FlakyES, tmp_path: Path) -> None:
    marker = f"body-{uuid.uuid4().hex}".encode()
    cfg = SinkConfig(url=flaky.url, concurrency=1, deadletter_path=str(tmp_path / "dl.ndjson"))
    sink = ElasticSink(cfg)
    sink.backoff_base_s = sink.backoff_max_s = 0.001
    records = [{"@timestamp": "2026-11-24T07:15:27.000000Z", "service": "mem", "message": f"{marker.decode()} {i}",
                "_id": f"id-{i}"} for i in range(50)]
    gc.collect()
    gc.disable()
    try:
        result = sink.send(records)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        garbage = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        sink.close()
    assert result.delivered == 50
    assert flaky.bulk_requests == FAILURES + 1
    holders = [type(o).__name__ for o in garbage if _holds(o, marker)]
    assert holders == [], f"{len(holders)} objects in garbage cycles hold a bulk body: {sorted(set(holders))}"
