"""The request path's mechanism: what the middleware does per request, not how long it takes.

When logpipe's handler is the only one listening, an access record is queued without a stdlib
LogRecord and its message is formatted on the writer thread; with any other handler on the
way (a user's, caplog) the record goes through stdlib logging as before. Either way: one
complete record per request, the headers, and context isolated per task / thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from emit_support import flushed, read_json_lines
from flask import Flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from logpipe import bind_context
from logpipe import fields as F
from logpipe.emit import handlers as H
from logpipe.emit.context import get_context
from logpipe.emit.setup import setup_logging, shutdown_logging
from logpipe.middleware import LoggingMiddleware, WSGILoggingMiddleware


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Path]:
    setup_logging(service="api", log_dir=tmp_path, console="off")
    try:
        yield tmp_path
    finally:
        shutdown_logging()


@contextmanager
def only_logpipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Inside the block logpipe's handler is the only one (pytest adds its own for each test phase);
    yields the logger names of every LogRecord built meanwhile."""
    # Root, and the `logpipe` logger where an in-process CLI test (setup_cli_logging) may have left
    # its stderr handler behind.
    loggers = [logging.getLogger(), logging.getLogger("logpipe")]
    others = [(lg, h) for lg in loggers for h in lg.handlers if not getattr(h, "logpipe", False)]
    made: list[str] = []
    real_init = logging.LogRecord.__init__

    def counting(self: logging.LogRecord, name: str, *args: Any, **kwargs: Any) -> None:
        made.append(name)
        real_init(self, name, *args, **kwargs)

    for lg, h in others:
        lg.removeHandler(h)
    try:
        with monkeypatch.context() as m:
            m.setattr(logging.LogRecord, "__init__", counting)
            yield made
    finally:
        for lg, h in others:
            lg.addHandler(h)


def _starlette() -> Starlette:
    async def item(request):  # type: ignore[no-untyped-def]
        n = request.path_params["n"]
        await asyncio.sleep(0)  # let the other requests' tasks run in between
        bind_context(user_id=f"u-{n}")
        await asyncio.sleep(0)
        logging.getLogger("handler").info("item %s", n)
        # an app's own X-Request-ID is replaced by the request's, never sent twice
        return PlainTextResponse(f"item {n}", headers={"X-Request-ID": "from-app"} if int(n) % 2 else None)

    app = Starlette(routes=[Route("/items/{n}", item)])
    app.add_middleware(LoggingMiddleware)
    return app


async def _get_all(app: Starlette, paths: list[str]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.8", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await asyncio.gather(*(client.get(p, headers={"X-Request-ID": f"req-{i}"})
                                      for i, p in enumerate(paths)))


