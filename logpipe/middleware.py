"""Request logging middleware: ASGI (`LoggingMiddleware`) and WSGI (`WSGILoggingMiddleware`).

Per request: honour a sane incoming X-Request-ID (else make one) and return it with
X-Response-Time; bind request context for the handler; emit one access record
(method, path, route, status, duration_ms to the last body byte, client_ip, user_agent,
bytes) at info, warning above `slow_ms`, error above `error_ms` or on 5xx. An unhandled
exception is logged once with its stack, recorded as status 500, and re-raised.

    app.add_middleware(LoggingMiddleware)                   # FastAPI / Starlette
    app.wsgi_app = WSGILoggingMiddleware(app.wsgi_app)       # Flask

Options (both): trusted_proxies (IPs/CIDRs whose X-Forwarded-For is believed), slow_ms,
error_ms, timer (a monotonic clock in seconds; the demo passes a simulated one).
Access records go to the `logpipe.access` logger (access.log only); unhandled
exceptions to `logpipe.request`.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

from logpipe import fields as F
from logpipe.emit.context import bind_context, request_context
from logpipe.metrics.routes import normalise_path

__all__ = ["LoggingMiddleware", "WSGILoggingMiddleware", "access_route", "sane_request_id", "resolve_client_ip"]

ACCESS_LOGGER = "logpipe.access"
ERROR_LOGGER = "logpipe.request"
_SANE_ID = re.compile(r"[A-Za-z0-9._\-]{1,128}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def sane_request_id(value: str | bytes | None) -> str:
    """The incoming id if it is ≤128 chars of [A-Za-z0-9._-]; otherwise a fresh uuid4 hex."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            value = None
    if value and _SANE_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(proxies: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip())


def _trusted(ip: str, nets: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in n for n in nets)


def resolve_client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    """Client address: the peer, unless the peer is a trusted proxy; then the nearest untrusted
    X-Forwarded-For hop (walking right to left, so clients cannot spoof by prepending)."""
    if not trusted or not forwarded_for or not peer or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer
            return hop
    return hops[0] if hops else peer


class _AccessLog:
    """Shared by both middlewares: levels, thresholds, and the one access record."""

    def __init__(self, slow_ms: float, error_ms: float, trusted_proxies: Iterable[str],
                 timer: Callable[[], float] | None) -> None:
        self.timer = timer or time.perf_counter
        self.slow_ms = slow_ms
        self.error_ms = error_ms
        self.trusted = _networks(trusted_proxies)
        self.access = logging.getLogger(ACCESS_LOGGER)
        self.errors = logging.getLogger(ERROR_LOGGER)

    def level(self, status: int, duration_ms: float) -> int:
        if status >= 500 or duration_ms > self.error_ms:
            return logging.ERROR
        if duration_ms > self.slow_ms:
            return logging.WARNING
        return logging.INFO

    def log_exception(self, exc: BaseException, method: str, path: str) -> None:
        if getattr(exc, "_logpipe_logged", False):
            return
        try:
            exc._logpipe_logged = True  # type: ignore[attr-defined]
        except Exception:
            pass
        self.errors.error("unhandled exception in %s %s", method, path,
                          exc_info=(type(exc), exc, exc.__traceback__), extra={F.METHOD: method, F.PATH: path})

    def emit(self, *, method: str, path: str, query: str, route: str | None, status: int, duration_ms: float,
             client_ip: str | None, user_agent: str | None, nbytes: int) -> None:
        extra: dict[str, Any] = {F.METHOD: method, F.PATH: path, F.ROUTE: access_route(route, path)}
        extra[F.STATUS] = status
        extra[F.DURATION_MS] = round(duration_ms, 3)
        extra[F.CLIENT_IP] = client_ip
        extra[F.USER_AGENT] = user_agent
        extra[F.BYTES] = nbytes
        if query:
            extra["query"] = query
        lv = self.level(status, duration_ms)
        if self.access.isEnabledFor(lv):
            self.access.log(lv, "%s %s %s %.1fms", method, path, status, duration_ms, extra=extra)


def access_route(template: str | None, path: str) -> str:
    """The access record's `route`: the framework's template when it knows one (Starlette/FastAPI
    route path, Flask url_rule), else the path as the metrics normalise it (/users/42 ->
    /users/{id}), so `route:"/users/{id}"` finds the requests the metrics count under it."""
    return template or normalise_path(path)


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v.decode("latin-1")
    return None


