"""The demo service: a FastAPI app logging through logpipe, with chaos you can steer.

It exists so the whole road (service -> rotated files -> sidecar -> Elasticsearch ->
Kibana / `logpipe query`) has realistic traffic: routes with path parameters (so access
records carry `route` templates), handlers that log app records inside the request
context, endpoints that are sometimes slow and sometimes fail.

Run it with uvicorn's factory mode so importing the module has no side effects:

    DEMO_LOG_DIR=logs uvicorn --factory demo.app:create_app --port 8000

Chaos is seeded (DEMO_SEED) and can be forced per request: `?fail=503` answers that status,
`?delay_ms=250` sleeps that long — the traffic generator uses these for 5xx bursts.

It also shows the three service-side extras: `/` is a page whose browser events (page views,
Web Vitals, JavaScript errors) arrive through `logpipe.browser` as records in browser.log with the
page's request id; `/login?user=u-42` sets a demo cookie that a tiny auth middleware turns into
`user_id` context (beacons get identity from it, never from their body); `/health`,
`/health/ready`, `/health/detailed` come from `logpipe.health`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

#: Environment variables the demo reads (the compose test checks this list against docker-compose.yml).
ENV_VARS = ("DEMO_LOG_DIR", "DEMO_SEED", "DEMO_ERROR_RATE", "DEMO_SLOW_RATE", "DEMO_SLOW_MS", "DEMO_CONSOLE")


@dataclass
class Settings:
    """Chaos and logging knobs, from DEMO_* environment variables by default."""

    log_dir: str = "logs"
    seed: int = 42
    error_rate: float = 0.01  # share of requests that fail with a 5xx on their own
    slow_rate: float = 0.05  # share of requests that take slow_ms longer
    slow_ms: float = 300.0
    console: str = "off"  # auto | json | pretty | off: the files are what the sidecar reads
    service: str = field(default_factory=lambda: os.environ.get("LOGPIPE_SERVICE", "demo-api"))

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            log_dir=env.get("DEMO_LOG_DIR", "logs"),
            seed=int(env.get("DEMO_SEED", "42")),
            error_rate=float(env.get("DEMO_ERROR_RATE", "0.01")),
            slow_rate=float(env.get("DEMO_SLOW_RATE", "0.05")),
            slow_ms=float(env.get("DEMO_SLOW_MS", "300")),
            console=env.get("DEMO_CONSOLE", "off"),
        )


class UpstreamTimeout(Exception):
    """What a failing dependency looks like in the logs (shows up under 'top errors')."""


class Chaos:
    """Seeded failures and slowness, overridable per request with ?fail= and ?delay_ms=."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)

    def forced_status(self, request: Request) -> int | None:
        raw = request.query_params.get("fail")
        if raw is None:
            if self.rng.random() < self.settings.error_rate:
                return self.rng.choice((500, 502, 503))
            return None
        try:
            status = int(raw)
        except ValueError:
            status = 500
        return status if 400 <= status <= 599 else 500

    async def maybe_sleep(self, request: Request, base_ms: float) -> None:
        raw = request.query_params.get("delay_ms")
        if raw is not None:
            delay = max(0.0, float(raw))
        else:
            delay = base_ms * (0.5 + self.rng.random())
            if self.rng.random() < self.settings.slow_rate:
                delay += self.settings.slow_ms
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app and set up logging (files under settings.log_dir)."""
    from logpipe import bind_context, get_logger, setup_logging
    from logpipe.browser import BrowserASGI, BrowserConfig, BrowserEvents, script_tag
    from logpipe.emit.context import get_context
    from logpipe.health import HealthASGI, HealthChecks
    from logpipe.middleware import LoggingMiddleware

    settings = settings or Settings.from_env()
    setup_logging(service=settings.service, log_dir=settings.log_dir, console=settings.console)
    log = get_logger("demo.api")
    legacy = logging.getLogger("demo.legacy")  # stdlib calls land in the same JSON shape
    chaos = Chaos(settings)
    app = FastAPI(title="logpipe demo", docs_url=None, redoc_url=None)
    # Outermost last: logging (request id, access record) -> demo auth -> beacons -> health -> routes.
    app.add_middleware(HealthASGI, checks=demo_checks(settings, HealthChecks(cache_s=1.0)))
    app.add_middleware(BrowserASGI, events=BrowserEvents(BrowserConfig()))
    app.add_middleware(DemoAuth)
    app.add_middleware(LoggingMiddleware)

    async def chaos_gate(request: Request, base_ms: float, what: str) -> None:
        await chaos.maybe_sleep(request, base_ms)
        status = chaos.forced_status(request)
        if status is not None:
            try:
                raise UpstreamTimeout(f"{what}: upstream did not answer in time")
            except UpstreamTimeout:
                log.error("request failed", exc_info=True, answered=status)
            raise HTTPException(status_code=status, detail=f"{what} failed")

    @app.get("/login")
    async def login(user: str = "u-1") -> RedirectResponse:
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie("demo_user", user[:32], httponly=True, samesite="strict")
        return resp

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE.replace("{script_tag}", script_tag(get_context().get("request_id")))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/users/{user_id}")
    async def get_user(user_id: int, request: Request) -> dict[str, Any]:
        bind_context(user_id=str(user_id))  # request-scoped: the access record carries it too
        await chaos_gate(request, 2.0, "user lookup")
        log.info("user fetched")
        return {"id": user_id, "name": f"user-{user_id}"}

    @app.get("/api/v1/workspaces/{workspace_id}/invoices/{invoice_id}")
    async def get_invoice(workspace_id: str, invoice_id: int, request: Request) -> dict[str, Any]:
        bind_context(workspace_id=workspace_id)
        await chaos_gate(request, 5.0, "invoice lookup")
        log.info("invoice fetched", invoice_id=invoice_id)
        return {"workspace": workspace_id, "invoice": invoice_id, "amount_cents": invoice_id % 9000 + 100}

    @app.post("/api/v1/workspaces/{workspace_id}/invoices")
    async def create_invoice(workspace_id: str, request: Request) -> JSONResponse:
        bind_context(workspace_id=workspace_id)
        await chaos_gate(request, 8.0, "invoice create")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        amount = body.get("amount_cents") if isinstance(body, dict) else None
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            legacy.warning("invoice rejected", extra={"reason": "bad amount"})
            return JSONResponse({"error": "amount_cents must be a positive integer"}, status_code=422)
        log.info("invoice created", amount_cents=amount)
        return JSONResponse({"workspace": workspace_id, "amount_cents": amount}, status_code=201)

    @app.get("/api/v1/search")
    async def search(request: Request, q: str = "") -> dict[str, Any]:
        await chaos_gate(request, 20.0, "search")
        log.info("search done", query_length=len(q))
        return {"q": q, "hits": len(q) % 7}

    @app.get("/api/v1/boom")
    async def boom() -> None:
        raise RuntimeError("unhandled demo failure (the middleware logs it once, with its stack)")

    return app


class DemoAuth:
    """Stands in for a real auth layer: the `demo_user` cookie becomes `user_id` context."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            from logpipe import bind_context

            for name, value in scope.get("headers", ()):
                if name == b"cookie":
                    for part in value.decode("latin-1").split(";"):
                        key, _, val = part.strip().partition("=")
                        if key == "demo_user" and val.replace("-", "").isalnum():
                            bind_context(user_id=val)
        await self.app(scope, receive, send)


