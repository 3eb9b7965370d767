"""A mergeable latency sketch with bounded relative error (DDSketch-style log buckets).

Why our own and not the `ddsketch` package: the package adds one value per Python call
(≈4 µs each here), while the tap sees batches; one `np.log` + `np.bincount` over a batch
inserts thousands of durations for the price of a few calls (see bench/bench_metrics.py).
The maths is DDSketch's: bucket i holds values in (γ^(i-1), γ^i] with γ = (1+α)/(1-α), so
reporting 2γ^i/(γ+1) for any value in the bucket is within relative error α of it.
Buckets live in one dense int64 array covering [offset, offset+len); when the span would
exceed `max_buckets` the lowest buckets are collapsed into one (CollapsingLowestDenseStore),
so memory is bounded whatever the traffic, and only tiny latencies lose precision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_ALPHA = 0.005  # half the 1% the issue allows, so rank conventions cannot push us over
DEFAULT_MAX_BUCKETS = 2048
MIN_POSITIVE = 1e-6  # ms; smaller values count as zero (1 ns)


@dataclass(slots=True)
class Prepared:
    """A batch already turned into bucket counts."""

    alpha: float
    n: int
    total: float
    vmin: float
    vmax: float
    zero: int
    lo: int
    counts: np.ndarray | None


def prepare(values: np.ndarray, alpha: float = DEFAULT_ALPHA) -> Prepared:
    """Bucket finite, non-negative values: one log + one bincount for the whole batch."""
    n = int(values.size)
    vmin = float(values.min())
    vmax = float(values.max())
    total = float(values.sum())
    zero = 0
    if vmin > MIN_POSITIVE:
        pos = values
    else:
        pos = values[values > MIN_POSITIVE]
        zero = n - int(pos.size)
        if pos.size == 0:
            return Prepared(alpha, n, total, vmin, vmax, zero, 0, None)
    ln_gamma = math.log((1 + alpha) / (1 - alpha))
    idx = np.ceil(np.log(pos) * (1.0 / ln_gamma)).astype(np.int64)
    lo = int(idx.min())
    return Prepared(alpha, n, total, vmin, vmax, zero, lo, np.bincount(idx - lo))


class LogSketch:
    """Quantile sketch over non-negative values; `add_batch` takes a numpy array."""

    __slots__ = ("alpha", "gamma", "_ln_gamma", "max_buckets", "_counts", "_offset",
                 "zero_count", "count", "sum", "min", "max")

    def __init__(self, alpha: float = DEFAULT_ALPHA, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.alpha = alpha
        self.gamma = (1 + alpha) / (1 - alpha)
        self._ln_gamma = math.log(self.gamma)
        self.max_buckets = max_buckets
        self._counts = np.zeros(0, dtype=np.int64)
        self._offset = 0
        self.zero_count = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    # -- insertion -------------------------------------------------------------------------
    def add(self, value: float) -> None:
        """Add one value (convenience for tests; hot paths use add_batch)."""
        self.add_batch(np.asarray([value], dtype=np.float64))

    def add_batch(self, values: np.ndarray) -> None:
        """Add finite, non-negative values (the caller filters invalid ones)."""
        if values.size:
            self.add_prepared(prepare(values, self.alpha))

    def add_prepared(self, p: Prepared) -> None:
        """Add a batch bucketed once by `prepare` (one batch feeds several sketches)."""
        if abs(p.alpha - self.alpha) > 1e-15:
            raise ValueError("prepared with a different accuracy")
        self.count += p.n
        self.sum += p.total
        self.min = min(self.min, p.vmin)
        self.max = max(self.max, p.vmax)
        self.zero_count += p.zero
        if p.counts is not None:
            self._add_counts(p.lo, p.counts)

    def _add_counts(self, lo: int, counts: np.ndarray) -> None:
        """Add a dense run of bucket counts starting at bucket index `lo`."""
        hi = lo + counts.size - 1
        lo_eff = self._ensure(lo, hi)
        if lo_eff > lo:  # collapsed: everything below lo_eff lands in the lowest bucket
            cut = lo_eff - lo
            self._counts[0] += int(counts[:cut].sum())
            counts = counts[cut:]
            lo = lo_eff
        start = lo - self._offset
        self._counts[start:start + counts.size] += counts

    def _ensure(self, lo: int, hi: int) -> int:
        """Grow the dense array to cover [lo, hi]; return the lowest index now stored."""
        cur = self._counts
        if cur.size == 0:
            new_lo = max(lo, hi - self.max_buckets + 1)
            self._counts = np.zeros(hi - new_lo + 1, dtype=np.int64)
            self._offset = new_lo
            return new_lo
        cur_lo, cur_hi = self._offset, self._offset + cur.size - 1
        new_lo, new_hi = min(lo, cur_lo), max(hi, cur_hi)
        if new_hi - new_lo + 1 > self.max_buckets:
            new_lo = new_hi - self.max_buckets + 1
        if new_lo == cur_lo and new_hi == cur_hi:
            return new_lo
        grown = np.zeros(new_hi - new_lo + 1, dtype=np.int64)
        if cur_lo >= new_lo:
            grown[cur_lo - new_lo:cur_hi - new_lo + 1] = cur
        else:  # collapse the old lowest buckets into the new lowest one
            keep = cur[new_lo - cur_lo:]
            grown[:keep.size] = keep
            grown[0] += int(cur[:new_lo - cur_lo].sum())
        self._counts = grown
        self._offset = new_lo
        return new_lo

    # -- merging -----------------------------------------------------------------------------
    def merge(self, other: LogSketch) -> None:
        """Add `other`'s contents (same alpha): the result equals the sketch of the union."""
        if other.count == 0:
            return
        if abs(other.gamma - self.gamma) > 1e-12:
            raise ValueError("cannot merge sketches with different accuracy")
        self.count += other.count
        self.sum += other.sum
        self.zero_count += other.zero_count
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        if other._counts.size:
            self._add_counts(other._offset, other._counts)

    def copy(self) -> LogSketch:
        out = LogSketch(self.alpha, self.max_buckets)
        out.merge(self)
        return out

    # -- queries -----------------------------------------------------------------------------
    def quantile(self, q: float) -> float | None:
        """Value at rank floor(q·(n-1)), within relative error alpha; None when empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        if self.count == 0:
            return [None for _ in qs]
        cum = np.cumsum(self._counts) + self.zero_count if self._counts.size else None
        out: list[float | None] = []
        for q in qs:
            rank = math.floor(min(max(q, 0.0), 1.0) * (self.count - 1))
            if rank < self.zero_count or cum is None:
                value = 0.0
            else:
                i = int(np.searchsorted(cum, rank, side="right"))
                value = 2.0 * self.gamma ** (self._offset + i) / (self.gamma + 1.0)
            out.append(min(max(value, self.min), self.max))
        return out

    @property
    def bucket_count(self) -> int:
        return int(self._counts.size)

    # -- serialisation (fleet merging: ship the dict, merge on the other side) ---------------
    def to_dict(self) -> dict[str, Any]:
        nz = np.flatnonzero(self._counts)
        return {
            "alpha": self.alpha, "count": self.count, "sum": self.sum, "zero": self.zero_count,
            "min": self.min if self.count else None, "max": self.max if self.count else None,
            "offset": self._offset,
            "bins": {int(i): int(self._counts[i]) for i in nz},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogSketch:
        out = cls(float(data["alpha"]))
        out.count = int(data["count"])
        out.sum = float(data["sum"])
        out.zero_count = int(data["zero"])
        out.min = math.inf if data["min"] is None else float(data["min"])
        out.max = -math.inf if data["max"] is None else float(data["max"])
        bins = {int(k): int(v) for k, v in data["bins"].items()}
        if bins:
            span = max(bins) + 1
            counts = np.zeros(span, dtype=np.int64)
            for k, v in bins.items():
                counts[k] = v
            out._add_counts(int(data["offset"]), counts)
        return out


def merged(sketches: Iterable[LogSketch], alpha: float = DEFAULT_ALPHA) -> LogSketch:
    """One sketch holding the union of `sketches`."""
    out = LogSketch(alpha)
    for s in sketches:
        out.merge(s)
    return out