class LoggingMiddleware:
    """Pure ASGI middleware (works under Starlette/FastAPI's error handling, streams untouched)."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: Iterable[str] = (), slow_ms: float = 200.0,
                 error_ms: float = 1000.0, timer: Callable[[], float] | None = None) -> None:
        self.app = app
        self.log = _AccessLog(slow_ms, error_ms, trusted_proxies, timer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        timer = self.log.timer
        start = timer()
        headers = scope.get("headers") or []
        rid = sane_request_id(_header(headers, b"x-request-id"))
        rid_bytes = rid.encode()
        status = 0
        nbytes = 0
        end: float | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, nbytes, end
            kind = message.get("type")
            if kind == "http.response.start":
                status = int(message.get("status", 0))
                elapsed = (timer() - start) * 1000
                out = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                out.append((b"x-request-id", rid_bytes))
                out.append((b"x-response-time", f"{elapsed:.2f}ms".encode()))
                message = {**message, "headers": out}
            elif kind == "http.response.body":
                nbytes += len(message.get("body", b""))
                if not message.get("more_body", False):
                    await send(message)
                    end = timer()
                    return
            await send(message)

        method = str(scope.get("method", ""))
        path = str(scope.get("path", ""))
        # The access record is emitted inside the request's context, so fields the handler
        # bound (bind_context(user_id=...)) are on it too; leaving the block restores the caller's.
        with request_context(request_id=rid):
            try:
                await self.app(scope, receive, send_wrapper)
            except BaseException as exc:
                status = 500
                if isinstance(exc, Exception):
                    self.log.log_exception(exc, method, path)
                raise
            finally:
                duration = ((end or timer()) - start) * 1000
                client = scope.get("client")
                peer = client[0] if client else None
                ip = resolve_client_ip(peer, _header(headers, b"x-forwarded-for"), self.log.trusted)
                query = scope.get("query_string", b"")
                self.log.emit(method=method, path=path,
                              query=query.decode("latin-1") if isinstance(query, bytes) else str(query),
                              route=_asgi_route(scope), status=status, duration_ms=duration, client_ip=ip,
                              user_agent=_header(headers, b"user-agent"), nbytes=nbytes)


def _asgi_route(scope: Scope) -> str | None:
    route = scope.get("route")
    if route is None:
        return None
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return None
    root = scope.get("root_path") or ""
    app_root = scope.get("app_root_path", root) or ""
    mount = root[len(app_root):] if root.startswith(app_root) else ""
    if mount and not template.startswith(mount):
        template = mount + template
    return template


class WSGILoggingMiddleware:
    """WSGI middleware; context stays bound while the response body is iterated."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, trusted_proxies: Iterable[str] = (),
                 slow_ms: float = 200.0, error_ms: float = 1000.0,
                 timer: Callable[[], float] | None = None) -> None:
        self.app = app
        self.log = _AccessLog(slow_ms, error_ms, trusted_proxies, timer)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        ctx = contextvars.copy_context()
        return ctx.run(self._call, ctx, environ, start_response)

    def _call(self, ctx: contextvars.Context, environ: dict[str, Any],
              start_response: Callable[..., Any]) -> Iterable[bytes]:
        req = _WSGIRequest(self.log, environ, ctx, start_response)
        bind_context(request_id=req.rid)
        try:
            result = self.app(environ, req.start_response)
        except BaseException as exc:
            req.fail(exc)
            raise
        return _Body(result, req)


class _WSGIRequest:
    def __init__(self, log: _AccessLog, environ: dict[str, Any], ctx: contextvars.Context,
                 start_response: Callable[..., Any]) -> None:
        self.log = log
        self._inner_start = start_response
        self.environ = environ
        self.ctx = ctx
        self.start = log.timer()
        self.rid = sane_request_id(environ.get("HTTP_X_REQUEST_ID"))
        self.status = 0
        self.nbytes = 0
        self.done = False
        self.route: str | None = None

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.route = _wsgi_route(self.environ)  # Flask clears its request from environ on teardown
        try:
            self.status = int(status.split(None, 1)[0])
        except (ValueError, IndexError):
            self.status = 0
        elapsed = (self.log.timer() - self.start) * 1000
        out = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
        out.append(("X-Request-ID", self.rid))
        out.append(("X-Response-Time", f"{elapsed:.2f}ms"))
        return self._wrap_write(self._inner_start(status, out, exc_info))

    def _wrap_write(self, write: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        def counted(data: bytes) -> Any:
            self.nbytes += len(data)
            return write(data)

        return counted

    def fail(self, exc: BaseException) -> None:
        self.status = 500
        if isinstance(exc, Exception):
            self.log.log_exception(exc, self.environ.get("REQUEST_METHOD", ""), self.environ.get("PATH_INFO", ""))
        self.finish()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        env = self.environ
        duration = (self.log.timer() - self.start) * 1000
        ip = resolve_client_ip(env.get("REMOTE_ADDR"), env.get("HTTP_X_FORWARDED_FOR"), self.log.trusted)
        self.log.emit(method=env.get("REQUEST_METHOD", ""), path=env.get("PATH_INFO", ""),
                      query=env.get("QUERY_STRING", ""), route=self.route or _wsgi_route(env), status=self.status,
                      duration_ms=duration, client_ip=ip, user_agent=env.get("HTTP_USER_AGENT"),
                      nbytes=self.nbytes)


def _wsgi_route(environ: dict[str, Any]) -> str | None:
    req = environ.get("werkzeug.request")
    rule = getattr(req, "url_rule", None)
    template = getattr(rule, "rule", None)
    return template if isinstance(template, str) else None


class _Body:
    """The response iterable, re-entering the request's context for each chunk."""

    def __init__(self, result: Iterable[bytes], req: _WSGIRequest) -> None:
        self._result = result
        self._req = req
        self._it: Iterator[bytes] | None = None

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        req = self._req
        try:
            if self._it is None:
                self._it = req.ctx.run(iter, self._result)
            chunk = req.ctx.run(next, self._it)
        except StopIteration:
            req.ctx.run(req.finish)
            raise
        except BaseException as exc:
            req.ctx.run(req.fail, exc)
            raise
        req.nbytes += len(chunk)
        return chunk

    def close(self) -> None:
        req = self._req
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                req.ctx.run(close)
        finally:
            req.ctx.run(req.finish)