def demo_checks(settings: Settings, checks: Any) -> Any:
    """Readiness: the log directory has room, and the logging queue is not backed up."""
    import shutil

    from logpipe.emit.setup import queue_stats

    def disk() -> bool:
        usage = shutil.disk_usage(settings.log_dir)
        return usage.free / usage.total > 0.01

    def log_queue() -> bool:
        q = queue_stats()
        return q is None or q["depth"] < q["limit"] // 2

    checks.add("log_dir_space", disk, timeout_s=0.5)
    checks.add("log_queue", log_queue, timeout_s=0.5)
    return checks


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>logpipe demo</title>
{script_tag}
<style>body{font:16px system-ui;margin:2rem;max-width:50rem} h1{font-size:3rem} button{font-size:1.2rem;margin:.5rem}</style>
</head><body>
<h1>logpipe demo shop</h1>
<p id="hero">Invoices, users and searches: every request this page makes is logged by the service,
and the page's own experience (page view, Web Vitals, JavaScript errors) arrives as browser records
with this page's request id.</p>
<button id="work">Recalculate totals</button>
<button id="break">Break something</button>
<p id="out"></p>
<script>
document.getElementById("work").addEventListener("click", function () {
  var t = performance.now(); while (performance.now() - t < 60) {}  // a slow handler: INP worth measuring
  document.getElementById("out").textContent = "totals recalculated";
});
document.getElementById("break").addEventListener("click", function breakTheDemo() {
  throw new TypeError("demo: cannot read the invoice total");
});
</script>
</body></html>
"""
