"""HTTP routes of the live dashboard on the metrics server: `/`, its script and style, `/api/v1/summary`.

The page and its script ship inside the package (logpipe/assets/dashboard.*): no CDN, no
third-party code, charts drawn as SVG by our own script. With a token configured
($LOGPIPE_DASHBOARD_TOKEN; required on a non-loopback address) the page and the API need it,
as `Authorization: Bearer <token>` or `?token=` (a browser's first navigation cannot send a header).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from importlib import resources
from typing import Protocol
from urllib.parse import parse_qs

from logpipe.metrics.dashboard import Dashboard

TOKEN_ENV = "LOGPIPE_DASHBOARD_TOKEN"
Response = tuple[int, str, bytes]

_ASSETS = {"/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
           "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
           "/": ("dashboard.html", "text/html; charset=utf-8")}
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
                    "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer"}


class ExtraRoutes(Protocol):
    """What the metrics server asks of additional routes (None: not mine, fall through)."""

    def handle(self, path: str, query: str, authorization: str | None) -> Response | None: ...


class DashboardStartError(ValueError):
    pass


def is_loopback_host(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _asset(name: str) -> bytes:
    return resources.files("logpipe").joinpath("assets", name).read_bytes()


class DashboardRoutes:
    """Serves the dashboard; refuses to be built for a non-loopback host without a token."""

    def __init__(self, dashboard: Dashboard, host: str, token: str | None = None) -> None:
        token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        if not is_loopback_host(host) and not token:
            raise DashboardStartError(
                f"the dashboard on non-loopback address {host or '0.0.0.0'!r} needs ${TOKEN_ENV} "
                "(or listen on 127.0.0.1)")
        self.dashboard = dashboard
        self.token = token
        self._assets = {path: (_asset(name), ctype) for path, (name, ctype) in _ASSETS.items()}

    def _authorised(self, query: str, authorization: str | None) -> bool:
        if not self.token:
            return True
        given = ""
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer":
                given = value.strip()
        if not given:
            given = (parse_qs(query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def handle(self, path: str, query: str, authorization: str | None) -> Response | None:
        if path in ("/dashboard.js", "/dashboard.css"):
            body, ctype = self._assets[path]
            return 200, ctype, body
        if path not in ("/", "/api/v1/summary"):
            return None
        if not self._authorised(query, authorization):
            return 401, "application/json", b'{"error":"dashboard token required (Bearer or ?token=)"}'
        if path == "/":
            body, ctype = self._assets[path]
            return 200, ctype, body
        return 200, "application/json", self.dashboard.summary_json()
