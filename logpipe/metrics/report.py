"""`logpipe report`'s model: files -> parser -> the same Aggregator the tap uses -> one dict.

The dict is the `--json` contract (REPORT_SCHEMA); the terminal and HTML renderers only
read it. Top-level `overall` and `routes` always exist; each has count, error_rate and
p50/p90/p95/p99/max in milliseconds (None when no request had a usable duration).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from logpipe import fields as F
from logpipe.config import MultilineConfig
from logpipe.metrics.batch import STATUS_CLASS_NAMES
from logpipe.metrics.detail import ReportDetail
from logpipe.metrics.windows import Aggregator
from logpipe.tail.files import expand_inputs, iter_lines, open_any

REPORT_SCHEMA = "logpipe.report/1"
BATCH_LINES = 4096
SAMPLE_LINES = 50

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
        self.started = time.perf_counter()

    def observe(self, records: list[dict[str, Any]]) -> None:
        self.agg.observe(records)

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


def _chunks(path: Path, chunk_bytes: int = 1 << 20) -> Iterator[tuple[int, list[str]]]:
    """(on-disk position, lines) per chunk of a plain or gzip file: one decode and one split
    per megabyte instead of per line (a multi-byte character never contains a newline byte,
    so this decodes exactly like iter_lines does line by line)."""
    with open_any(path) as fh:
        raw = getattr(fh, "fileobj", None)  # gzip: progress follows the compressed file
        tail = b""
        while True:
            chunk = fh.read(chunk_bytes)
            if not chunk:
                break
            data = tail + chunk if tail else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                tail = data
                continue
            tail = data[cut + 1:]
            pos = raw.tell() if raw is not None else fh.tell()
            yield pos, data[:cut].decode("utf-8", "replace").split("\n")
        if tail:
            yield (raw.tell() if raw is not None else fh.tell()), [tail.decode("utf-8", "replace")]


def file_batches(path: Path, *, fmt: str = "auto", tz: str = "UTC", service: str = "",
                 progress: Progress | None = None, batch_lines: int = BATCH_LINES,
                 ) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Parsed record batches of one file (plain or gzip) and the number of lines each covers.

    The same stages the pipeline runs, minus everything a report does not need: read,
    detect + multi-line join + parse (logpipe.parse). No enrichment (ids, host), no batching
    for a sink, no sink thread: measured, that machinery cost more per line than the
    aggregation itself (bench/bench_metrics.py).
    """
    from logpipe.parse import detect_format, make_parser
    from logpipe.parse.multiline import MultilineJoiner

    if fmt == "auto":
        sample = [t for _o, raw in itertools.islice(iter_lines(path), SAMPLE_LINES)
                  if (t := raw.decode("utf-8", "replace")).strip()]
        fmt = detect_format(sample) if sample else "raw"
    parse = make_parser(fmt, tz=tz, service=service)
    joiner = MultilineJoiner(MultilineConfig(), fmt)
    done = 0
    if getattr(joiner, "passthrough", False):  # json / nginx: one line, one event
        for pos, lines in _chunks(path):
            for i in range(0, len(lines), batch_lines):
                part = lines[i:i + batch_lines]
                yield parse(part), len(part)
            if progress is not None:
                progress(str(path), pos - done)
                done = pos
        return
    pending: list[tuple[int, int, str]] = []
    for off, raw in iter_lines(path):
        pending.append((off, off + len(raw) + 1, raw.decode("utf-8", "replace")))
        if len(pending) < batch_lines:
            continue
        if progress is not None:
            progress(str(path), off - done)
            done = off
        n, batch = len(pending), [e[2] for e in joiner.feed(pending)]
        pending = []
        yield parse(batch), n
    events = joiner.feed(pending) + joiner.flush()
    if events or pending:
        yield parse([e[2] for e in events]), len(pending)


def build_report(paths: Iterable[str], *, fmt: str = "auto", tz: str = "UTC", service: str = "",
                 max_routes_per_method: int = 1000, top_n: int = 10,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Read every input once (rotated sets oldest first, gzip too), aggregate with the tap's
    Aggregator (plus report details), and return the report dict."""
    files = expand_inputs(list(paths))
    report = Report(max_routes_per_method, top_n)
    for path in files:
        lines = failures = 0
        try:
            for records, n in file_batches(path, fmt=fmt, tz=tz, service=service, progress=progress):
                lines += n
                tagged = [r[F.TAGS] for r in records if F.TAGS in r]
                if tagged:
                    failures += sum(1 for t in tagged if F.TAG_PARSE_FAILURE in t)
                report.observe(records)
        except OSError as exc:  # unreadable or corrupt (e.g. truncated .gz): say so, keep going
            report.skipped[str(path)] = f"{type(exc).__name__}: {exc}"
        report.lines += lines
        report.parse_failures += failures
        report.files.append({"path": str(path), "lines": lines, "parse_failures": failures})
    return report.to_dict()
