"""Baseline: a hand-written access-log middleware on structlog's fastest native configuration.

`make_filtering_bound_logger` + `JSONRenderer` + `WriteLoggerFactory` to a file; ASGI and WSGI.
Used only by bench_middleware.py for comparison.
"""

from __future__ import annotations

import logging
import time
import uuid

import structlog


def access_logger(path: str):  # type: ignore[no-untyped-def]
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(file=open(path, "a")),  # noqa: SIM115
        cache_logger_on_first_use=True)
    return structlog.get_logger("access")


class StructlogASGIMiddleware:
    def __init__(self, app, path: str) -> None:  # type: ignore[no-untyped-def]
        self.app, self.log = app, access_logger(path)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode() or uuid.uuid4().hex
        state = {"status": 0, "bytes": 0}

        async def send_wrapper(message) -> None:  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.log.info("request", request_id=rid, method=scope["method"], path=scope["path"],
                          status=state["status"], duration_ms=round((time.perf_counter() - start) * 1000, 3),
                          client_ip=scope["client"][0] if scope.get("client") else None,
                          user_agent=headers.get(b"user-agent", b"").decode(), bytes=state["bytes"])


class StructlogWSGIMiddleware:
    def __init__(self, app, path: str) -> None:  # type: ignore[no-untyped-def]
        self.app, self.log = app, access_logger(path)

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        rid = environ.get("HTTP_X_REQUEST_ID") or uuid.uuid4().hex
        state = {"status": 0}

        def start_wrapper(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
            state["status"] = int(status.split()[0])
            return start_response(status, [*headers, ("X-Request-ID", rid)], exc_info)

        body = b"".join(self.app(environ, start_wrapper))
        self.log.info("request", request_id=rid, method=environ["REQUEST_METHOD"], path=environ["PATH_INFO"],
                      status=state["status"], duration_ms=round((time.perf_counter() - start) * 1000, 3),
                      client_ip=environ.get("REMOTE_ADDR"), user_agent=environ.get("HTTP_USER_AGENT"),
                      bytes=len(body))
        return [body]
