"""WSGILoggingMiddleware under a real Flask app."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from emit_support import flushed, read_json_lines
from flask import Flask, Response, stream_with_context

from logpipe import fields as F
from logpipe.emit.context import get_context
from logpipe.emit.setup import setup_logging, shutdown_logging
from logpipe.middleware import WSGILoggingMiddleware

HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Path]:
    setup_logging(service="flask", log_dir=tmp_path, console="off", level="DEBUG")
    try:
        yield tmp_path
    finally:
        shutdown_logging()


def _app(testing: bool = False, **kw: object) -> Flask:
    app = Flask("demo")
    app.testing = testing
    log = logging.getLogger("handler")

    @app.get("/orders/<int:order_id>")
    def order(order_id: int) -> dict[str, int]:
        log.info("loading order", extra={"order_id": order_id})
        return {"order_id": order_id}

    @app.get("/stream")
    def stream() -> Response:
        def gen() -> Iterator[bytes]:
            for i in range(3):
                time.sleep(0.05)
                log.info("chunk", extra={"i": i})
                yield b"y" * 50

        return Response(stream_with_context(gen()), mimetype="text/plain")

    @app.get("/boom")
    def boom() -> str:
        raise ValueError("flask handler failed")

    app.wsgi_app = WSGILoggingMiddleware(app.wsgi_app, **kw)  # type: ignore[method-assign]
    return app


def test_access_record_route_and_headers(logs: Path) -> None:
    client = _app().test_client()
    resp = client.get("/orders/991?x=1", headers={"User-Agent": "flask-test"})
    assert resp.status_code == 200 and resp.json == {"order_id": 991}
    rid = resp.headers["X-Request-ID"]
    assert HEX32.match(rid) and resp.headers["X-Response-Time"].endswith("ms")
    flushed()
    (acc,) = read_json_lines(logs / "access.log")
    assert acc[F.ROUTE] == "/orders/<int:order_id>" and acc[F.PATH] == "/orders/991"
    assert acc[F.STATUS] == 200 and acc[F.BYTES] == len(resp.data) and acc[F.METHOD] == "GET"
    assert acc[F.USER_AGENT] == "flask-test" and acc[F.REQUEST_ID] == rid and acc["query"] == "x=1"
    (handler,) = read_json_lines(logs / "app.log")
    assert handler[F.REQUEST_ID] == rid and handler["order_id"] == 991


def test_supplied_request_id_and_no_context_leak(logs: Path) -> None:
    client = _app().test_client()
    resp = client.get("/orders/1", headers={"X-Request-ID": "upstream-77"})
    assert resp.json == {"order_id": 1}
    assert resp.headers["X-Request-ID"] == "upstream-77"
    bad = client.get("/orders/2", headers={"X-Request-ID": "<script>"})
    assert bad.json == {"order_id": 2}
    assert HEX32.match(bad.headers["X-Request-ID"])
    assert "request_id" not in get_context()  # nothing leaks into the calling thread
    flushed()
    assert [r[F.REQUEST_ID] for r in read_json_lines(logs / "app.log")] == ["upstream-77",
                                                                         bad.headers["X-Request-ID"]]


def test_streaming_response(logs: Path) -> None:
    client = _app(slow_ms=100).test_client()
    resp = client.get("/stream")
    assert resp.data == b"y" * 150
    flushed()
    (acc,) = read_json_lines(logs / "access.log")
    assert acc[F.BYTES] == 150 and acc[F.DURATION_MS] >= 140 and acc[F.LEVEL] == "warning"
    chunks = read_json_lines(logs / "app.log")
    assert [r["i"] for r in chunks] == [0, 1, 2]
    assert {r[F.REQUEST_ID] for r in chunks} == {resp.headers["X-Request-ID"]}


def test_exception_propagating_through_middleware(logs: Path) -> None:
    client = _app(testing=True).test_client()
    with pytest.raises(ValueError, match="flask handler failed"):
        client.get("/boom", headers={"X-Request-ID": "boom-1"})
    flushed()
    (acc,) = read_json_lines(logs / "access.log")
    assert acc[F.STATUS] == 500 and acc[F.LEVEL] == "error" and acc[F.REQUEST_ID] == "boom-1"
    errors = read_json_lines(logs / "error.log")
    assert len(errors) == 1
    assert errors[0][F.EXCEPTION]["type"] == "ValueError" and errors[0][F.REQUEST_ID] == "boom-1"


def test_exception_handled_by_flask_is_logged_once(logs: Path) -> None:
    client = _app(testing=False).test_client()
    resp = client.get("/boom")
    assert resp.status_code == 500 and b"Internal Server Error" in resp.data
    flushed()
    (acc,) = read_json_lines(logs / "access.log")
    assert acc[F.STATUS] == 500
    errors = read_json_lines(logs / "error.log")
    assert len(errors) == 1 and "flask handler failed" in errors[0][F.EXCEPTION]["stack"]
    assert errors[0][F.REQUEST_ID] == resp.headers["X-Request-ID"]
