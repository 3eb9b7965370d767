"""The apps bench_middleware.py serves: one Starlette (ASGI) and one Flask (WSGI) app per variant.

Chosen by environment: BENCH_VARIANT (plain | logpipe | pjl | structlog), BENCH_LOGDIR.
Endpoints: `/hello` and `/work` (2 ms of CPU, a busy loop calibrated at start). `/__bench`
sits outside the middleware under test: it flushes the variant's log writer and answers
how many requests the endpoints handled, so the bench can check one record per request.

    uvicorn --app-dir bench mw_apps:asgi_app ...      gunicorn --chdir bench mw_apps:wsgi_app ...
"""

from __future__ import annotations

import itertools
import json
import os
import time

VARIANT = os.environ.get("BENCH_VARIANT", "plain")
LOGDIR = os.environ.get("BENCH_LOGDIR", ".")
ACCESS_PATH = os.path.join(LOGDIR, "access.log")
WORK_S = 0.002


def _calibrate() -> int:
    """Loop iterations that burn WORK_S of CPU on this machine (best of several tries)."""
    n, best = 20_000, float("inf")
    for _ in range(21):
        t = time.thread_time()
        _spin(n)
        best = min(best, time.thread_time() - t)
    return max(1, int(n * WORK_S / best))


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x ^= i
    return x


#: bench_middleware.py calibrates once and passes the count, so every variant burns the same work.
SPIN = int(os.environ.get("BENCH_SPIN") or 0) or _calibrate()
_started = itertools.count()
_finished = itertools.count()
_reads = [0, 0]


def _peek(counter: itertools.count, slot: int) -> int:  # type: ignore[type-arg]
    """Current value of a counter only ever advanced with next() (atomic under the GIL)."""
    value = next(counter) - _reads[slot]
    _reads[slot] += 1
    return value


def _handled() -> int:
    """Requests completed so far, once none is still in flight (wrk may abandon some when it stops)."""
    deadline = time.monotonic() + 30
    while True:
        done = _peek(_finished, 1)
        if _peek(_started, 0) == done or time.monotonic() > deadline:
            return done
        time.sleep(0.001)


def _flush() -> dict[str, object]:
    """Wait until no request is in flight, then drain the variant's writer (pjl and structlog
    write synchronously: nothing is queued). In that order: a request still finishing after
    the drain would have its record queued but not yet written when the bench reads the file."""
    handled = _handled()
    t = time.perf_counter()
    dropped = 0
    if VARIANT == "logpipe":
        from logpipe.emit import setup

        setup.flush_logging(60.0)
        st = setup._state
        dropped = st.gate.dropped_total if st is not None else -1
    return {"handled": handled, "dropped_records": dropped, "flush_s": time.perf_counter() - t}


# ---------------------------------------------------------------------------------------- ASGI
def asgi_app():  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("hello, world")

    async def work(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse(str(_spin(SPIN)))

    middleware = []
    if VARIANT == "logpipe":
        from logpipe import setup_logging
        from logpipe.middleware import LoggingMiddleware

        setup_logging(service="bench", log_dir=LOGDIR, console="off")
        middleware.append(Middleware(LoggingMiddleware))
    elif VARIANT == "pjl":
        from mw_baseline_pjl import PjlASGIMiddleware

        middleware.append(Middleware(PjlASGIMiddleware, path=ACCESS_PATH))
    elif VARIANT == "structlog":
        from mw_baseline_structlog import StructlogASGIMiddleware

        middleware.append(Middleware(StructlogASGIMiddleware, path=ACCESS_PATH))
    inner = Starlette(routes=[Route("/hello", hello), Route("/work", work)], middleware=middleware)

    async def outer(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and scope["path"] == "/__bench":
            body = json.dumps(_flush()).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        next(_started)
        try:
            await inner(scope, receive, send)
        finally:
            next(_finished)

    return outer


# ---------------------------------------------------------------------------------------- WSGI
def wsgi_app():  # type: ignore[no-untyped-def]
    from flask import Flask

    app = Flask(__name__)

    @app.get("/hello")
    def hello() -> str:
        return "hello, world"

    @app.get("/work")
    def work() -> str:
        return str(_spin(SPIN))

    inner = app.wsgi_app
    if VARIANT == "logpipe":
        from logpipe import setup_logging
        from logpipe.middleware import WSGILoggingMiddleware

        setup_logging(service="bench", log_dir=LOGDIR, console="off")
        inner = WSGILoggingMiddleware(inner)
    elif VARIANT == "pjl":
        from mw_baseline_pjl import PjlWSGIMiddleware

        inner = PjlWSGIMiddleware(inner, ACCESS_PATH)
    elif VARIANT == "structlog":
        from mw_baseline_structlog import StructlogWSGIMiddleware

        inner = StructlogWSGIMiddleware(inner, ACCESS_PATH)

    def outer(environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO") == "/__bench":
            body = json.dumps(_flush()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        next(_started)
        try:
            return _Counted(inner(environ, start_response))
        except BaseException:
            next(_finished)
            raise

    return outer


class _Counted:
    """The response iterable; the request counts as finished once the server closed it."""

    def __init__(self, result) -> None:  # type: ignore[no-untyped-def]
        self.result = result

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.result)

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
        finally:
            next(_finished)
