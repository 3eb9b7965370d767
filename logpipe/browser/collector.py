"""The browser-events endpoint's logic, shared by the ASGI and WSGI apps.

A beacon is checked in this order: method, origin (CORS allow-list), per-client rate, size,
schema. Each failure is counted by reason (`counts()`), answered with a status a browser can
ignore, and summarised in at most one warning record a minute, so a flood of bad beacons can
neither crash the service nor make it log unbounded text. Accepted events become one record
each (`event.kind = "browser"`) through the service's logging, scrubbed like every record.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson

from logpipe import fields as F
from logpipe.browser import schema as S
from logpipe.browser.limits import RateLimiter
from logpipe.metrics.routes import normalise_path

log = logging.getLogger("logpipe.browser")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

Identity = Callable[[], Mapping[str, Any]]


@dataclass
class Request:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    client: str
    host_origin: str  # scheme://host of this request (same-origin beacons need no allow-list)
    body: bytes = b""
    body_too_large: bool = False


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class BrowserConfig:
    prefix: str = "/_logpipe"
    allowed_origins: tuple[str, ...] = ()  # other origins allowed to send beacons ("*" = any)
    limits: S.Limits = field(default_factory=S.Limits)
    rate_per_s: float = 5.0
    rate_burst: int = 20
    warn_every_s: float = 60.0


class BrowserEvents:
    """Serves `<prefix>/logpipe.js` and accepts `POST <prefix>/events`."""

    def __init__(self, config: BrowserConfig | None = None, *, identity: Identity | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or BrowserConfig()
        self.identity = identity
        self.clock = clock
        self.limiter = RateLimiter(self.config.rate_per_s, self.config.rate_burst, clock=clock)
        self.script_path = self.config.prefix + "/logpipe.js"
        self.events_path = self.config.prefix + "/events"
        self.stats_path = self.config.prefix + "/stats"
        self._script = resources.files("logpipe").joinpath("assets", "logpipe.js").read_bytes()
        self._lock = threading.Lock()
        self._accepted: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._unreported: Counter[str] = Counter()
        self._last_warn = -1e18

    def handles(self, path: str) -> bool:
        return path in (self.script_path, self.events_path, self.stats_path)

    def counts(self) -> dict[str, dict[str, int]]:
        """Accepted events by type and rejected ones by reason, since start."""
        with self._lock:
            return {"accepted": dict(self._accepted), "rejected": dict(self._rejected)}

    # -- request handling -------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if req.path == self.script_path:
            if req.method not in ("GET", "HEAD"):
                return Response(405, headers={"Allow": "GET"})
            return Response(200, self._script, "text/javascript; charset=utf-8",
                            {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})
        if req.path == self.stats_path:  # counts for operators and tests; loopback only
            if req.method != "GET" or not _loopback(req.client):
                return Response(403, b'{"error":"stats are served to loopback clients only"}')
            return Response(200, orjson.dumps(self.counts()), headers={"Cache-Control": "no-store"})
        origin = req.headers.get("origin")
        cors = self._cors(origin, req.host_origin)
        if req.method == "OPTIONS":
            if cors is None:
                return self._reject(S.ORIGIN, 403)
            return Response(204, headers={**cors, "Access-Control-Allow-Methods": "POST",
                                          "Access-Control-Allow-Headers": "Content-Type",
                                          "Access-Control-Max-Age": "600"})
        if req.method != "POST":
            return Response(405, headers={"Allow": "POST, OPTIONS"})
        if cors is None:
            return self._reject(S.ORIGIN, 403)
        if not self.limiter.allow(req.client):
            return self._reject(S.RATE_LIMITED, 429, cors)
        if req.body_too_large or len(req.body) > self.config.limits.max_beacon_bytes:
            return self._reject(S.TOO_LARGE, 413, cors)
        parsed = S.parse_beacon(req.body, self.config.limits)
        if parsed.events:
            self._log_events(parsed, req)
        with self._lock:
            self._accepted.update(e["type"] for e in parsed.events)
        self._count_rejects(parsed.rejects)
        status = 200 if parsed.events or not parsed.rejects else 400
        body = orjson.dumps({"accepted": len(parsed.events), "rejected": dict(parsed.rejects)})
        return Response(status, body, headers=cors)

    def _cors(self, origin: str | None, own: str) -> dict[str, str] | None:
        """CORS headers for an allowed origin, {} for no/same origin, None when refused. No cookies."""
        if not origin or origin == own:
            return {}
        allowed = self.config.allowed_origins
        if "*" in allowed:
            return {"Access-Control-Allow-Origin": "*"}
        if origin in allowed:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return None

    def _reject(self, reason: str, status: int, headers: dict[str, str] | None = None) -> Response:
        self._count_rejects(Counter({reason: 1}))
        return Response(status, orjson.dumps({"rejected": {reason: 1}}), headers=headers or {})

    def _count_rejects(self, rejects: Counter[str]) -> None:
        if not rejects:
            return
        with self._lock:
            self._rejected.update(rejects)
            self._unreported.update(rejects)
            now = self.clock()
            if now - self._last_warn < self.config.warn_every_s:
                return
            self._last_warn = now
            report, self._unreported = dict(self._unreported), Counter()
        log.warning("browser beacons rejected: %s", ", ".join(f"{k}={v}" for k, v in sorted(report.items())),
                    extra={"browser_rejected": report})

    # -- records -----------------------------------------------------------------------------------
    def _log_events(self, parsed: S.Parsed, req: Request) -> None:
        ident = dict(self.identity()) if self.identity is not None else {}
        common: dict[str, Any] = {F.EVENT_KIND: F.KIND_BROWSER}
        if parsed.page_request_id:
            common[F.REQUEST_ID] = parsed.page_request_id
        for key in (F.USER_ID, F.WORKSPACE_ID):
            if ident.get(key):
                common[key] = ident[key]
        ua = req.headers.get("user-agent")
        if ua:
            common[F.USER_AGENT] = ua[:300]
        for ev in parsed.events:
            extra = dict(common)
            kind = ev["type"]
            extra[F.BROWSER_TYPE] = kind
            extra[F.PAGE_PATH] = ev["path"]
            extra[F.PAGE_ROUTE] = normalise_path(ev["path"])
            level = logging.INFO
            if kind == "vital":
                extra.update({F.VITAL_NAME: ev["name"], F.VITAL_VALUE: ev["value"], F.VITAL_RATING: ev["rating"]})
                msg = f"web vital {ev['name']} {ev['value']:g} ({ev['rating']}) on {extra[F.PAGE_ROUTE]}"
            elif kind == "error":
                level = logging.ERROR
                exc = {"type": ev["error_type"], "message": ev["message"], "stack": ev["stack"]}
                if ev.get("source"):
                    exc["source"] = ev["source"]
                for k in ("line", "col"):
                    if k in ev:
                        exc[k] = ev[k]
                extra[F.EXCEPTION] = exc
                msg = f"javascript error on {extra[F.PAGE_ROUTE]}: {ev['message'][:200]}"
            elif kind == "custom":
                extra.update({F.CUSTOM_NAME: ev["name"], F.CUSTOM_PROPS: ev["props"]})
                msg = f"browser event {ev['name']} on {extra[F.PAGE_ROUTE]}"
            else:
                if ev.get("referrer_path"):
                    extra[F.PAGE_REFERRER] = ev["referrer_path"]
                msg = f"page view {extra[F.PAGE_ROUTE]}"
            log.log(level, msg, extra=extra)
