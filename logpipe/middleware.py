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

Per request this module does little: one pass over the request headers, one context var
set/reset, one dict of access fields (`access_fields`, the only place they are assembled),
and, when logpipe's own handler is the only one listening (`setup.direct_put`), one entry
appended to the writer's queue instead of a stdlib LogRecord; the message is formatted on
the writer thread. With any other handler or filter on the way, the record goes through
stdlib logging as before, so users' handlers and caplog see it.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import operator
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

from logpipe import fields as F
from logpipe.emit.context import enter_request, leave_request, snapshot
from logpipe.emit.processors import level_name
from logpipe.emit.processors import now as record_time
from logpipe.emit.setup import direct_put
from logpipe.metrics.routes import normalise_path

__all__ = ["LoggingMiddleware", "WSGILoggingMiddleware", "sane_request_id", "resolve_client_ip", "access_fields", "access_route"]

ACCESS_LOGGER = "logpipe.access"
ERROR_LOGGER = "logpipe.request"
ACCESS_MESSAGE = "%s %s %s %.1fms"  # method, path, status, duration_ms
_SANE_ID = re.compile(r"[A-Za-z0-9._\-]{1,128}")
# Request ids need uniqueness, not secrecy; `random` is seeded from os.urandom and reseeded in a
# forked child (gunicorn workers), so two processes never share a sequence.
_random_bits = random.getrandbits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def sane_request_id(value: str | bytes | None) -> str:
    """The incoming id if it is ≤128 chars of [A-Za-z0-9._-]; otherwise a fresh random 32-hex-digit id."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            value = None
    if value and _SANE_ID.fullmatch(value):
        return value
    return f"{_random_bits(128):032x}"  # as unique as uuid4().hex, without a syscall or a UUID object


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

    def emit(self, method: str, path: str, query: str, route: str | None, status: int, duration_ms: float,
             client_ip: str | None, user_agent: str | None, nbytes: int) -> None:
        """The request's one access record, at the level its status and duration call for."""
        lv = self.level(status, duration_ms)
        access = self.access
        if not access.isEnabledFor(lv):
            return
        fields = access_fields(method, path, query, route, status, duration_ms, client_ip, user_agent, nbytes)
        put = direct_put(access, lv)
        if put is None:  # someone else listens too: a real LogRecord, as any logging call makes
            access.log(lv, ACCESS_MESSAGE, method, path, status, duration_ms, extra=fields)
            return
        put((record_time(), lv, level_name(lv), ACCESS_LOGGER, (ACCESS_MESSAGE, (method, path, status, duration_ms)),
             snapshot(), fields, None))


def access_route(template: str | None, path: str) -> str:
    """The access record's `route`: the framework's template when it knows one (Starlette/FastAPI
    route path, Flask url_rule), else the path as the metrics normalise it (/users/42 ->
    /users/{id}), so `route:"/users/{id}"` finds the requests the metrics count under it."""
    return template or normalise_path(path)


def access_fields(method: str, path: str, query: str, route: str | None, status: int, duration_ms: float,
                  client_ip: str | None, user_agent: str | None, nbytes: int) -> dict[str, Any]:
    """The access record's event fields, in schema order: the one place they are assembled."""
    fields = {F.METHOD: method, F.PATH: path, F.ROUTE: access_route(route, path), F.STATUS: status,
              F.DURATION_MS: round(duration_ms, 3), F.CLIENT_IP: client_ip, F.USER_AGENT: user_agent,
              F.BYTES: nbytes}
    if query:
        fields["query"] = query
    return fields


def _with_request_headers(headers: Iterable[tuple[bytes, bytes]], rid: bytes, elapsed_ms: float) -> list[Any]:
    """The response headers plus ours; an X-Request-ID the app set is replaced, not repeated."""
    out = list(headers)
    if out and b"x-request-id" in b"\n".join(map(_first, out)).lower():  # one C-level scan, no per-header Python
        out = [(k, v) for k, v in out if k.lower() != b"x-request-id"]
    out.append((b"x-request-id", rid))
    out.append((b"x-response-time", b"%.2fms" % elapsed_ms))
    return out


