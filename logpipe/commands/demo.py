"""`logpipe demo`: write realistic service logs into a directory with `setup_logging`.

Requests go through the real WSGI middleware into a small shop application, so the files
hold exactly what a service using logpipe would write: access records with routes and
latencies, app records with request/user/workspace context, errors with tracebacks, and
PII (emails, card numbers, tokens) that the scrubber must have masked. Latencies come
from a simulated clock, so a fast run still has a realistic distribution.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from logpipe.emit.context import bind_context
from logpipe.emit.setup import get_logger, setup_logging, shutdown_logging
from logpipe.middleware import WSGILoggingMiddleware

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "python-requests/2.32.3",
    "okhttp/4.12.0",
    "curl/8.7.1",
)
CUSTOMERS = ("alice@example.com", "bob.smith@example.org", "carol+shop@mail.example.net", "dan@example.io")
CARDS = ("4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005")


class SimClock:
    """A monotonic clock the handlers advance by their simulated work time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, rng: random.Random, median_ms: float, tail: float = 0.02) -> None:
        ms = rng.lognormvariate(0, 0.6) * median_ms
        if rng.random() < tail:
            ms *= rng.uniform(8, 40)
        self.now += ms / 1000


class ShopApp:
    """A tiny WSGI app with the routes and failure modes of a typical API."""

    ROUTES: tuple[tuple[str, str, int], ...] = (
        ("GET", "/api/v1/items/{id}", 40), ("GET", "/api/v1/items", 15), ("POST", "/api/v1/orders", 10),
        ("GET", "/api/v1/orders/{id}", 10), ("POST", "/api/v1/login", 6), ("POST", "/api/v1/payments", 5),
        ("GET", "/healthz", 10), ("GET", "/api/v1/users/{id}", 6), ("GET", "/api/v1/users/{id}/invoices", 4),
    )

    def __init__(self, rng: random.Random, clock: SimClock) -> None:
        self.rng = rng
        self.clock = clock
        self.log = get_logger("shop.api")
        self.db = logging.getLogger("shop.db")
        self.payments = logging.getLogger("shop.payments")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        rng, route = self.rng, environ["demo.route"]
        bind_context(user_id=environ["demo.user"], workspace_id=environ["demo.workspace"])
        self.clock.work(rng, 8)
        if route == "/healthz":
            return self._reply(start_response, "200 OK", b"ok")
        if rng.random() < 0.03:
            return self._reply(start_response, "404 Not Found", b'{"error":"not found"}')
        if route == "/api/v1/login":
            email = rng.choice(CUSTOMERS)
            if rng.random() < 0.2:
                self.log.warning("login failed", email=email, password="hunter2", reason="bad_password")
                return self._reply(start_response, "401 Unauthorized", b'{"error":"unauthorized"}')
            self.log.info("login ok", email=email, session_token=f"sess_{rng.getrandbits(64):016x}")
        elif route == "/api/v1/payments":
            self.clock.work(rng, 120, tail=0.1)
            card = rng.choice(CARDS)
            self.payments.info("charging card %s for %s", card, rng.choice(CUSTOMERS),
                               extra={"amount_cents": rng.randint(100, 90_000), "currency": "EUR"})
            if rng.random() < 0.05:
                raise TimeoutError("payment gateway did not answer within 3s")
        elif route == "/api/v1/orders":
            order_id = rng.randint(10_000_000, 99_999_999)
            self.clock.work(rng, 25)
            self.log.info("order created", order_id=order_id, items=rng.randint(1, 6),
                          receipt_to=rng.choice(CUSTOMERS))
        else:
            self.clock.work(rng, 6)
            if rng.random() < 0.05:
                self.db.warning("slow query", extra={"table": "items", "rows": rng.randint(1000, 90000),
                                                     "query_ms": round(rng.uniform(150, 900), 1)})
            if rng.random() < 0.01:
                raise KeyError(f"missing cache entry {rng.randint(1, 999)}")
        return self._reply(start_response, "200 OK", b'{"ok":true,"data":[1,2,3]}' * rng.randint(1, 40))

    @staticmethod
    def _reply(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _environ(rng: random.Random, method: str, template: str) -> dict[str, Any]:
    path = template.replace("{id}", str(rng.randint(1, 5000)))
    query = ""
    roll = rng.random()
    if roll < 0.05:
        query = f"email={rng.choice(CUSTOMERS)}"
    elif roll < 0.08:
        query = f"token=tok_{rng.getrandbits(48):012x}&page=2"
    elif roll < 0.3:
        query = f"page={rng.randint(1, 9)}&limit=50"
    env = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
        "REMOTE_ADDR": f"10.0.{rng.randint(0, 3)}.{rng.randint(2, 250)}",
        "HTTP_USER_AGENT": rng.choice(USER_AGENTS), "SERVER_NAME": "shop", "SERVER_PORT": "80",
        "wsgi.url_scheme": "http", "demo.route": template,
        "demo.user": f"u-{rng.randint(1, 400)}", "demo.workspace": f"ws-{rng.randint(1, 30)}",
    }
    if rng.random() < 0.3:
        env["HTTP_X_REQUEST_ID"] = f"edge-{rng.getrandbits(40):010x}"
    return env


def run_demo(log_dir: Path, count: int, seconds: float, seed: int = 7) -> int:
    """Write `count` requests' worth of logs into `log_dir`; returns the number of requests."""
    rng = random.Random(seed)
    clock = SimClock()
    setup_logging(service="demo-shop", environment="demo", version="1.4.2", log_dir=log_dir, console="off")
    try:
        shop = ShopApp(rng, clock)
        app = WSGILoggingMiddleware(shop, timer=clock)
        routes = [(m, p) for m, p, _w in ShopApp.ROUTES]
        weights = [w for _m, _p, w in ShopApp.ROUTES]
        get_logger("shop").info("service started", workers=4, python="3.11")
        interval = seconds / count if count and seconds > 0 else 0.0
        started = time.monotonic()
        for i in range(count):
            method, template = rng.choices(routes, weights)[0]
            try:
                body = app(_environ(rng, method, template), lambda *a, **k: None)
                for _chunk in body:
                    pass
                getattr(body, "close", lambda: None)()
            except Exception:
                pass  # logged by the middleware with its stack, recorded as 500
            if interval:
                delay = started + (i + 1) * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        get_logger("shop").info("service stopping", requests=count)
    finally:
        shutdown_logging()
    return count


@click.command("demo")
@click.option("--dir", "log_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("logs"),
              show_default=True, help="Directory to write app.log, error.log and access.log into.")
@click.option("--count", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Number of simulated requests.")
@click.option("--seconds", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Spread the requests over this many seconds (0 = as fast as possible), e.g. to watch `logpipe tail`.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed (same seed, same traffic).")
def command(log_dir: Path, count: int, seconds: float, seed: int) -> None:
    """Write realistic service logs (access, app, errors with tracebacks, scrubbed PII) into a directory."""
    from logpipe.emit.setup import LoggingSetupError

    try:
        run_demo(log_dir, count, seconds, seed)
    except LoggingSetupError as exc:
        raise click.ClickException(str(exc)) from None
    sizes = ", ".join(f"{p.name} ({p.stat().st_size:,} bytes)" for p in sorted(log_dir.glob("*.log")))
    click.echo(f"wrote {count} requests to {log_dir}: {sizes}")
