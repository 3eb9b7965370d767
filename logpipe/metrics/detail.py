"""Extra aggregates a one-shot report wants and a sidecar does not: exact status codes,
time span, slowest requests, top errors and a per-minute series, all bounded in memory.

It listens to the Aggregator (same batch columns), so `logpipe report` is still the one
aggregation path with a few more listeners, not a second copy of it.
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import numpy as np

from logpipe import fields as F
from logpipe.fields import ERROR_LEVELS
from logpipe.metrics.batch import Batch, KeyTable
from logpipe.metrics.sketch import DEFAULT_ALPHA, LogSketch

MAX_SERIES_BUCKETS = 1440  # past this, buckets double in width (a week of logs stays small)
MAX_ERROR_KEYS = 5000


class SeriesBucket:
    __slots__ = ("count", "with_status", "c5xx", "error_logs", "sketch")

    def __init__(self) -> None:
        self.count = 0
        self.with_status = 0
        self.c5xx = 0
        self.error_logs = 0
        self.sketch = LogSketch(DEFAULT_ALPHA)

    def merge(self, other: SeriesBucket) -> None:
        self.count += other.count
        self.error_logs += other.error_logs
        self.with_status += other.with_status
        self.c5xx += other.c5xx
        self.sketch.merge(other.sketch)


class ReportDetail:
    """An Aggregator listener (`aggregator.listeners.append(detail.add)`): sees every batch's
    columns and records after the shared aggregation."""

    def __init__(self, table: KeyTable, top_n: int = 10) -> None:
        self.table = table
        self.top_n = top_n
        self.status_codes: Counter[int] = Counter()
        self.span: tuple[str, str] | None = None  # first/last @timestamp of all records
        self.access_span: tuple[str, str] | None = None  # ... of access records (request rates)
        self._slow: list[tuple[float, int, dict[str, Any]]] = []  # min-heap of the slowest
        self._seq = 0
        self.errors: Counter[tuple[str, str]] = Counter()
        self.errors_folded = 0
        self.http_errors: Counter[tuple[int, str, str]] = Counter()  # (status, method, route)
        self.bucket_s = 60
        self.series: dict[int, SeriesBucket] = {}
        self._epoch_cache: dict[str, int] = {}

    def add(self, b: Batch, records: list[dict[str, Any]]) -> None:
        key = F.TIMESTAMP
        ts = [r.get(key) for r in b.access]  # the access records' timestamps, used three times
        if b.n_access == len(records):
            self.span = _widen(self.span, ts)
            self.access_span = self.span
        else:
            self.span = _widen(self.span, [r.get(key) for r in records])
            self.access_span = _widen(self.access_span, ts)
        if b.exceptions or any(str(lvl).lower() in ERROR_LEVELS for lvl in b.levels):
            self._errors(records)
        if not b.n_access:
            return
        assert b.status is not None and b.durations is not None and b.ids is not None
        st = b.status[np.isfinite(b.status)]
        if st.size:
            codes, counts = np.unique(st.astype(np.int64), return_counts=True)
            for c, n in zip(codes.tolist(), counts.tolist(), strict=True):
                self.status_codes[c] += n
        self._slowest(b)
        self._series(b, ts)
        five = (b.status >= 500) & (b.status < 600)
        if five.any():
            keys, counts = np.unique(b.ids[five] * 1000 + b.status[five].astype(np.int64), return_counts=True)
            for k, n in zip(keys.tolist(), counts.tolist(), strict=True):
                route, method = self.table.keys[k // 1000]
                self.http_errors[(k % 1000, method, route)] += n

    @property
    def first_ts(self) -> str | None:
        return self.span[0] if self.span else None

    @property
    def last_ts(self) -> str | None:
        return self.span[1] if self.span else None

    def _errors(self, records: list[dict[str, Any]]) -> None:
        """Error-level app records and exceptions: top list and errors per minute (rare: a loop is fine)."""
        for r in records:
            exc = r.get(F.EXCEPTION)
            if exc is None and str(r.get(F.LEVEL, "")).lower() not in ERROR_LEVELS:
                continue
            if F.EVENT_KIND in r or F.is_access(r):  # a 5xx access record is counted as an HTTP error
                continue
            ts = r.get(F.TIMESTAMP)
            epoch = self._epoch(ts[:16]) if isinstance(ts, str) else None
            if epoch is not None:
                self._bucket(epoch).error_logs += 1
            if isinstance(exc, dict):
                typ = str(exc.get("type") or "Exception")
                msg = str(exc.get("message") or r.get(F.MESSAGE) or "")
            else:
                typ = str(r.get(F.LEVEL, "error")).upper()
                msg = str(r.get(F.MESSAGE) or "")
            self._error_key(typ, msg.split("\n", 1)[0][:200])

    def _error_key(self, typ: str, msg: str) -> None:
        key = (typ, msg)
        if key in self.errors or len(self.errors) < MAX_ERROR_KEYS:
            self.errors[key] += 1
        else:
            self.errors_folded += 1

    def _slowest(self, b: Batch) -> None:
        assert b.durations is not None and b.valid_mask is not None
        idx = np.flatnonzero(b.valid_mask)
        if not idx.size:
            return
        d = b.durations[idx]
        floor = self._slow[0][0] if len(self._slow) >= self.top_n else -1.0
        keep = idx[d > floor]
        if keep.size > self.top_n:
            dk = b.durations[keep]
            keep = keep[np.argpartition(-dk, self.top_n - 1)[:self.top_n]]
        for i in keep.tolist():
            rec = b.access[i]
            dur = float(b.durations[i])
            route, method = self.table.keys[int(b.ids[i])]  # type: ignore[index]
            item = {
                F.TIMESTAMP: rec.get(F.TIMESTAMP), F.METHOD: method, F.PATH: rec.get(F.PATH),
                F.ROUTE: route, F.STATUS: rec.get(F.STATUS), F.DURATION_MS: round(dur, 3),
                F.REQUEST_ID: rec.get(F.REQUEST_ID),
            }
            self._seq += 1
            entry = (dur, self._seq, item)
            if len(self._slow) < self.top_n:
                heapq.heappush(self._slow, entry)
            elif dur > self._slow[0][0]:
                heapq.heapreplace(self._slow, entry)

    def slowest(self) -> list[dict[str, Any]]:
        return [item for _d, _s, item in sorted(self._slow, key=lambda e: (-e[0], e[1]))]

    def _epoch(self, minute: str) -> int | None:
        e = self._epoch_cache.get(minute)
        if e is None:
            try:
                e = int(datetime.fromisoformat(minute + ":00+00:00").timestamp())
            except ValueError:
                return None
            if len(self._epoch_cache) > 100_000:
                self._epoch_cache.clear()
            self._epoch_cache[minute] = e
        return e

    def _series(self, b: Batch, ts: list[Any]) -> None:
        assert b.status is not None and b.durations is not None and b.valid_mask is not None
        uniq, ids = _minute_ids(ts)
        has_status = np.isfinite(b.status)
        is5 = (b.status >= 500) & (b.status < 600)
        n = len(uniq)
        counts = np.bincount(ids, minlength=n)
        ws = np.bincount(ids[has_status], minlength=n)
        c5 = np.bincount(ids[is5], minlength=n)
        for m, j in uniq.items():
            epoch = self._epoch(m) if m else None
            if epoch is None:
                continue
            bucket = self._bucket(epoch)
            bucket.count += int(counts[j])
            bucket.with_status += int(ws[j])
            bucket.c5xx += int(c5[j])
            sel = (ids == j) & b.valid_mask
            if sel.any():
                bucket.sketch.add_batch(b.durations[sel])
        while len(self.series) > MAX_SERIES_BUCKETS:
            self._coarsen()

    def _bucket(self, epoch: int) -> SeriesBucket:
        key = epoch - epoch % self.bucket_s
        bucket = self.series.get(key)
        if bucket is None:
            bucket = self.series[key] = SeriesBucket()
        return bucket

    def _coarsen(self) -> None:
        self.bucket_s *= 2
        old, self.series = self.series, {}
        for key, bucket in old.items():
            self._bucket(key).merge(bucket)

    def series_points(self) -> list[dict[str, Any]]:
        out = []
        for key in sorted(self.series):
            b = self.series[key]
            p95 = b.sketch.quantile(0.95)
            out.append({
                "t": _iso(key),
                "count": b.count,
                "rate_per_s": b.count / self.bucket_s,
                "error_rate": (b.c5xx / b.with_status) if b.with_status else None,
                "error_logs": b.error_logs,
                "p95_ms": None if p95 is None else round(p95, 3),
            })
        return out


def _widen(span: tuple[str, str] | None, ts: list[Any]) -> tuple[str, str] | None:
    """(min, max) of `span` and the timestamps in `ts` (ISO-8601 UTC strings sort in time order)."""
    try:
        lo, hi = min(ts), max(ts)
    except (TypeError, ValueError):  # empty, or a non-string timestamp somewhere
        ts = [t for t in ts if t.__class__ is str]
        if not ts:
            return span
        lo, hi = min(ts), max(ts)
    if span is None:
        return lo, hi
    return min(lo, span[0]), max(hi, span[1])


def _minute_ids(ts: list[Any]) -> tuple[dict[str, int], np.ndarray]:
    """Per record, the index of its minute ('YYYY-MM-DDTHH:MM') among the batch's minutes.

    Logs are written in time order, so usually the batch is sorted and a bisect per minute
    boundary replaces Python work per record; otherwise fall back to a dict per record.
    """
    n = len(ts)
    try:
        in_order = ts == sorted(ts)  # timsort on sorted input: one C-level pass
    except TypeError:  # None or a number somewhere
        in_order = False
    if in_order:
        uniq: dict[str, int] = {}
        bounds: list[int] = []
        i = 0
        while i < n:
            minute = ts[i][:16]
            if len(minute) < 16:  # not an ISO timestamp: take the careful path
                break
            j = bisect.bisect_left(ts, minute + ";", i)  # ';' sorts right after ':'
            uniq[minute] = len(uniq)
            bounds.append(j - i)
            i = j
        else:
            return uniq, np.repeat(np.arange(len(bounds), dtype=np.int64), bounds)
    minutes = [t[:16] if t.__class__ is str else "" for t in ts]
    uniq = {}
    return uniq, np.array([uniq.setdefault(m, len(uniq)) for m in minutes], dtype=np.int64)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
