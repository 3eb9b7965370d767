"""`/api/v1/summary`: the live dashboard's JSON, built from the aggregates `/metrics` reads.

Why cached: five browsers polling every second must cost what one does, so a summary is
built at most once per `cache_s` and shared. Why a sampler thread: records/s in and out and
each file's lag in seconds need a short history of the pipeline counters; one pass over the
counters a second is all it costs (nothing per record).

The JSON is a stable contract (schema `logpipe.summary/1`, README "Live dashboard"): fields
are only added, never renamed or removed, within a schema version.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from logpipe.metrics.block import Block

if TYPE_CHECKING:
    from logpipe.metrics.pagevitals import PageVitals
    from logpipe.metrics.tap import LogMetricsTap
    from logpipe.stages import PipelineStats

SUMMARY_SCHEMA = "logpipe.summary/1"
WINDOWS = (("1m", 60.0), ("5m", 300.0))
ROUTE_FIELDS = ("count", "rate_per_s", "status_4xx", "status_5xx", "error_rate", "client_error_rate",
                "p50_ms", "p95_ms", "p99_ms", "max_ms")
RED_5XX_SHARE = 0.05  # a route turns red above this 5xx share over 1 m (the default alert's threshold)
AMBER_4XX_SHARE = 0.25
RESOLVED_SHOWN_S = 900.0


@dataclass
class _Sample:
    t: float
    lines_read: int
    delivered: int
    behind: dict[str, int]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pick(st: dict[str, Any]) -> dict[str, Any]:
    return {k: st.get(k) for k in ROUTE_FIELDS}


class Dashboard:
    """Builds summaries from a tap and the pipeline stats; owns the 1 Hz counter sampler."""

    def __init__(self, tap: LogMetricsTap, stats: PipelineStats, *, cache_s: float = 1.0,
                 sample_s: float = 1.0, history: int = 600, clock: Callable[[], float] = time.time,
                 pages: PageVitals | None = None) -> None:
        self.tap = tap
        self.pages = pages
        self.stats = stats
        self.cache_s = cache_s
        self.clock = clock
        self.samples: deque[_Sample] = deque(maxlen=history)
        self._caught_up: dict[str, float] = {}
        self._points: dict[int, dict[str, Any]] = {}  # finished slots' sparkline points
        self._lock = threading.Lock()
        self._cached: tuple[float, bytes] | None = None
        self._stop = threading.Event()
        self._sample_s = sample_s
        self._thread = threading.Thread(target=self._loop, name="logpipe-dashboard-sampler", daemon=True)

    def start(self) -> Dashboard:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)

    def _loop(self) -> None:
        while not self._stop.wait(self._sample_s):
            self.sample()

    def sample(self) -> None:
        """Record the pipeline counters now; a file's lag clock starts when it falls behind."""
        s = self.stats
        now = self.clock()
        behind = {p: max(0, f.size - f.acked_offset) for p, f in list(s.files.items())}
        for path, b in behind.items():
            if b == 0 or path not in self._caught_up:
                self._caught_up[path] = now
        self.samples.append(_Sample(now, s.lines_read, s.delivered, behind))

    # -- the summary ---------------------------------------------------------------------------
    def summary_json(self) -> bytes:
        import orjson

        with self._lock:
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < self.cache_s:
                return self._cached[1]
            body = orjson.dumps(self.summary(now), option=orjson.OPT_SERIALIZE_NUMPY)
            self._cached = (now, body)
            return body

    def summary(self, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        agg = self.tap.agg
        uptime = max(1e-9, now - agg.started_at)
        with agg.lock:
            total = Block(agg.total.alpha)
            total.merge(agg.total)
        blocks = {name: agg.window(seconds, now) for name, seconds in WINDOWS}
        keys = list(agg.table.keys)  # after the blocks: ids only grow
        routes = []
        for k in total.active_keys():
            route, method = keys[k]
            row: dict[str, Any] = {"route": route, "method": method,
                                   "since_start": _pick(total.key_stats(k, uptime))}
            for name, seconds in WINDOWS:
                row[name] = _pick(blocks[name].key_stats(k, seconds))
            row["state"] = _route_state(row["1m"])
            routes.append(row)
        routes.sort(key=lambda r: (-r["since_start"]["count"], r["route"], r["method"]))
        overall = {"since_start": _pick(total.overall_stats(uptime))}
        for name, seconds in WINDOWS:
            overall[name] = _pick(blocks[name].overall_stats(seconds))
        overall["state"] = _route_state(overall["1m"])
        slowest = sorted((r for r in routes if r["5m"]["p95_ms"] is not None),
                         key=lambda r: -r["5m"]["p95_ms"])[:5]
        return {
            "schema": SUMMARY_SCHEMA,
            "generated_at": _iso(now),
            "started_at": _iso(agg.started_at),
            "uptime_s": round(uptime, 3),
            "windows": [name for name, _s in WINDOWS] + ["since_start"],
            "overall": overall,
            "routes": routes,
            "slowest": [{"route": r["route"], "method": r["method"], "p95_ms": r["5m"]["p95_ms"],
                         "p99_ms": r["5m"]["p99_ms"], "count": r["5m"]["count"]} for r in slowest],
            "series": self._series(now),
            "alerts": self._alerts(now),
            "pipeline": self._pipeline(now),
            "pages": self.pages.snapshot() if self.pages is not None else [],
        }

    def _series(self, now: float) -> dict[str, Any]:
        """One point per 10 s slot of the last 5 minutes: requests/s, 5xx/s, p95 (sparklines).

        Finished slots never change, so their points are computed once and kept; only the
        slot being written is read under the aggregator's lock."""
        agg = self.tap.agg
        with agg.lock:
            slots = list(agg.slots)
            newest = _slot_point(*slots[-1], agg.slot_s) if slots else None
        cutoff = int(now // agg.slot_s) - int(300 // agg.slot_s)
        points = []
        for i, (idx, block) in enumerate(slots):
            if idx <= cutoff:
                continue
            if i == len(slots) - 1:
                points.append(newest)
                continue
            point = self._points.get(idx)
            if point is None:
                point = self._points[idx] = _slot_point(idx, block, agg.slot_s)
            points.append(point)
        for idx in [k for k in self._points if k <= cutoff]:
            del self._points[idx]
        return {"step_s": agg.slot_s, "points": points}

    def _alerts(self, now: float) -> list[dict[str, Any]]:
        engine = self.tap.alerts
        if engine is None:
            return []
        out = []
        for rule in engine.rules:
            st = engine.states[rule.name]
            if st.firing:
                state = "firing"
            elif st.resolved_at is not None and now - st.resolved_at <= RESOLVED_SHOWN_S:
                state = "resolved"
            elif st.pending_since is not None:
                state = "pending"
            else:
                state = "ok"
            remaining = st.last_notified_at + rule.cooldown_s - now
            out.append({
                "name": rule.name, "severity": rule.severity, "state": state, "metric": rule.metric,
                "comparison": rule.comparison, "threshold": rule.threshold, "window_s": rule.window_s,
                "value": st.value, "route": rule.route or None, "method": rule.method or None,
                "description": rule.description,
                "fired_at": _iso(st.fired_at) if st.fired_at is not None else None,
                "resolved_at": _iso(st.resolved_at) if st.resolved_at is not None else None,
                "cooldown_s": rule.cooldown_s, "cooldown_remaining_s": round(max(0.0, remaining), 1),
                "suppressed": st.suppressed,
            })
        order = {"firing": 0, "pending": 1, "resolved": 2, "ok": 3}
        out.sort(key=lambda a: (order[a["state"]], a["name"]))
        return out

    def _pipeline(self, now: float) -> dict[str, Any]:
        s = self.stats
        samples = list(self.samples)
        rate_in = rate_out = None
        if samples:
            ref = next((x for x in samples if now - x.t <= 10.0), samples[-1])
            dt = now - ref.t
            if dt > 0.5:
                rate_in = (s.lines_read - ref.lines_read) / dt
                rate_out = (s.delivered - ref.delivered) / dt
        files = []
        for path, f in sorted(list(s.files.items())):
            behind = max(0, f.size - f.acked_offset)
            since = self._caught_up.get(path, now)
            files.append({"path": path, "bytes_behind": behind,
                          "lag_s": round(max(0.0, now - since), 1) if behind else 0.0})
        dropped = dict(s.dropped)
        return {
            "files": files,
            "bytes_behind": sum(f["bytes_behind"] for f in files),
            "lines_read": s.lines_read, "records_parsed": s.records_parsed, "parse_failures": s.parse_failures,
            "delivered": s.delivered, "duplicates": s.duplicates, "dead_lettered": s.dead_lettered,
            "records_in_per_s": None if rate_in is None else round(rate_in, 1),
            "records_out_per_s": None if rate_out is None else round(rate_out, 1),
            "inflight_batches": s.inflight_batches, "sink_error": s.sink_error or None,
            "sink_healthy": not s.sink_error,
            "throttled": dropped.get("throttle", 0), "dropped": dropped,
            "metrics_internal_errors": self.tap.internal_errors,
        }


def _slot_point(idx: int, b: Block, slot_s: float) -> dict[str, Any]:
    counts = b.class_counts.sum(axis=0) if b.nkeys else None
    n = int(counts.sum()) if counts is not None else 0
    p95 = b.overall.quantiles((0.95,))[0] if b.overall.count else None
    return {"t": _iso(idx * slot_s), "requests_per_s": n / slot_s,
            "errors_5xx_per_s": (int(counts[5]) if counts is not None else 0) / slot_s,
            "p95_ms": None if p95 is None else round(float(p95), 3)}


def _route_state(st: dict[str, Any]) -> str:
    """'error' (red) above the 5xx share, 'warn' (amber) on many 4xx, else 'ok'."""
    if st["error_rate"] is not None and st["error_rate"] > RED_5XX_SHARE:
        return "error"
    if st["client_error_rate"] is not None and st["client_error_rate"] > AMBER_4XX_SHARE:
        return "warn"
    return "ok"
