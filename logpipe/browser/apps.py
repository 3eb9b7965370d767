"""ASGI and WSGI front doors of `BrowserEvents`: they only translate requests and responses.

Both wrap an optional inner app: paths other than `<prefix>/logpipe.js` and `<prefix>/events`
go to it. Bodies are read up to the beacon limit and no further.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from logpipe.browser.collector import BrowserEvents, Request, Response


def _origin(scheme: str, host: str) -> str:
    return f"{scheme}://{host}" if host else ""


class BrowserASGI:
    def __init__(self, app: Any = None, events: BrowserEvents | None = None) -> None:
        self.app = app
        self.events = events or BrowserEvents()

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http" or not self.events.handles(scope["path"]):
            if self.app is not None:
                await self.app(scope, receive, send)
                return
            if scope["type"] != "http":
                return
            await self._send(send, Response(404, b'{"error":"not found"}'))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        limit = self.events.config.limits.max_beacon_bytes
        body = bytearray()
        too_large = False
        if scope["method"] == "POST":
            declared = headers.get("content-length", "")
            too_large = declared.isdigit() and int(declared) > limit
            while not too_large:
                msg = await receive()
                if msg["type"] != "http.request":
                    break
                body += msg.get("body", b"")
                if len(body) > limit:
                    too_large = True
                elif not msg.get("more_body"):
                    break
        client = (scope.get("client") or ("unknown",))[0]
        req = Request(scope["method"], scope["path"], headers, client,
                      _origin(scope.get("scheme", "http"), headers.get("host", "")), bytes(body), too_large)
        await self._send(send, self.events.handle(req))

    @staticmethod
    async def _send(send: Callable[..., Any], resp: Response) -> None:
        headers = [(b"content-type", resp.content_type.encode()), (b"content-length", str(len(resp.body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in resp.headers.items()]
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        await send({"type": "http.response.body", "body": resp.body})


class BrowserWSGI:
    def __init__(self, app: Any = None, events: BrowserEvents | None = None) -> None:
        self.app = app
        self.events = events or BrowserEvents()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not self.events.handles(path):
            if self.app is not None:
                return self.app(environ, start_response)
            resp = Response(404, b'{"error":"not found"}')
        else:
            headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
            method = environ.get("REQUEST_METHOD", "GET")
            limit = self.events.config.limits.max_beacon_bytes
            body, too_large = b"", False
            if method == "POST":
                try:
                    declared = int(environ.get("CONTENT_LENGTH") or 0)
                except ValueError:
                    declared = 0
                too_large = declared > limit
                if not too_large and declared:
                    body = environ["wsgi.input"].read(declared)
            req = Request(method, path, headers, environ.get("REMOTE_ADDR", "unknown"),
                          _origin(environ.get("wsgi.url_scheme", "http"), headers.get("host", "")), body, too_large)
            resp = self.events.handle(req)
        status = f"{resp.status} {HTTPStatus(resp.status).phrase}"
        start_response(status, [("Content-Type", resp.content_type), ("Content-Length", str(len(resp.body))),
                                *resp.headers.items()])
        return [resp.body]
