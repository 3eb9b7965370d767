"""logpipe.health: readiness with per-check timeouts, caching, state-change logging, guarded details."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import httpx
import pytest

from logpipe import health
from logpipe.health import HealthChecks


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def asgi_get(app, path: str, client: tuple[str, int] = ("127.0.0.1", 5000), headers=None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
            return await c.get(path, headers=headers)
    return asyncio.run(go())


@pytest.fixture
def release():
    ev = threading.Event()
    yield ev
    ev.set()


def test_hung_check_reported_timed_out_quickly_and_not_started_twice(release):
    clock = FakeClock()
    checks = HealthChecks(cache_s=1.0, max_workers=2, clock=clock)
    calls = {"hung": 0}

    def hung() -> None:
        calls["hung"] += 1
        release.wait(30)

    checks.add("db", hung, timeout_s=0.2)
    checks.add("disk", lambda: True, timeout_s=1.0)
    app = health.asgi(None, checks)
    t0 = time.monotonic()
    r = asgi_get(app, "/health/ready")
    elapsed = time.monotonic() - t0
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unready"
    assert body["checks"]["db"]["state"] == "timed_out"
    assert body["checks"]["disk"]["state"] == "ok"
    assert elapsed < 5.0  # bounded by the 0.2 s timeout, not by the 30 s hang
    for _ in range(3):  # later probes (cache expired) report it again without starting it again
        clock.t += 2.0
        r = asgi_get(app, "/health/ready")
        assert r.status_code == 503 and r.json()["checks"]["db"]["state"] == "timed_out"
    assert calls["hung"] == 1
    live = [t for t in threading.enumerate() if t.name.startswith("logpipe-health")]
    assert len(live) <= 2
    assert asgi_get(app, "/health").status_code == 200  # liveness does not run checks
    checks.close()


def test_state_changes_are_logged_once_each():
    clock = FakeClock()
    checks = HealthChecks(cache_s=1.0, clock=clock)
    state = {"ok": True}

    def queue_depth() -> bool:
        if not state["ok"]:
            raise RuntimeError("queue depth 9000 > 5000")
        return True

    checks.add("queue", queue_depth)
    seen: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger("logpipe.health")
    h = Catch(level=logging.DEBUG)
    logger.addHandler(h)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        app = health.wsgi(None, checks)
        client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://svc")
        codes = []
        for ok in (True, True, False, False, False, True, True):
            state["ok"] = ok
            clock.t += 2.0
            codes.append(client.get("/health/ready").status_code)
    finally:
        logger.removeHandler(h)
        logger.setLevel(old_level)
        checks.close()
    assert codes == [200, 200, 503, 503, 503, 200, 200]
    changes = [(r.health_check, r.previous_state, r.health_state) for r in seen]
    assert changes == [("queue", "ok", "failing"), ("queue", "failing", "ok")]
    assert "queue depth 9000" in seen[0].getMessage()


def test_results_cached_for_the_configured_time():
    clock = FakeClock()
    checks = HealthChecks(cache_s=1.5, clock=clock)
    calls = []
    checks.add("ping", lambda: calls.append(1))
    app = health.asgi(None, checks)
    for _ in range(5):
        assert asgi_get(app, "/health/ready").status_code == 200
    assert len(calls) == 1
    clock.t += 1.0
    asgi_get(app, "/health/ready")
    assert len(calls) == 1
    clock.t += 1.0
    asgi_get(app, "/health/ready")
    assert len(calls) == 2
    checks.close()


def test_detailed_only_for_loopback_or_token(monkeypatch):
    monkeypatch.delenv("LOGPIPE_HEALTH_TOKEN", raising=False)
    checks = HealthChecks()
    checks.add("ok", lambda: None)
    app = health.asgi(None, checks, token="s3cret")
    r = asgi_get(app, "/health/detailed")
    assert r.status_code == 200
    body = r.json()
    assert body["process"]["rss_bytes"] > 0 and body["process"]["open_fds"] > 0
    assert body["system"]["disk"]["total_bytes"] > 0
    assert "logging_queue" in body and body["checks"]["ok"]["state"] == "ok"
    outside = ("10.1.2.3", 40000)
    assert asgi_get(app, "/health/detailed", client=outside).status_code == 403
    assert asgi_get(app, "/health/detailed", client=outside,
                    headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert asgi_get(app, "/health/detailed", client=outside,
                    headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert asgi_get(app, "/health/ready", client=outside).status_code == 200
    checks.close()


def test_detailed_reports_the_logging_queue(tmp_path):
    from logpipe.emit.setup import setup_logging, shutdown_logging

    setup_logging("svc", log_dir=tmp_path, console="off")
    try:
        app = health.wsgi(None, HealthChecks())
        client = httpx.Client(transport=httpx.WSGITransport(app=app, remote_addr="127.0.0.1"),
                              base_url="http://svc")
        q = client.get("/health/detailed").json()["logging_queue"]
        assert q["dropped_total"] == 0 and q["depth"] >= 0 and q["limit"] > 0
    finally:
        shutdown_logging()


def test_other_paths_go_to_the_wrapped_app():
    def inner(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    app = health.wsgi(inner, HealthChecks())
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://svc")
    assert client.get("/orders").text == "hello"
    assert client.get("/health").json()["status"] == "alive"


def test_a_pool_full_of_hung_checks_says_so_instead_of_growing(release):
    clock = FakeClock()
    checks = HealthChecks(cache_s=1.0, max_workers=1, clock=clock)
    checks.add("hung", lambda: release.wait(30), timeout_s=0.2)
    checks.add("fine", lambda: True, timeout_s=0.2)
    body = checks.readiness().as_dict()["checks"]
    assert body["hung"]["state"] == "timed_out"
    assert body["fine"]["state"] == "timed_out" and "workers busy" in body["fine"]["error"]
    assert len([t for t in threading.enumerate() if t.name.startswith("logpipe-health")]) == 1
    release.set()  # the hung check returns: the next probe runs both normally
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        clock.t += 2.0
        r = checks.readiness()
        if r.ready:
            break
    assert r.ready
    checks.close()