def test_asgi_concurrent_requests_queue_access_records_without_a_logrecord(
        logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with only_logpipe(monkeypatch) as made:
        responses = asyncio.run(_get_all(_starlette(), [f"/items/{i}" for i in range(40)]))
    assert [r.text for r in responses] == [f"item {i}" for i in range(40)]
    assert all(r.headers["x-request-id"] == f"req-{i}" and r.headers["x-response-time"].endswith("ms")
               for i, r in enumerate(responses))
    assert "logpipe.access" not in made  # the handler's own log calls still make records
    assert made.count("handler") == 40
    flushed()
    acc = read_json_lines(logs / "access.log")
    assert sorted(r[F.REQUEST_ID] for r in acc) == sorted(f"req-{i}" for i in range(40))  # one each
    for rec in acc:  # each task's own context, even though they interleaved
        n = int(rec[F.REQUEST_ID].split("-")[1])
        assert rec[F.USER_ID] == f"u-{n}" and rec[F.PATH] == f"/items/{n}" and rec[F.ROUTE] == "/items/{n}"
        assert rec[F.MESSAGE].startswith(f"GET /items/{n} 200 ") and rec[F.MESSAGE].endswith("ms")
        assert rec[F.STATUS] == 200 and rec[F.CLIENT_IP] == "192.0.2.8" and rec[F.BYTES] == len(f"item {n}")
        assert rec[F.LOGGER] == "logpipe.access" and rec[F.LEVEL] == "info"
    app_recs = read_json_lines(logs / "app.log")
    assert {(r[F.MESSAGE], r[F.REQUEST_ID], r[F.USER_ID]) for r in app_recs} == {
        (f"item {i}", f"req-{i}", f"u-{i}") for i in range(40)}
    assert dict(get_context()) == {}


def test_a_handler_on_the_access_logger_or_caplog_still_sees_every_record(
        logs: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    app = _starlette()
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    access = logging.getLogger("logpipe.access")
    with only_logpipe(monkeypatch) as made:
        asyncio.run(_get_all(app, ["/items/1"]))
        assert "logpipe.access" not in made  # nobody else listens: no LogRecord
        access.addHandler(handler)
        try:
            asyncio.run(_get_all(app, ["/items/2"]))
        finally:
            access.removeHandler(handler)
    (rec,) = seen
    assert rec.getMessage().startswith("GET /items/2 200 ") and rec.levelno == logging.INFO
    assert rec.status == 200 and rec.path == "/items/2" and rec.route == "/items/{n}"  # type: ignore[attr-defined]

    caplog.set_level(logging.INFO, logger="logpipe.access")  # pytest's handler is back on root
    asyncio.run(_get_all(app, ["/items/3"]))
    assert [r.path for r in caplog.records if r.name == "logpipe.access"] == ["/items/3"]  # type: ignore[attr-defined]
    flushed()
    assert [r[F.PATH] for r in read_json_lines(logs / "access.log")] == ["/items/1", "/items/2", "/items/3"]


def test_wsgi_threads_queue_access_records_without_a_logrecord(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = Flask("paths")

    @app.get("/orders/<int:n>")
    def order(n: int) -> tuple[str, dict[str, str]]:
        bind_context(user_id=f"u-{n}")
        return f"order {n}", {"X-Request-ID": "from-app"} if n % 2 else {}

    app.wsgi_app = WSGILoggingMiddleware(app.wsgi_app)  # type: ignore[method-assign]

    def get(n: int) -> tuple[int, str, str]:
        resp = app.test_client().get(f"/orders/{n}", headers={"X-Request-ID": f"w-{n}"})
        return n, ",".join(resp.headers.getlist("X-Request-ID")), resp.text

    with only_logpipe(monkeypatch) as made, ThreadPoolExecutor(16) as pool:
        results = list(pool.map(get, range(64)))
    assert results == [(n, f"w-{n}", f"order {n}") for n in range(64)]
    assert "logpipe.access" not in made
    flushed()
    acc = read_json_lines(logs / "access.log")
    assert sorted(r[F.REQUEST_ID] for r in acc) == sorted(f"w-{n}" for n in range(64))
    for rec in acc:
        n = int(rec[F.REQUEST_ID][2:])
        assert rec[F.USER_ID] == f"u-{n}" and rec[F.ROUTE] == "/orders/<int:n>" and rec[F.STATUS] == 200


def test_access_message_is_formatted_on_the_writer_thread(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    real = H.message_text

    def recording(message: Any) -> str:
        threads.append(threading.current_thread().name)
        return real(message)

    monkeypatch.setattr(H, "message_text", recording)
    with only_logpipe(monkeypatch):
        asyncio.run(_get_all(_starlette(), ["/items/5", "/items/6"]))
        flushed()
    assert len(threads) == 2 and threading.current_thread().name not in threads
    assert sorted(r[F.MESSAGE].split(" ")[1] for r in read_json_lines(logs / "access.log")) == [
        "/items/5", "/items/6"]


class _Recorder:
    """Stands in for the Writer: keeps each batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def process(self, entries: list[Any]) -> None:
        self.batches.append(list(entries))


def test_writer_takes_a_burst_as_one_batch_and_flush_or_stop_do_not_wait_for_the_interval() -> None:
    handoff = H.Handoff(interval_s=600.0)  # longer than the test's timeout: only a wake-up can end a wait
    writer = _Recorder()
    listener = H.BatchListener(handoff, writer)  # type: ignore[arg-type]
    listener.start()
    try:
        for i in range(100):
            handoff.put_nowait(i)
        assert listener.flush(timeout=30)
        assert writer.batches == [list(range(100))]  # one wake-up for the burst, not one per entry
        handoff.put_nowait("last")
    finally:
        listener.stop()  # returns: the stop sentinel wakes the writer
    assert writer.batches[-1] == ["last"]
