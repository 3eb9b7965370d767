"""Alerts end to end: a 5xx burst fires to a local webhook, resolves, stays quiet in cooldown;
a dead webhook costs the pipeline nothing but a counted failure."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from logpipe import fields as F
from logpipe.config import from_dict
from logpipe.metrics.alerts import AlertEngine, AlertRule
from logpipe.metrics.notify import WebhookNotifier
from logpipe.metrics.runtime import start_metrics
from logpipe.metrics.tap import LogMetricsTap
from logpipe.stages import PipelineStats


class Receiver:
    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        self.status = status
        self.hits = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                outer.hits += 1
                if outer.status == 200:
                    outer.bodies.append(json.loads(body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.bodies

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Clock:
    def __init__(self) -> None:
        self.t = 2_000_000.0

    def __call__(self) -> float:
        return self.t


def _burst(n: int, status: int, dur: float = 20.0) -> list[dict]:
    return [{"method": "GET", "path": f"/api/items/{i}", "status": status, "duration_ms": dur} for i in range(n)]


def test_5xx_burst_fires_resolves_and_stays_quiet_within_cooldown(receiver: Receiver, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text('[[rules]]\nname="api_5xx"\nmetric="error_rate"\nwindow="1m"\ncomparison=">"\n'
                     'threshold=0.05\nfor="20s"\nseverity="critical"\ncooldown="10m"\nmin_count=10\n')
    cfg = from_dict({"metrics": {"interval_s": 0}, "alerts": {"file": str(rules), "webhook_url": receiver.url},
                     "inputs": [{"paths": ["x"], "service": "shop"}]})
    clock = Clock()
    rt = start_metrics(cfg, PipelineStats(), clock=clock, tick_s=3600)  # we tick by hand
    assert rt is not None
    tap = rt.tap
    try:
        tap.observe(_burst(200, 200))
        clock.t += 10
        tap.tick()
        assert tap.drain_records() == []

        tap.observe(_burst(50, 503))  # 20% 5xx in the last minute
        clock.t += 10
        tap.tick()  # condition true from here
        assert tap.drain_records() == []  # pending: `for` is 20 s
        clock.t += 10
        tap.tick()
        assert tap.drain_records() == []
        clock.t += 15
        tap.observe(_burst(10, 503))
        alerts = tap.drain_records()
        assert [(a[F.ALERT_NAME], a[F.ALERT_STATE], a[F.ALERT_SEVERITY]) for a in alerts] == [
            ("api_5xx", "firing", "critical")]
        assert alerts[0][F.EVENT_KIND] == "alert" and alerts[0][F.ALERT_THRESHOLD] == 0.05
        assert alerts[0][F.ALERT_VALUE] > 0.05 and alerts[0][F.SERVICE] == "shop"

        clock.t += 10
        tap.tick()
        assert tap.drain_records() == []  # still firing: no duplicate

        clock.t += 70  # the burst leaves the 1 min window; healthy traffic continues
        tap.observe(_burst(100, 200))
        assert [a[F.ALERT_STATE] for a in tap.drain_records()] == ["resolved"]

        tap.observe(_burst(100, 500))  # second burst, 2 minutes after the first firing
        clock.t += 25
        tap.tick()
        clock.t += 25
        tap.tick()
        assert tap.drain_records() == []  # within the 10 min cooldown: silent
        assert tap.alerts is not None and tap.alerts.states["api_5xx"].suppressed == 1
        clock.t += 70
        tap.observe(_burst(100, 200))
        assert tap.drain_records() == []  # its resolution is silent too

        clock.t += 600  # cooldown over: a new burst notifies again
        tap.observe(_burst(100, 500))
        clock.t += 25
        tap.tick()
        assert [a[F.ALERT_STATE] for a in tap.drain_records()] == ["firing"]

        bodies = receiver.wait_for(3)
        assert [b["alert"][F.ALERT_STATE] for b in bodies] == ["firing", "resolved", "firing"]
        assert all("api_5xx" in b["text"] for b in bodies)  # Slack-compatible text
        assert "[CRITICAL]" in bodies[0]["text"]
    finally:
        rt.stop()
    assert capsys.readouterr().err.count("logpipe alert:") == 3


def test_dead_or_failing_webhook_is_counted_and_never_blocks() -> None:
    failing = Receiver(status=500)
    try:
        clock = Clock()
        dead = WebhookNotifier("http://127.0.0.1:9/never", retries=2, backoff_s=0.01, timeout_s=0.5)
        erroring = WebhookNotifier(failing.url, retries=2, backoff_s=0.01, timeout_s=0.5)
        engine = AlertEngine([AlertRule("e", "error_rate", 60, ">", 0.05, 0, "critical", 600)])
        tap = LogMetricsTap(interval_s=0, alerts=engine, notifiers=[dead, erroring], clock=clock)
        t0 = time.perf_counter()
        tap.observe(_burst(100, 500))
        tap.tick(clock.t + 10)
        assert time.perf_counter() - t0 < 0.5  # the pipeline thread never waits on the webhook
        deadline = time.monotonic() + 10
        while (dead.failed < 1 or erroring.failed < 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert dead.failed == 1 and dead.attempt_failures == 3
        assert erroring.failed == 1 and failing.hits == 3  # retried with backoff, then given up
        dead.stop()
        erroring.stop()
    finally:
        failing.close()


def test_no_access_records_fires_when_traffic_stops_not_before() -> None:
    from logpipe.metrics.alerts import default_rules

    clock = Clock()
    engine = AlertEngine([r for r in default_rules() if r.name == "no_access_records"])
    tap = LogMetricsTap(interval_s=0, alerts=engine, clock=clock)
    tap.observe([{"level": "info", "message": "app only"}])
    for _ in range(40):  # 10 minutes of app logs only: nothing to say about access logs
        clock.t += 15
        tap.tick()
    assert tap.drain_records() == []
    tap.observe(_burst(5, 200))
    for _ in range(19):  # 4 min 45 s of silence: not yet
        clock.t += 15
        tap.tick()
    assert tap.drain_records() == []
    clock.t += 20
    tap.tick()
    fired = tap.drain_records()
    assert [(a[F.ALERT_NAME], a[F.ALERT_STATE], a[F.ALERT_SEVERITY]) for a in fired] == [
        ("no_access_records", "firing", "warning")]
    clock.t += 5  # alert rules are evaluated at most every 5 s
    tap.observe(_burst(1, 200))
    assert [a[F.ALERT_STATE] for a in tap.drain_records()] == ["resolved"]
