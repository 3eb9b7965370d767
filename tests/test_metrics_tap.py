"""The tap: bad input accounting, sliding windows, metric records, log levels, exceptions."""

from __future__ import annotations

import numpy as np

from logpipe import fields as F
from logpipe.metrics.synth import records as synth_records
from logpipe.metrics.synth import traffic
from logpipe.metrics.tap import LogMetricsTap


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _req(path: str = "/a", status: object = 200, dur: object = 10.0) -> dict:
    rec: dict = {"method": "GET", "path": path}
    if status is not None:
        rec["status"] = status
    if dur is not None:
        rec["duration_ms"] = dur
    return rec


def test_bad_input_counts_toward_volume_not_latency() -> None:
    tap = LogMetricsTap(interval_s=0)
    tap.observe([
        _req(dur=10.0), _req(dur=20.0), _req(dur=30.0),
        _req(dur=None),  # no duration: volume + status, no latency
        {**_req(dur=40.0), "status": None},  # no usable status: volume + latency, not in error rate
        _req(status=500, dur=-5.0),  # negative: invalid
        _req(dur=90_000_000.0),  # more than a day: invalid
        _req(dur="fast"),  # junk: invalid
        _req(status="503", dur="50"),  # strings that are numbers are fine
    ])
    st = tap.agg.total.overall_stats()
    assert st["count"] == 9
    assert st["invalid_durations"] == 3
    assert st["latency_count"] == 5  # 10, 20, 30, 40, 50
    assert st["max_ms"] == 50.0
    assert st["status_5xx"] == 2
    assert st["error_rate"] == 2 / 8  # the record without status is not in the denominator
    assert tap.internal_errors == 0


def test_levels_exceptions_and_derived_records_are_not_traffic() -> None:
    tap = LogMetricsTap(interval_s=0)
    tap.observe([
        {"level": "info", "message": "hi"},
        {"level": "error", "message": "db down", "exception": {"type": "OperationalError", "message": "x"}},
        {"level": "error", "message": "boom", "exception": {"type": "KeyError"}},
        {"level": "error", "message": "boom", "exception": {"type": "KeyError"}},
        {F.EVENT_KIND: "metric", "route": "/a", "method": "GET", "count": 5, "level": "error"},
    ])
    total = tap.agg.total
    assert total.access_count() == 0
    assert dict(total.levels) == {"info": 1, "error": 3}
    assert total.exceptions.most_common(1) == [("KeyError", 2)]
    assert total.overall_stats(60)["error_logs_per_min"] == 3


def test_sliding_windows_forget_old_slots() -> None:
    clock = Clock()
    tap = LogMetricsTap(interval_s=60, clock=clock)
    tap.observe([_req(status=500, dur=900.0)] * 10)
    clock.t += 120  # two minutes later: outside the 1 min window, inside the 5 min one
    tap.observe([_req(status=200, dur=10.0)] * 30)
    one = tap.agg.window(60).overall_stats(60)
    five = tap.agg.window(300).overall_stats(300)
    assert one["count"] == 30 and one["error_rate"] == 0.0 and one["max_ms"] == 10.0
    assert five["count"] == 40 and five["error_rate"] == 0.25 and five["max_ms"] == 900.0
    clock.t += 400
    assert tap.agg.window(300).overall_stats(300)["count"] == 0
    assert tap.agg.total.overall_stats()["count"] == 40  # since start keeps everything


def test_metric_records_every_interval_match_the_data() -> None:
    clock = Clock(1_000_000.0)
    tap = LogMetricsTap(interval_s=60, clock=clock, service="shop")
    t = traffic(6000, seed=11)
    recs = synth_records(t)
    for chunk in range(0, 6000, 1000):
        tap.observe(recs[chunk:chunk + 1000])
        clock.t += 5
    assert tap.drain_records() == []  # not due yet
    clock.t = 1_000_000.0 + 61
    out = tap.drain_records()
    assert all(r[F.EVENT_KIND] == "metric" and r[F.SERVICE] == "shop" for r in out)
    overall = next(r for r in out if r["route"] == "*")
    assert overall["count"] == 6000
    assert overall["window_s"] == 60.0
    exact = np.quantile(t.duration_ms, [0.5, 0.95, 0.99], method="lower")
    for field, ex in zip(("p50_ms", "p95_ms", "p99_ms"), exact, strict=True):
        assert abs(overall[field] - ex) <= 0.01 * ex
    per_route = {(r["method"], r["route"]): r["count"] for r in out if r["route"] != "*"}
    expected: dict[tuple[str, str], int] = {}
    for m, r in zip(t.methods, t.routes, strict=True):
        expected[(m, r)] = expected.get((m, r), 0) + 1
    assert per_route == expected
    assert abs(overall["error_rate"] - float(np.mean(t.status >= 500))) < 1e-9
    # the next interval only reports what came after
    tap.observe(recs[:100])
    clock.t += 60
    nxt = next(r for r in tap.drain_records() if r["route"] == "*")
    assert nxt["count"] == 100


def test_observe_never_raises_into_the_pipeline() -> None:
    tap = LogMetricsTap(interval_s=0)
    tap.observe([{"method": object(), "path": ["not", "a", "path"], "status": {}, "duration_ms": []}])
    tap.observe([_req()])
    assert tap.agg.total.overall_stats()["count"] == 2  # junk still counts as volume
    assert tap.internal_errors == 0


def test_state_stays_bounded_under_cardinality_attack() -> None:
    import random
    import string

    from logpipe.metrics.batch import CACHE_MAX

    rng = random.Random(5)
    tap = LogMetricsTap(max_routes_per_method=50, interval_s=0)

    def word(n: int) -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(n))

    for _ in range(60):
        tap.observe([{"method": word(4).upper(), "path": f"/{word(6)}/{word(5)}", "status": 200,
                      "duration_ms": rng.random() * 10 ** rng.randint(-3, 7)} for _ in range(2000)])
    table = tap.agg.table
    assert len(table.routes._routes) <= 33  # 32 methods + {other}
    assert len(table.keys) <= 33 * 51
    assert len(table._templates) <= table.max_templates and len(table._mid) <= 4 * table.METHOD_SLOTS
    assert len(table._path_tid) <= CACHE_MAX
    assert all(s.bucket_count <= 2048 for s in tap.agg.total.sketches.values())
    assert tap.agg.total.overall_stats()["count"] == 120_000
    assert tap.agg.routes_folded() > 100_000


def test_flush_at_shutdown_ships_the_unfinished_interval_once() -> None:
    clock = Clock(1_000_000.0)
    tap = LogMetricsTap(interval_s=60, clock=clock)
    tap.observe([_req(dur=5.0)] * 30)
    clock.t += 12
    tap.observe([_req(dur=7.0)] * 20)  # still inside the first minute: nothing due yet
    assert tap.drain_records() == []
    final = tap.flush_records()
    overall = next(r for r in final if r["route"] == "*")
    assert overall["count"] == 50 and overall["window_s"] >= 10
    clock.t += 60
    assert all(r["count"] == 0 for r in tap.drain_records())  # nothing counted twice
