"""ASGI LoggingMiddleware under real FastAPI and Starlette apps."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from emit_support import flushed, read_json_lines
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from logpipe import bind_context
from logpipe import fields as F
from logpipe.emit.setup import setup_logging, shutdown_logging
from logpipe.middleware import LoggingMiddleware, resolve_client_ip, sane_request_id

HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Path]:
    setup_logging(service="api", log_dir=tmp_path, console="off", level="DEBUG")
    try:
        yield tmp_path
    finally:
        shutdown_logging()


def _fastapi(slow_ms: float = 200.0, error_ms: float = 1000.0, proxies: tuple[str, ...] = ()) -> FastAPI:
    app = FastAPI()
    app.add_middleware(LoggingMiddleware, slow_ms=slow_ms, error_ms=error_ms, trusted_proxies=proxies)
    log = logging.getLogger("handler")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        bind_context(user_id=f"u-{item_id}")  # the handler learns who the user is
        log.info("fetching item", extra={"item_id": item_id})
        return {"item_id": item_id}

    @app.get("/sync/{name}")
    def sync(name: str) -> dict[str, str]:  # runs in a worker thread: context must follow
        log.info("sync handler")
        return {"name": name}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks():  # type: ignore[no-untyped-def]
            for i in range(3):
                await asyncio.sleep(0.06)
                log.info("chunk", extra={"i": i})
                yield b"x" * 100

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom in handler")

    return app


def test_access_record_and_headers(logs: Path) -> None:
    with TestClient(_fastapi()) as client:
        resp = client.get("/items/42?verbose=1", headers={"User-Agent": "pytest-agent/1.0"})
    assert resp.status_code == 200
    rid = resp.headers["x-request-id"]
    assert HEX32.match(rid)
    assert re.match(r"^\d+\.\d{2}ms$", resp.headers["x-response-time"])
    flushed()
    (acc,) = read_json_lines(logs / "access.log")
    assert acc[F.METHOD] == "GET" and acc[F.PATH] == "/items/42" and acc[F.ROUTE] == "/items/{item_id}"
    assert acc[F.STATUS] == 200 and acc[F.BYTES] == len(resp.content) and acc[F.DURATION_MS] > 0
    assert acc[F.USER_AGENT] == "pytest-agent/1.0" and acc[F.CLIENT_IP] == "testclient"
    assert acc[F.REQUEST_ID] == rid and acc["query"] == "verbose=1" and acc[F.LEVEL] == "info"
    assert acc[F.USER_ID] == "u-42"  # bound by the handler, carried onto the access record
    app_recs = read_json_lines(logs / "app.log")
    assert [(r[F.MESSAGE], r[F.REQUEST_ID], r["item_id"]) for r in app_recs] == [("fetching item", rid, 42)]
    from logpipe.emit.context import get_context

    assert dict(get_context()) == {}  # nothing leaked out of the request


def test_supplied_request_id_is_honoured_and_bad_ones_replaced(logs: Path) -> None:
    with TestClient(_fastapi()) as client:
        good = client.get("/sync/a", headers={"X-Request-ID": "abc-123.X_y"})
        long = client.get("/sync/b", headers={"X-Request-ID": "a" * 129})
        weird = client.get("/sync/c", headers={"X-Request-ID": "bad id; drop table"})
    assert good.headers["x-request-id"] == "abc-123.X_y"
    assert HEX32.match(long.headers["x-request-id"]) and HEX32.match(weird.headers["x-request-id"])
    flushed()
    handler = [r for r in read_json_lines(logs / "app.log") if r[F.MESSAGE] == "sync handler"]
    assert [r[F.REQUEST_ID] for r in handler] == [good.headers["x-request-id"], long.headers["x-request-id"],
                                                  weird.headers["x-request-id"]]
    acc = read_json_lines(logs / "access.log")
    assert [r[F.ROUTE] for r in acc] == ["/sync/{name}"] * 3


def test_streaming_duration_runs_to_the_last_byte(logs: Path) -> None:
    with TestClient(_fastapi(slow_ms=100)) as client:
        start = time.perf_counter()
        resp = client.get("/stream")
        elapsed = (time.perf_counter() - start) * 1000
    assert resp.content == b"x" * 300
    flushed()
    (acc,) = read_json_lines(logs / "access.log")
    assert acc[F.BYTES] == 300 and acc[F.STATUS] == 200
    assert 170 <= acc[F.DURATION_MS] <= elapsed + 5
    assert acc[F.LEVEL] == "warning"  # above slow_ms
    chunks = [r for r in read_json_lines(logs / "app.log") if r[F.MESSAGE] == "chunk"]
    assert len(chunks) == 3 and {r[F.REQUEST_ID] for r in chunks} == {resp.headers["x-request-id"]}


def test_unhandled_exception_logged_once_recorded_500_and_propagates(logs: Path) -> None:
    app = _fastapi()
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/boom")
    assert resp.status_code == 500
    with TestClient(app) as client, pytest.raises(RuntimeError, match="kaboom"):
        client.get("/boom", headers={"X-Request-ID": "second"})
    flushed()
    acc = read_json_lines(logs / "access.log")
    assert [(r[F.STATUS], r[F.LEVEL]) for r in acc] == [(500, "error"), (500, "error")]
    errors = [r for r in read_json_lines(logs / "error.log") if r[F.LOGGER] == "logpipe.request"]
    assert len(errors) == 2
    assert errors[1][F.REQUEST_ID] == "second"
    for rec in errors:
        assert rec[F.EXCEPTION]["type"] == "RuntimeError" and "kaboom in handler" in rec[F.EXCEPTION]["stack"]
        assert F.STATUS not in rec  # the error record is not an access record


def test_starlette_mount_route_template(logs: Path) -> None:
    async def user(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("user " + request.path_params["uid"])

    inner = Starlette(routes=[Route("/users/{uid}", user)])
    app = Starlette(routes=[Mount("/api", app=inner)])
    app.add_middleware(LoggingMiddleware)
    with TestClient(app) as client:
        assert client.get("/api/users/7").text == "user 7"
        assert client.get("/nope").status_code == 404
    flushed()
    a, b = read_json_lines(logs / "access.log")
    assert a[F.PATH] == "/api/users/7" and a[F.ROUTE] == "/api/users/{uid}" and a[F.STATUS] == 200
    assert b[F.STATUS] == 404 and b[F.ROUTE] == "/nope"  # no framework route: the normaliser's


def test_forwarded_for_only_from_trusted_proxies(logs: Path) -> None:
    app = _fastapi(proxies=("10.0.0.0/8",))

    async def call(peer: str, xff: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(peer, 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/items/1", headers={"X-Forwarded-For": xff})

    asyncio.run(call("10.0.0.5", "198.51.100.7, 10.0.0.9"))
    asyncio.run(call("203.0.113.9", "198.51.100.7"))
    flushed()
    a, b = read_json_lines(logs / "access.log")
    assert a[F.CLIENT_IP] == "198.51.100.7"
    assert b[F.CLIENT_IP] == "203.0.113.9"


def test_resolve_client_ip_and_request_id_rules() -> None:
    nets = LoggingMiddleware(None, trusted_proxies=["10.0.0.0/8", "::1"]).log.trusted  # type: ignore[arg-type]
    assert resolve_client_ip("10.1.1.1", "1.2.3.4, 5.6.7.8, 10.2.2.2", nets) == "5.6.7.8"
    assert resolve_client_ip("10.1.1.1", "garbage", nets) == "10.1.1.1"
    assert resolve_client_ip("8.8.8.8", "1.2.3.4", nets) == "8.8.8.8"
    assert resolve_client_ip("::1", "10.0.0.1, 10.0.0.2", nets) == "10.0.0.1"
    assert sane_request_id("ok-1") == "ok-1"
    assert HEX32.match(sane_request_id("x" * 129)) and HEX32.match(sane_request_id("a b"))
    assert HEX32.match(sane_request_id(b"\xff\xfe"))


def test_non_http_scopes_pass_through() -> None:
    seen = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(scope["type"])

    asyncio.run(LoggingMiddleware(app)({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert seen == ["lifespan"]


class _Nasty:
    """A __repr__ that itself logs and then fails: the request must still succeed."""

    def __repr__(self) -> str:
        logging.getLogger("nasty").warning("inside repr")
        raise RuntimeError("repr failed")


def test_broken_repr_in_a_handler_does_not_kill_the_request(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    # pytest's capture handler re-raises on bad records; only logpipe's handler is under test here.
    monkeypatch.setattr(root, "handlers", [h for h in root.handlers if getattr(h, "logpipe", False)])
    from logpipe import get_logger

    app = FastAPI()
    app.add_middleware(LoggingMiddleware)

    @app.get("/nasty")
    async def nasty() -> dict[str, bool]:
        logging.getLogger("handler").info("object: %r", _Nasty())
        get_logger("handler").info("field", obj=_Nasty())
        return {"ok": True}

    with TestClient(app) as client:
        resp = client.get("/nasty")
    assert resp.status_code == 200 and resp.json() == {"ok": True}
    flushed()
    msgs = [r[F.MESSAGE] for r in read_json_lines(logs / "app.log")]
    assert "inside repr" in msgs and "field" in msgs
    assert any(m.startswith("object: %r [unformattable args") for m in msgs)
    (acc,) = read_json_lines(logs / "access.log")
    assert acc[F.STATUS] == 200


def test_server_does_not_log_the_exception_a_second_time(logs: Path) -> None:
    app = _fastapi()

    async def serve() -> None:  # what uvicorn does when an exception escapes the app
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            try:
                await c.get("/boom")
            except RuntimeError as exc:
                logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=exc)
        logging.getLogger("uvicorn.error").error("unrelated", exc_info=ValueError("other"))

    asyncio.run(serve())
    flushed()
    errors = read_json_lines(logs / "error.log")
    assert [(r[F.LOGGER], r[F.EXCEPTION]["type"]) for r in errors] == [
        ("logpipe.request", "RuntimeError"), ("uvicorn.error", "ValueError")]
