"""`/api/v1/summary` without a browser: the README's "Live dashboard" figures on a moved clock.

Windows (1 min / 5 min / since start), the red 5% 5xx and amber 25% 4xx thresholds, 10 s
sparkline slots, the five slowest routes, alert states with cooldown, the pipeline panel's
figures, the once-a-second cache and the pinned `logpipe.summary/1` key list.
"""

from __future__ import annotations

import threading

import pytest

from logpipe.metrics.alerts import AlertEngine, AlertRule
from logpipe.metrics.dashboard import Dashboard
from logpipe.metrics.pagevitals import PageVitals
from logpipe.metrics.tap import LogMetricsTap
from logpipe.stages import FileStats, PipelineStats

T0 = 1_000_000.0  # a multiple of the 10 s slot


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _req(path: str, status: int = 200, dur: float = 10.0, method: str = "GET") -> dict:
    return {"method": method, "path": path, "status": status, "duration_ms": dur}


def _board(clock: Clock, alerts: AlertEngine | None = None) -> tuple[LogMetricsTap, PipelineStats, Dashboard]:
    stats = PipelineStats(started_at=clock())
    tap = LogMetricsTap(interval_s=0, clock=clock, stats=stats, alerts=alerts, eval_interval_s=0.0)
    pages = PageVitals(clock)
    tap.agg.listeners.append(pages.on_batch)
    return tap, stats, Dashboard(tap, stats, clock=clock, pages=pages)


def _row(summary: dict, route: str, method: str = "GET") -> dict:
    return next(r for r in summary["routes"] if r["route"] == route and r["method"] == method)


def test_per_route_and_method_over_1m_5m_and_since_start() -> None:
    clock = Clock()
    tap, _stats, board = _board(clock)
    tap.observe([_req("/a") for _ in range(10)])
    clock.t += 120
    tap.observe([_req("/a", 404) for _ in range(30)] + [_req("/a", 500, method="POST") for _ in range(6)])
    s = board.summary()
    get, post = _row(s, "/a"), _row(s, "/a", "POST")
    assert (get["1m"]["count"], get["5m"]["count"], get["since_start"]["count"]) == (30, 40, 40)
    assert get["1m"]["rate_per_s"] == pytest.approx(30 / 60)
    assert get["1m"]["status_4xx"] == 30 and get["1m"]["client_error_rate"] == 1.0
    assert get["5m"]["client_error_rate"] == pytest.approx(30 / 40)
    assert post["1m"]["status_5xx"] == 6 and post["1m"]["error_rate"] == 1.0
    clock.t += 400  # everything has left the 5 min window; since start keeps it
    s = board.summary()
    get = _row(s, "/a")
    assert (get["1m"]["count"], get["5m"]["count"], get["since_start"]["count"]) == (0, 0, 40)


def test_red_above_5_percent_5xx_and_amber_above_25_percent_4xx_over_1m() -> None:
    clock = Clock()
    tap, _stats, board = _board(clock)
    batch = []
    for route, bad, status in (("/five", 5, 500), ("/six", 6, 500), ("/q25", 25, 404), ("/q26", 26, 404)):
        batch += [_req(route, status) for _ in range(bad)] + [_req(route) for _ in range(100 - bad)]
    tap.observe(batch)
    s = board.summary()
    states = {r["route"]: r["state"] for r in s["routes"]}
    assert states == {"/five": "ok", "/six": "error", "/q25": "ok", "/q26": "warn"}
    # the state follows the 1 min window: once the burst is older, the route is no longer red
    clock.t += 70
    tap.observe([_req("/six") for _ in range(10)])
    assert _row(board.summary(), "/six")["state"] == "ok"


def test_sparkline_points_per_10s_slot_and_the_five_slowest_routes() -> None:
    clock = Clock()
    tap, _stats, board = _board(clock)
    for i, n in enumerate((20, 40, 10)):
        clock.t = T0 + 10 * i + 1
        tap.observe([_req("/s", 500 if j < i else 200, dur=5.0 * (i + 1)) for j in range(n)])
    tap.observe([_req(f"/r{k}", dur=100.0 * k) for k in range(1, 8) for _ in range(5)])
    series = board.summary()["series"]
    assert series["step_s"] == 10
    pts = series["points"]
    assert [p["requests_per_s"] for p in pts] == [2.0, 4.0, 1.0 + 3.5]
    assert [p["errors_5xx_per_s"] for p in pts] == [0.0, 0.1, 0.2]
    assert pts[0]["p95_ms"] == pytest.approx(5.0, rel=0.01) and pts[1]["p95_ms"] == pytest.approx(10.0, rel=0.01)
    slowest = board.summary()["slowest"]
    assert [r["route"] for r in slowest] == ["/r7", "/r6", "/r5", "/r4", "/r3"]
    assert slowest[0]["p95_ms"] == pytest.approx(700.0, rel=0.01) and slowest[0]["count"] == 5


