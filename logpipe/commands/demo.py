"""`logpipe demo`: write realistic service logs into a directory with `setup_logging`.

Requests go through the real WSGI middleware into a small shop application, so the files
hold exactly what a service using logpipe would write: access records with routes and
latencies, app records with request/user/workspace context, errors with tracebacks, and
PII (emails, card numbers, tokens) that the scrubber must have masked. Latencies come
from a simulated clock, so a fast run still has a realistic distribution; timestamps too
(spread over `--span`, an hour by default, ending a minute ago), so a report of the demo's
logs shows rates and charts over time rather than one burst.
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
from logpipe.emit.processors import use_clock
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
DEMO_FILES = ("app.log", "error.log", "access.log")  # and their rotated generations (name.*)
END_BEFORE_NOW_S = 60.0  # simulated traffic ends this long before the run: no record from the future


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


def run_demo(log_dir: Path, count: int, seconds: float, seed: int = 7, span_s: float = 3600.0) -> int:
    """Write `count` requests' worth of logs into `log_dir`; returns the number of requests.

    With `seconds` 0 and `span_s` > 0 the records carry simulated times: requests arrive
    evenly (with jitter) over `span_s` seconds that end a minute before the run. With
    `seconds` > 0 the run is paced in real time and records carry the real time."""
    rng = random.Random(seed)
    clock = SimClock()
    simulated = seconds <= 0 and span_s > 0 and count > 0
    arrivals = random.Random(seed + 1)  # its own stream: the traffic itself stays the same per seed
    if simulated:
        base = time.time() - span_s - END_BEFORE_NOW_S
        use_clock(lambda: base + clock.now)
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
            if simulated:
                clock.now = max(clock.now, (i + arrivals.random()) * span_s / count)
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
        use_clock(None)
    return count


def parse_span(text: str) -> float:
    """'90s', '30m', '1h', '2d' or plain seconds -> seconds."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    value = text.strip().lower()
    scale = units.get(value[-1:], 0.0)
    try:
        seconds = float(value[:-1] if scale else value) * (scale or 1.0)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise click.BadParameter(f"{text!r} is not a duration (e.g. 30m, 1h, 2d, or seconds)")
    return seconds


def prepare_dir(log_dir: Path, append: bool, clean: bool) -> list[Path]:
    """Refuse to mix a run into existing files unless asked; with `clean`, delete the demo's own
    files (and their rotated generations) and nothing else. Returns what was deleted."""
    if append and clean:
        raise click.UsageError("--append and --clean contradict each other; pick one")
    entries = sorted(log_dir.iterdir()) if log_dir.is_dir() else []
    if not entries or append:
        return []
    if not clean:
        raise click.ClickException(
            f"{log_dir} is not empty ({len(entries)} entries, e.g. {entries[0].name}): add --append to add "
            "to the logs there, or --clean to delete the demo's files (app.log, error.log, access.log) first")
    ours = [p for p in entries if p.is_file() and any(p.name == n or p.name.startswith(n + ".") for n in DEMO_FILES)]
    for p in ours:
        p.unlink()
    return ours


@click.command("demo")
@click.option("--dir", "log_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("logs"),
              show_default=True, help="Directory to write app.log, error.log and access.log into.")
@click.option("--count", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Number of simulated requests.")
@click.option("--seconds", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Spread the requests over this many seconds (0 = as fast as possible), e.g. to watch `logpipe tail`.")
@click.option("--span", "span", default="1h", show_default=True,
              help="Spread the records' timestamps over this long, ending a minute ago (30m, 1h, 2d; 0 = the time "
                   "of writing). With --seconds the times are real.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed (same seed, same traffic).")
@click.option("--append", is_flag=True, help="Add to the logs already in --dir.")
@click.option("--clean", is_flag=True, help="Delete the demo's files (app.log, error.log, access.log and their "
                                            "rotated generations) in --dir first; other files are left alone.")
def command(log_dir: Path, count: int, seconds: float, span: str, seed: int, append: bool, clean: bool) -> None:
    """Write realistic service logs (access, app, errors with tracebacks, scrubbed PII) into a directory.

    A directory that is not empty is refused unless --append or --clean says what to do with it.
    """
    from logpipe.emit.setup import LoggingSetupError

    span_s = parse_span(span)
    removed = prepare_dir(log_dir, append, clean)
    if removed:
        click.echo(f"removed {len(removed)} demo files from {log_dir}")
    try:
        run_demo(log_dir, count, seconds, seed, span_s)
    except LoggingSetupError as exc:
        raise click.ClickException(str(exc)) from None
    sizes = ", ".join(f"{p.name} ({p.stat().st_size:,} bytes)" for p in sorted(log_dir.glob("*.log")))
    click.echo(f"wrote {count} requests to {log_dir}: {sizes}")