_first = operator.itemgetter(0)


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
        log = self.log
        timer = log.timer
        start = timer()
        rid_in = forwarded = agent = None
        for name, value in scope.get("headers") or ():  # ASGI request header names are lower case
            if name == b"user-agent":
                if agent is None:
                    agent = value
            elif name == b"x-request-id":
                if rid_in is None:
                    rid_in = value
            elif name == b"x-forwarded-for" and forwarded is None:
                forwarded = value
        rid = sane_request_id(rid_in)
        rid_bytes = rid.encode()
        status = 0
        nbytes = 0
        end: float | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, nbytes, end
            kind = message.get("type")
            if kind == "http.response.body":
                nbytes += len(message.get("body", b""))
                if not message.get("more_body", False):
                    await send(message)
                    end = timer()
                    return
            elif kind == "http.response.start":
                status = int(message.get("status", 0))
                message = {**message, "headers": _with_request_headers(
                    message.get("headers", ()), rid_bytes, (timer() - start) * 1000)}
            await send(message)

        method = str(scope.get("method", ""))
        path = str(scope.get("path", ""))  # before the app runs: routers may rewrite the scope
        # The access record is emitted inside the request's context, so fields the handler
        # bound (bind_context(user_id=...)) are on it too; leaving restores the caller's.
        token = enter_request(rid)
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            status = 500
            if isinstance(exc, Exception):
                log.log_exception(exc, method, path)
            raise
        finally:
            try:
                duration = ((end or timer()) - start) * 1000
                client = scope.get("client")
                peer = client[0] if client else None
                ip = peer if not log.trusted else resolve_client_ip(
                    peer, forwarded.decode("latin-1") if forwarded is not None else None, log.trusted)
                query = scope.get("query_string", b"")
                log.emit(method, path, query.decode("latin-1") if isinstance(query, bytes) else str(query),
                         _asgi_route(scope), status, duration, ip,
                         agent.decode("latin-1") if agent is not None else None, nbytes)
            finally:
                leave_request(token)


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
        req = _WSGIExchange(self.log, environ, ctx, start_response)
        enter_request(req.rid)  # in this request's own copy of the context: nothing to undo
        try:
            req.result = self.app(environ, req.start_response)
        except BaseException as exc:
            req.fail(exc)
            raise
        return req


class _WSGIExchange:
    """One request: wraps start_response, and is the response iterable the server gets back,
    re-entering the request's context for each chunk (streamed bodies log with its fields)."""

    __slots__ = ("log", "_inner_start", "_write", "environ", "ctx", "start", "rid", "status", "nbytes", "done",
                 "route", "result", "_it")

    def __init__(self, log: _AccessLog, environ: dict[str, Any], ctx: contextvars.Context,
                 start_response: Callable[..., Any]) -> None:
        self.log = log
        self._inner_start = start_response
        self._write: Callable[[bytes], Any] | None = None
        self.environ = environ
        self.ctx = ctx
        self.start = log.timer()
        self.rid = sane_request_id(environ.get("HTTP_X_REQUEST_ID"))
        self.status = 0
        self.nbytes = 0
        self.done = False
        self.route: str | None = None
        self.result: Iterable[bytes] = ()
        self._it: Iterator[bytes] | None = None

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.route = _wsgi_route(self.environ)  # Flask clears its request from environ on teardown
        try:
            self.status = int(status[:3])
        except ValueError:
            self.status = 0
        elapsed = (self.log.timer() - self.start) * 1000
        out = list(headers)
        if out and "x-request-id" in "\n".join(map(_first, out)).lower():  # replaced, not repeated
            out = [(k, v) for k, v in out if k.lower() != "x-request-id"]
        out.append(("X-Request-ID", self.rid))
        out.append(("X-Response-Time", f"{elapsed:.2f}ms"))
        self._write = self._inner_start(status, out, exc_info)
        return self.write

    def write(self, data: bytes) -> Any:
        """The legacy write() callable, counting bytes."""
        self.nbytes += len(data)
        return self._write(data)  # type: ignore[misc]

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
        trusted = self.log.trusted
        ip = resolve_client_ip(env.get("REMOTE_ADDR"), env.get("HTTP_X_FORWARDED_FOR"), trusted) if trusted \
            else env.get("REMOTE_ADDR")
        self.log.emit(env.get("REQUEST_METHOD", ""), env.get("PATH_INFO", ""), env.get("QUERY_STRING", ""),
                      self.route or _wsgi_route(env), self.status, duration, ip, env.get("HTTP_USER_AGENT"),
                      self.nbytes)

    def __iter__(self) -> _WSGIExchange:
        return self

    def __next__(self) -> bytes:
        return self.ctx.run(self._next)  # one context switch per chunk, StopIteration passes through

    def _next(self) -> bytes:
        try:
            if self._it is None:
                self._it = iter(self.result)
            chunk = next(self._it)
        except StopIteration:
            self.finish()
            raise
        except BaseException as exc:
            self.fail(exc)
            raise
        self.nbytes += len(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if close is not None:
                self.ctx.run(close)
        finally:
            if not self.done:
                self.ctx.run(self.finish)


def _wsgi_route(environ: dict[str, Any]) -> str | None:
    req = environ.get("werkzeug.request")
    rule = getattr(req, "url_rule", None)
    template = getattr(rule, "rule", None)
    return template if isinstance(template, str) else None
