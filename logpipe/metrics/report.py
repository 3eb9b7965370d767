"""`logpipe report`'s model: files -> the replay front and pipeline -> the tap's Aggregator -> one dict.

The dict is the `--json` contract (REPORT_SCHEMA); the terminal and HTML renderers only
read it. Top-level `overall` and `routes` always exist; each has count, error_rate and
p50/p90/p95/p99/max in milliseconds (None when no request had a usable duration).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from logpipe import fields as F
from logpipe.config import Config, InputConfig
from logpipe.metrics.batch import STATUS_CLASS_NAMES
from logpipe.metrics.detail import ReportDetail
from logpipe.metrics.windows import Aggregator

REPORT_SCHEMA = "logpipe.report/1"
BATCH_LINES = 4096  # records per tap call: its numpy work has a fixed cost per call

Progress = Callable[[str, int], None]  # (file, bytes advanced)


class Report:
    """Aggregation for one report run."""

    def __init__(self, max_routes_per_method: int = 1000, top_n: int = 10) -> None:
        self.agg = Aggregator(max_routes_per_method, windowed=False, with_hist=False)
        self.detail = ReportDetail(self.agg.table, top_n)
        self.agg.listeners.append(self.detail.add)
        self.files: list[dict[str, Any]] = []
        self.lines = 0
        self.parse_failures = 0
        self.skipped: dict[str, str] = {}
        self.tagged: Counter[str] = Counter()  # records per marker tag (_truncated, _invalid_utf8, ...)
        self.started = time.perf_counter()

    def observe(self, records: list[dict[str, Any]]) -> None:
        self.agg.observe(records)
        tags = F.TAGS
        for t in [r[tags] for r in records if tags in r]:  # bad input is rare: a loop is fine
            if isinstance(t, list):
                self.tagged.update(x for x in t if isinstance(x, str) and x.startswith("_"))

    def to_dict(self) -> dict[str, Any]:
        total = self.agg.total
        d = self.detail
        span_s = _span_seconds(d.first_ts, d.last_ts)
        acc = d.access_span
        rate_s = _span_seconds(acc[0], acc[1]) if acc else None  # requests/s over the access records' span
        overall = total.overall_stats()
        overall["rate_per_s"] = (overall["count"] / rate_s) if rate_s else None
        overall["routes_folded"] = self.agg.routes_folded()
        routes = []
        for key in total.active_keys():
            route, method = self.agg.key(key)
            st = total.key_stats(key)
            st["rate_per_s"] = (st["count"] / rate_s) if rate_s else None
            routes.append({"route": route, "method": method, **st})
        routes.sort(key=lambda r: (-(r["total_ms"] or 0.0), -r["count"], r["route"], r["method"]))
        classes = total.class_counts.sum(axis=0) if total.nkeys else [0] * len(STATUS_CLASS_NAMES)
        errors = [{"type": t, "message": m, "count": n} for (t, m), n in d.errors.most_common(d.top_n)]
        return {
            "schema": REPORT_SCHEMA,
            "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": self.files,
            "lines": self.lines,
            "records": total.records,
            "parse_failures": self.parse_failures,
            "tagged": dict(sorted(self.tagged.items())),
            "skipped_files": self.skipped,
            "elapsed_s": round(time.perf_counter() - self.started, 3),
            "time_span": {"start": d.first_ts, "end": d.last_ts, "seconds": span_s},
            "overall": overall,
            "status_codes": {str(k): v for k, v in sorted(d.status_codes.items())},
            "status_classes": {name: int(n) for name, n in zip(STATUS_CLASS_NAMES, classes, strict=True) if n},
            "routes": routes,
            "slowest": d.slowest(),
            "top_errors": errors,
            "errors_folded": d.errors_folded,
            "top_http_errors": [{"status": st, "method": m, "route": r, "count": n}
                                for (st, m, r), n in d.http_errors.most_common(d.top_n)],
            "levels": dict(sorted(total.levels.items(), key=lambda kv: -kv[1])),
            "exceptions": dict(total.exceptions.most_common(d.top_n)),
            "series": {"bucket_s": d.bucket_s, "points": d.series_points()},
        }


def _span_seconds(first: str | None, last: str | None) -> float | None:
    if not first or not last:
        return None
    try:
        a = datetime.fromisoformat(first.replace("Z", "+00:00"))
        b = datetime.fromisoformat(last.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (b - a).total_seconds())


def build_report(paths: Iterable[str], *, fmt: str = "auto", tz: str = "UTC", service: str = "",
                 max_routes_per_method: int = 1000, top_n: int = 10,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Read every input once (rotated sets oldest first, gzip too) and return the report dict.

    The same front and pipeline as `logpipe replay`, with the report as its metrics tap and
    no sink: lines are split, truncated, NUL-stripped and decoded by the tail's reader and
    parsed, joined and tagged exactly as `logpipe tail` does, so the report counts the records
    the sidecar ships. Raises ValueError for an unknown format or time zone.
    """
    from logpipe.parse import make_parser
    from logpipe.pipeline import Pipeline
    from logpipe.stages import PipelineStats
    from logpipe.tail.replay import ReplayFront, replay_files

    make_parser("raw" if fmt == "auto" else fmt, tz=tz, service=service)  # fail before reading
    report = Report(max_routes_per_method, top_n)
    for path in replay_files(list(paths)):
        cfg = Config()
        cfg.inputs = [InputConfig(paths=[str(path)], format=fmt, tz=tz, service=service)]
        cfg.pipeline.batch_max_records = BATCH_LINES
        stats = PipelineStats()
        front = ReplayFront(cfg, [path], stats, cfg.inputs[0])
        tap = _FileTap(report, front, str(path), progress)
        Pipeline(cfg, front, stats=stats, tap=tap).run()
        tap.advance()
        report.skipped.update(stats.skipped_files)
        report.lines += stats.lines_read
        report.parse_failures += stats.parse_failures
        report.files.append({"path": str(path), "lines": stats.lines_read, "parse_failures": stats.parse_failures})
    return report.to_dict()


class _FileTap:
    """The pipeline's metrics tap for one report input: records go to the report (and the
    progress callback hears how far the front has read)."""

    whole_records = True  # request ids, timestamps and errors, not only the metric columns

    def __init__(self, report: Report, front: Any, path: str, progress: Progress | None) -> None:
        self.report = report
        self.front = front
        self.path = path
        self.progress = progress
        self.done = 0

    def observe(self, records: list[dict[str, Any]]) -> None:
        self.report.observe(records)
        self.advance()

    def advance(self) -> None:
        if self.progress is not None:
            now = self.front.done_bytes
            if now > self.done:
                self.progress(self.path, now - self.done)
                self.done = now

    def drain_records(self) -> list[dict[str, Any]]:
        return []

    def on_delivery(self, delivered: int, dropped: dict[str, int], dead_lettered: int,
                    sink_latency_s: float) -> None:
        return None