def test_alerts_firing_pending_resolved_for_15_minutes_with_cooldown() -> None:
    clock = Clock()
    engine = AlertEngine([
        AlertRule("fast", "error_rate", 60, ">", 0.05, 0, "critical", 900),
        AlertRule("slow_to_fire", "error_rate", 60, ">", 0.05, 600, "warning", 900),
    ])
    tap, _stats, board = _board(clock, engine)
    tap.observe([_req("/x", 500) for _ in range(50)])
    alerts = {a["name"]: a for a in board.summary()["alerts"]}
    assert alerts["fast"]["state"] == "firing" and alerts["fast"]["cooldown_remaining_s"] == 900
    assert alerts["slow_to_fire"]["state"] == "pending"
    clock.t += 70
    tap.observe([_req("/x") for _ in range(50)])
    alerts = {a["name"]: a for a in board.summary()["alerts"]}
    assert alerts["fast"]["state"] == "resolved" and alerts["fast"]["resolved_at"] is not None
    assert alerts["fast"]["cooldown_remaining_s"] == 830
    assert alerts["slow_to_fire"]["state"] == "ok"
    clock.t += 901  # resolved alerts are shown for 15 minutes
    assert {a["name"]: a["state"] for a in board.summary()["alerts"]}["fast"] == "ok"


def test_pipeline_health_figures() -> None:
    clock = Clock()
    _tap, stats, board = _board(clock)
    stats.files["/l/a.log"] = FileStats("/l/a.log", size=1000, read_offset=1000, acked_offset=1000)
    stats.files["/l/b.log"] = FileStats("/l/b.log", size=500, read_offset=500, acked_offset=500)
    board.sample()
    clock.t += 5
    stats.files["/l/b.log"].size = 800  # b falls behind after it was last seen caught up (T0)
    stats.lines_read, stats.delivered = 100, 50
    board.sample()
    clock.t += 5
    stats.lines_read, stats.delivered = 300, 150
    stats.parse_failures, stats.dead_lettered, stats.dropped = 3, 2, {"throttle": 7}
    stats.sink_error = "connection refused"
    p = board.summary()["pipeline"]
    files = {f["path"]: f for f in p["files"]}
    assert files["/l/a.log"] == {"path": "/l/a.log", "bytes_behind": 0, "lag_s": 0.0}
    assert files["/l/b.log"]["bytes_behind"] == 300 and files["/l/b.log"]["lag_s"] == 10.0
    assert p["bytes_behind"] == 300
    assert p["records_in_per_s"] == 30.0 and p["records_out_per_s"] == 15.0  # over the last 10 s
    assert (p["parse_failures"], p["dead_lettered"], p["throttled"]) == (3, 2, 7)
    assert p["sink_error"] == "connection refused" and p["sink_healthy"] is False


def test_the_summary_is_built_at_most_once_a_second_however_many_poll() -> None:
    clock = Clock()
    tap, _stats, board = _board(clock)
    tap.observe([_req("/a")])
    builds = []
    real = board.summary

    def counting(now=None):
        builds.append(now)
        return real(now)

    board.summary = counting  # type: ignore[method-assign]
    bodies: list[bytes] = []
    threads = [threading.Thread(target=lambda: bodies.extend(board.summary_json() for _ in range(20)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bodies) == 160 and len(set(bodies)) == 1 and len(builds) == 1
    clock.t += 0.9
    tap.observe([_req("/a")])
    assert board.summary_json() == bodies[0] and len(builds) == 1
    clock.t += 0.1
    assert board.summary_json() != bodies[0] and len(builds) == 2


def test_summary_schema_keys_are_pinned() -> None:
    """README "Live dashboard" lists these keys; within logpipe.summary/1 they are never renamed or removed."""
    clock = Clock()
    engine = AlertEngine([AlertRule("fast", "error_rate", 60, ">", 0.05, 0, "critical", 900)])
    tap, stats, board = _board(clock, engine)
    stats.files["/l/a.log"] = FileStats("/l/a.log", size=10)
    tap.observe([_req("/a", 500), {"event.kind": "browser", "browser.type": "pageview", "page.route": "/p"},
                 {"event.kind": "browser", "browser.type": "vital", "page.route": "/p",
                  "vital.name": "LCP", "vital.value": 900.0}])
    s = board.summary()
    assert s["schema"] == "logpipe.summary/1"
    assert set(s) >= {"schema", "generated_at", "started_at", "uptime_s", "windows", "overall", "routes",
                      "slowest", "series", "alerts", "pipeline", "pages"}
    assert s["windows"] == ["1m", "5m", "since_start"]
    stats_keys = {"count", "rate_per_s", "status_4xx", "status_5xx", "error_rate", "client_error_rate",
                  "p50_ms", "p95_ms", "p99_ms", "max_ms"}
    assert set(s["overall"]) >= {"1m", "5m", "since_start", "state"}
    route = s["routes"][0]
    assert set(route) >= {"route", "method", "state", "1m", "5m", "since_start"}
    for window in ("1m", "5m", "since_start"):
        assert set(s["overall"][window]) >= stats_keys and set(route[window]) >= stats_keys
    assert set(s["series"]) >= {"step_s", "points"}
    assert set(s["series"]["points"][0]) >= {"t", "requests_per_s", "errors_5xx_per_s", "p95_ms"}
    assert set(s["alerts"][0]) >= {"name", "severity", "state", "value", "threshold", "fired_at", "resolved_at",
                                   "cooldown_s", "cooldown_remaining_s", "suppressed"}
    assert set(s["pipeline"]) >= {"files", "records_in_per_s", "records_out_per_s", "delivered", "dead_lettered",
                                  "sink_error", "throttled", "dropped", "bytes_behind", "parse_failures"}
    assert set(s["pipeline"]["files"][0]) >= {"path", "bytes_behind", "lag_s"}
    page = s["pages"][0]
    assert set(page) >= {"route", "since_start", "5m"}
    assert set(page["since_start"]) >= {"page_views", "js_errors", "js_error_rate", "LCP"}
    assert set(page["since_start"]["LCP"]) >= {"p75", "count"}
