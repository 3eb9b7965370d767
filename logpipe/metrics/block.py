"""Aggregates over a span of time for every (route, method): one Block per window slot
and one since start. Blocks add batches and merge with each other (sliding windows are
merges of slots), and turn into the stats dicts that metric records and reports share.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from logpipe.metrics.batch import N_CLASSES, Batch
from logpipe.metrics.sketch import DEFAULT_ALPHA, DEFAULT_MAX_BUCKETS, LogSketch

QUANTILES = (0.5, 0.9, 0.95, 0.99)
QUANTILE_FIELDS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms")

#: Prometheus histogram bounds (seconds): dense enough for histogram_quantile to be useful.
HIST_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4,
                 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0)
_HIST_BOUNDS_MS = np.array(HIST_BOUNDS_S) * 1000.0
N_HIST = len(HIST_BOUNDS_S) + 1  # + the +Inf bucket


class Block:
    """Counters, sums, maxima and latency sketches per key id, plus level/exception counts."""

    def __init__(self, alpha: float = DEFAULT_ALPHA, with_hist: bool = False,
                 max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        self.alpha = alpha
        self.max_buckets = max_buckets
        self.nkeys = 0
        self.class_counts = np.zeros((0, N_CLASSES), dtype=np.int64)
        self.invalid = np.zeros(0, dtype=np.int64)
        self.no_duration = np.zeros(0, dtype=np.int64)
        self.sum_ms = np.zeros(0, dtype=np.float64)
        self.hist: np.ndarray | None = np.zeros((0, N_HIST), dtype=np.int64) if with_hist else None
        self.sketches: dict[int, LogSketch] = {}
        self.overall = LogSketch(alpha, max_buckets)
        self.records = 0
        self.levels: Counter[str] = Counter()
        self.exceptions: Counter[str] = Counter()

    def _grow(self, nkeys: int) -> None:
        if nkeys <= self.nkeys:
            return
        extra = nkeys - self.nkeys
        self.class_counts = np.vstack([self.class_counts, np.zeros((extra, N_CLASSES), dtype=np.int64)])
        self.invalid = np.concatenate([self.invalid, np.zeros(extra, dtype=np.int64)])
        self.no_duration = np.concatenate([self.no_duration, np.zeros(extra, dtype=np.int64)])
        self.sum_ms = np.concatenate([self.sum_ms, np.zeros(extra)])
        if self.hist is not None:
            self.hist = np.vstack([self.hist, np.zeros((extra, N_HIST), dtype=np.int64)])
        self.nkeys = nkeys

    def add(self, b: Batch) -> None:
        self.records += b.n_records
        if b.levels:
            self.levels.update(b.levels)
        if b.exceptions:
            self.exceptions.update(b.exceptions)
        if b.n_access == 0:
            return
        self._grow(b.nkeys)
        n = b.nkeys
        self.class_counts[:n] += b.class_counts
        self.invalid[:n] += b.invalid
        self.no_duration[:n] += b.no_duration
        self.sum_ms[:n] += b.sum_ms
        if b.valid_ms.size == 0:
            return
        if self.hist is not None:
            pos = np.searchsorted(_HIST_BOUNDS_MS, b.valid_ms, side="left")
            self.hist[:n] += np.bincount(b.valid_ids * N_HIST + pos, minlength=n * N_HIST).reshape(n, N_HIST)
        overall, groups = b.prepared(self.alpha)
        if overall is not None:
            self.overall.add_prepared(overall)
        for key, prep in groups:
            self._sketch(key).add_prepared(prep)

    def _sketch(self, key: int) -> LogSketch:
        s = self.sketches.get(key)
        if s is None:
            s = self.sketches[key] = LogSketch(self.alpha, self.max_buckets)
        return s

    def merge(self, other: Block) -> None:
        self.records += other.records
        self.levels.update(other.levels)
        self.exceptions.update(other.exceptions)
        self._grow(other.nkeys)
        n = other.nkeys
        self.class_counts[:n] += other.class_counts
        self.invalid[:n] += other.invalid
        self.no_duration[:n] += other.no_duration
        self.sum_ms[:n] += other.sum_ms
        if self.hist is not None and other.hist is not None:
            self.hist[:n] += other.hist
        self.overall.merge(other.overall)
        for key, s in other.sketches.items():
            mine = self.sketches.get(key)
            if mine is None:
                self.sketches[key] = s.copy()  # keeps s's accuracy and bucket cap
            else:
                mine.merge(s)

    # -- reading ---------------------------------------------------------------------------
    def active_keys(self) -> list[int]:
        if self.nkeys == 0:
            return []
        return [int(k) for k in np.flatnonzero(self.class_counts.sum(axis=1))]

    def key_stats(self, key: int, window_s: float | None = None) -> dict[str, Any]:
        counts = self.class_counts[key] if key < self.nkeys else np.zeros(N_CLASSES, dtype=np.int64)
        sketch = self.sketches.get(key)
        invalid = int(self.invalid[key]) if key < self.nkeys else 0
        return _stats(counts, sketch, invalid, window_s)

    def overall_stats(self, window_s: float | None = None) -> dict[str, Any]:
        counts = self.class_counts.sum(axis=0) if self.nkeys else np.zeros(N_CLASSES, dtype=np.int64)
        out = _stats(counts, self.overall, int(self.invalid.sum()), window_s)
        out["records"] = self.records
        errors = sum(v for lvl, v in self.levels.items() if str(lvl).lower() in _ERROR_LEVELS)
        out["error_logs"] = errors
        if window_s:
            out["error_logs_per_min"] = errors * 60.0 / window_s
        return out

    def subset_stats(self, ids: list[int], window_s: float | None = None) -> dict[str, Any]:
        """Stats over several keys together (alert rules scoped to a route or a method)."""
        ids = [i for i in ids if i < self.nkeys]
        counts = self.class_counts[ids].sum(axis=0) if ids else np.zeros(N_CLASSES, dtype=np.int64)
        sketch = LogSketch(self.alpha)
        for i in ids:
            if i in self.sketches:
                sketch.merge(self.sketches[i])
        return _stats(counts, sketch, int(self.invalid[ids].sum()) if ids else 0, window_s)

    def access_count(self) -> int:
        return int(self.class_counts.sum()) if self.nkeys else 0


_ERROR_LEVELS = frozenset({"error", "critical", "fatal", "alert", "emergency"})


def _stats(counts: np.ndarray, sketch: LogSketch | None, invalid: int, window_s: float | None) -> dict[str, Any]:
    count = int(counts.sum())
    with_status = count - int(counts[0])
    c4, c5 = int(counts[4]), int(counts[5])
    out: dict[str, Any] = {
        "count": count,
        "status_2xx": int(counts[2]), "status_3xx": int(counts[3]),
        "status_4xx": c4, "status_5xx": c5,
        "error_rate": (c5 / with_status) if with_status else None,
        "client_error_rate": (c4 / with_status) if with_status else None,
    }
    if sketch is not None and sketch.count:
        qs = sketch.quantiles(QUANTILES)
        for name, v in zip(QUANTILE_FIELDS, qs, strict=True):
            out[name] = _round(v)
        out["max_ms"] = _round(sketch.max)
        out["mean_ms"] = _round(sketch.sum / sketch.count)
        out["total_ms"] = _round(sketch.sum)
        out["latency_count"] = sketch.count
    else:
        for name in QUANTILE_FIELDS:
            out[name] = None
        out["max_ms"] = out["mean_ms"] = None
        out["total_ms"] = 0.0
        out["latency_count"] = 0
    out["invalid_durations"] = invalid
    if window_s:
        out["window_s"] = window_s
        out["rate_per_s"] = count / window_s
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 3)
