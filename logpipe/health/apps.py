"""`/health`, `/health/ready`, `/health/detailed` as an ASGI app and a WSGI app.

Both wrap an optional inner app: requests outside the health paths go to it (404 without one).
The answer is computed by `HealthEndpoints.respond`, shared by both, so they cannot drift.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from logpipe.health import system
from logpipe.health.checks import HealthChecks

TOKEN_ENV = "LOGPIPE_HEALTH_TOKEN"
JSON = "application/json"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


class HealthEndpoints:
    """The three answers. `/health/detailed` only for loopback clients or with the token
    (`Authorization: Bearer <token>`; token from the argument or $LOGPIPE_HEALTH_TOKEN)."""

    def __init__(self, checks: HealthChecks | None = None, *, prefix: str = "/health",
                 token: str | None = None, disk_path: str = "/") -> None:
        self.checks = checks if checks is not None else HealthChecks()
        self.prefix = prefix.rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.disk_path = disk_path
        self.paths = {self.prefix, self.prefix + "/ready", self.prefix + "/detailed"}

    def handles(self, path: str) -> bool:
        return path in self.paths

    def _authorised(self, client: str | None, authorization: str | None) -> bool:
        if is_loopback(client):
            return True
        if not self.token or not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())

    def respond(self, path: str, client: str | None, authorization: str | None) -> tuple[int, bytes]:
        if path == self.prefix:
            return 200, orjson.dumps({"status": "alive", "pid": os.getpid()})
        if path == self.prefix + "/ready":
            r = self.checks.readiness()
            return (200 if r.ready else 503), orjson.dumps(r.as_dict())
        if not self._authorised(client, authorization):
            return 403, orjson.dumps({"error": "detailed health is served to loopback clients or with the token"})
        r = self.checks.readiness()
        body = r.as_dict()
        body.update(system.figures(self.disk_path))
        return (200 if r.ready else 503), orjson.dumps(body)


_NOT_FOUND = orjson.dumps({"error": "not found"})


class HealthASGI:
    """ASGI app: health paths answered here (the checks run off the event loop), others to `app`."""

    def __init__(self, app: Any = None, checks: HealthChecks | None = None, **options: Any) -> None:
        self.app = app
        self.endpoints = HealthEndpoints(checks, **options)

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http" or not self.endpoints.handles(scope["path"]):
            if self.app is not None:
                await self.app(scope, receive, send)
                return
            if scope["type"] != "http":
                return
            status, body = 404, _NOT_FOUND
        else:
            client = (scope.get("client") or (None,))[0]
            auth = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"authorization"), None)
            loop = asyncio.get_running_loop()
            status, body = await loop.run_in_executor(None, self.endpoints.respond, scope["path"], client, auth)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", JSON.encode()), (b"cache-control", b"no-store"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


_REASONS = {200: "200 OK", 403: "403 Forbidden", 404: "404 Not Found", 503: "503 Service Unavailable"}


class HealthWSGI:
    """WSGI app: health paths answered here, others to `app`."""

    def __init__(self, app: Any = None, checks: HealthChecks | None = None, **options: Any) -> None:
        self.app = app
        self.endpoints = HealthEndpoints(checks, **options)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not self.endpoints.handles(path):
            if self.app is not None:
                return self.app(environ, start_response)
            status, body = 404, _NOT_FOUND
        else:
            status, body = self.endpoints.respond(path, environ.get("REMOTE_ADDR"),
                                                  environ.get("HTTP_AUTHORIZATION"))
        start_response(_REASONS[status], [("Content-Type", JSON), ("Cache-Control", "no-store"),
                                          ("Content-Length", str(len(body)))])
        return [body]
