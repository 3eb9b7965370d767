"""/metrics content: request/latency families, windows, logs, pipeline self-metrics, alerts."""

from __future__ import annotations

import time

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from logpipe.metrics.alerts import AlertEngine, AlertRule
from logpipe.metrics.prometheus import make_registry
from logpipe.metrics.tap import LogMetricsTap
from logpipe.stages import FileStats, PipelineStats


class Clock:
    def __init__(self) -> None:
        self.t = 3_000_000.0

    def __call__(self) -> float:
        return self.t


def _samples(tap: LogMetricsTap) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(make_registry(tap)).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_families_windows_and_self_metrics() -> None:
    clock = Clock()
    stats = PipelineStats(lines_read=120, delivered=100, dead_lettered=2, dropped={"throttle": 7},
                          started_at=clock.t - 50, last_ack_at=time.time() - 4, last_sink_latency_s=0.25)
    stats.files["/logs/access.log"] = FileStats("/logs/access.log", size=10_000, acked_offset=9_000)
    engine = AlertEngine([AlertRule("errors", "error_rate", 60, ">", 0.1, 0, "critical", 600)])
    tap = LogMetricsTap(max_routes_per_method=2, interval_s=60, stats=stats, alerts=engine, clock=clock)
    # two minutes ago: slow GETs
    tap.observe([{"method": "GET", "path": "/a", "status": 200, "duration_ms": 2000.0}] * 10)
    clock.t += 120
    tap.observe(
        [{"method": "GET", "path": "/a", "status": 200, "duration_ms": 10.0}] * 20
        + [{"method": "GET", "path": f"/p{i}/x", "status": 503, "duration_ms": 30.0} for i in range(5)]
        + [{"method": "GET", "path": "/a", "status": 200, "duration_ms": -1}]
        + [{"level": "error", "exception": {"type": "KeyError"}}, {"level": "info"}]
    )
    tap.tick(clock.t + 6)
    s = _samples(tap)

    def v(name: str, **labels: str) -> float:
        return s[(name, tuple(sorted(labels.items())))]

    assert v("logpipe_http_requests_total", route="/a", method="GET", status_class="2xx") == 31
    # the cap of 2 routes per method: /a and /p0/x kept, /p1..4/x folded
    assert v("logpipe_http_requests_total", route="{other}", method="GET", status_class="5xx") == 4
    assert v("logpipe_routes_folded_total") == 4
    assert v("logpipe_http_invalid_durations_total", route="/a", method="GET") == 1
    assert v("logpipe_http_request_duration_seconds_count", route="/a", method="GET") == 30
    assert v("logpipe_http_request_duration_seconds_bucket", route="/a", method="GET", le="0.01") == 20
    assert v("logpipe_http_request_duration_seconds_bucket", route="/a", method="GET", le="2") == 30
    assert abs(v("logpipe_http_request_duration_seconds_sum", route="/a", method="GET") - 20.2) < 1e-9
    # windows: the slow minute is in 5m, not in 1m
    assert v("logpipe_http_request_duration_window_ms", route="*", method="*", window="5m", quantile="0.99") > 1900
    assert v("logpipe_http_request_duration_window_ms", route="*", method="*", window="1m", quantile="0.99") < 31
    assert abs(v("logpipe_http_error_rate_window", route="*", method="*", window="1m") - 5 / 26) < 1e-9
    assert abs(v("logpipe_http_error_rate_window", route="*", method="*", window="since_start") - 5 / 36) < 1e-9
    assert abs(v("logpipe_http_request_duration_window_ms", route="/a", method="GET", window="since_start",
                 quantile="0.5") - 10.0) <= 0.1
    assert v("logpipe_log_records_total", level="error") == 1
    assert v("logpipe_exceptions_total", type="KeyError") == 1
    # pipeline self-metrics straight from PipelineStats
    assert v("logpipe_lines_read_total") == 120
    assert v("logpipe_records_delivered_total") == 100
    assert v("logpipe_records_dead_lettered_total") == 2
    assert v("logpipe_records_dropped_total", reason="throttle") == 7
    assert v("logpipe_file_bytes_behind", path="/logs/access.log") == 1000
    assert v("logpipe_bytes_behind") == 1000
    assert v("logpipe_sink_latency_seconds") == 0.25
    assert 3 <= v("logpipe_last_ack_age_seconds") < 60
    assert v("logpipe_alert_firing", alert="errors", severity="critical") == 1
    assert v("logpipe_alert_events_total", state="firing") == 1


def test_scrapes_during_observe_are_consistent_and_never_fail() -> None:
    import threading

    from logpipe.metrics.synth import records, traffic

    recs = records(traffic(40_000, seed=8))
    tap = LogMetricsTap(interval_s=10)
    errors: list[BaseException] = []
    stop = threading.Event()
    scrapes = [0]

    def scraper() -> None:
        registry = make_registry(tap)
        while not stop.is_set():
            try:
                text = generate_latest(registry).decode()
                assert "logpipe_http_requests_total" in text or scrapes[0] == 0
                scrapes[0] += 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    th = threading.Thread(target=scraper)
    th.start()
    try:
        for i in range(0, len(recs), 1000):
            tap.observe(recs[i:i + 1000])
    finally:
        stop.set()
        th.join(10)
    assert not errors, errors[0]
    assert scrapes[0] >= 1 and tap.internal_errors == 0
    total = sum(v for (name, _labels), v in _samples(tap).items() if name == "logpipe_http_requests_total")
    assert total == 40_000
