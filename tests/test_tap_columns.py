"""The metrics tap on the native core's road (columns, logpipe.metrics.columns) against the Python
road (records as dicts, LOGPIPE_CORE=off): for the same file, the same metric records and the same
Prometheus exposition, including records without the tap's fields and values it cannot use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from logpipe.config import Config, InputConfig
from logpipe.enrich import Enricher, load_scrubber
from logpipe.metrics.prometheus import make_registry
from logpipe.metrics.tap import LogMetricsTap
from logpipe.pipeline import Pipeline
from logpipe.stages import PipelineStats
from logpipe.tail.checkpoint import CheckpointStore
from logpipe.tail.source import TailFront
from tests.test_core_tail import RecordingSink

TS = "2026-11-24T07:00:00.000001Z"
NOW = 1_800_000_000.0

STATUS = [200, 201, 404, 500, 503, 99, 600, 0, -1, 200.0, 404.5, 1e3, 12345678901234567, "200", "abc", True,
          None, [200]]
DURATION = [0, 1.5, 40, 0.001, 1e-9, 86_400_000, 86_400_001, -3, 2.5e2, 123456789012345678, "12", None, False,
            {"ms": 1}]
METHODS = ["GET", "POST", "get", "PURGE", "", None, 7]
PATHS = ["/api/users/1234", "/api/users/99", "/health", "/a\"b", "/ünï/1", "", None, 5]
ROUTES = ["/api/users/{id}", "/health", "", None]
LEVELS = ["info", "error", "warning", "critical", "INFO", "", None, 3]


@st.composite
def line(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(["access", "access", "app", "exception", "metric", "browser", "bare", "junk"]))
    rec: dict[str, Any] = {"@timestamp": TS, "level": "info", "message": "m"}
    if shape == "junk":
        return draw(st.sampled_from(["not json", "[1,2]", "null", "", '{"status":200,"method":"GET"}']))
    if shape == "bare":
        rec = {"message": "no timestamp", "method": "GET", "status": 200}
    if shape in ("access", "exception"):
        for key, values in (("method", METHODS), ("status", STATUS), ("duration_ms", DURATION), ("path", PATHS),
                            ("route", ROUTES)):
            if draw(st.integers(0, 5)) > 0:
                rec[key] = draw(st.sampled_from(values))
    if shape in ("app", "access") and draw(st.booleans()):
        rec["level"] = draw(st.sampled_from(LEVELS))
    if shape == "exception":
        rec["exception"] = draw(st.sampled_from([{"type": "ValueError", "message": "x"}, {"stack": "s"}, "boom"]))
    if shape == "metric":
        rec.update({"event.kind": "metric", "method": "GET", "status": 200, "route": "/x"})
    if shape == "browser":
        rec.update({"event.kind": "browser", "browser.type": "web_vital", "page.route": "/p", "name": "LCP",
                    "value": 1200})
    return json.dumps(rec, ensure_ascii=draw(st.booleans()))


def tap_outputs(tmp: Path, lines: list[str], monkeypatch: pytest.MonkeyPatch, core: str) -> tuple[Any, ...]:
    monkeypatch.setenv("LOGPIPE_CORE", core)
    log = tmp / f"app-{core}.log"
    log.write_text("".join(x + "\n" for x in lines))
    cfg = Config()
    cfg.inputs = [InputConfig(paths=[str(log)], format="json")]
    cfg.pipeline.checkpoint_path = str(tmp / f"ck-{core}.json")
    cfg.pipeline.batch_max_records = 5  # several batches, and chunks cut inside them
    stats = PipelineStats(started_at=NOW)
    tap = LogMetricsTap(clock=lambda: NOW, interval_s=60.0, service="shop", host="h", stats=stats)
    store = CheckpointStore(cfg.pipeline.checkpoint_path, reset=True)
    sink = RecordingSink()
    pipe = Pipeline(cfg, TailFront(cfg, stats, store=store, once=True), sink, stats=stats, tap=tap,
                    enricher=Enricher("h", load_scrubber(cfg.scrub)))
    assert pipe.run() == 0
    store.close()
    used_core = bool(sink.ndjson)
    metrics = [r for r in sink.dicts if r.get("event.kind") == "metric" and "log_file" not in r]  # the tap's
    timing = ("logpipe_sink_latency_seconds", "logpipe_last_ack_age_seconds")  # wall-clock gauges
    prom = [x for x in generate_latest(make_registry(tap)).decode().splitlines() if not x.startswith(timing)]
    total = tap.agg.total
    return used_core, sorted(json.dumps(m, sort_keys=True) for m in metrics), prom, total.overall_stats(), \
        dict(total.levels), dict(total.exceptions), tap.agg.table.keys


def assert_same_tap(tmp: Path, lines: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    on = tap_outputs(tmp, lines, monkeypatch, "on")
    off = tap_outputs(tmp, lines, monkeypatch, "off")
    assert not off[0]
    assert on[1:] == off[1:]


def test_awkward_values_count_the_same_on_both_roads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = []
    for i, (status, dur) in enumerate(zip(STATUS * 2, DURATION * 3, strict=False)):
        rec = {"@timestamp": TS, "level": "info", "message": "m", "method": METHODS[i % len(METHODS)],
               "path": PATHS[i % len(PATHS)], "status": status, "duration_ms": dur}
        if i % 3 == 0:
            rec["route"] = ROUTES[i % len(ROUTES)]
        lines.append(json.dumps(rec))
        lines.append(json.dumps({"@timestamp": TS, "level": LEVELS[i % len(LEVELS)], "message": "app"}))
    lines += [json.dumps({"@timestamp": TS, "level": "error", "message": "e", "exception": {"type": "KeyError"}}), "", "[]"]
    on = tap_outputs(tmp_path, lines, monkeypatch, "on")
    assert on[0], "the core's road was not taken"
    assert on[3]["count"] == sum(1 for x in lines if '"method"' in x and '"status"' in x)
    assert_same_tap(tmp_path, lines, monkeypatch)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line(), min_size=1, max_size=25))
def test_generated_files_give_the_same_metrics_on_both_roads(lines: list[str], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same_tap(tmp_path, lines, monkeypatch)
