"""Since-start totals plus sliding windows built from fixed time slots.

Why slots: a 1 min / 5 min sliding window is the merge of the last 6 / 30 ten-second
slots, so memory is bounded by (slots × active routes) and nothing is kept per record.
Slot sketches use the same α = 0.5% as since-start ones (so metric records and `logpipe report`
give identical quantiles for the same requests) but at most 1,024 buckets (≤ 8 KB; typically
2–5 KB for a route's 10 s of traffic), so the worst case is slots × routes × 8 KB.
Time comes from an injectable clock (arrival time, so a backlog read at start-up counts as
"now"), which also lets tests move it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from logpipe.metrics.batch import Batch, KeyTable, extract, extract_columns
from logpipe.metrics.block import Block
from logpipe.metrics.columns import TapColumns
from logpipe.metrics.sketch import DEFAULT_ALPHA

SLOT_ALPHA = DEFAULT_ALPHA
SLOT_MAX_BUCKETS = 1024


class Aggregator:
    """The shared aggregation core of the tail tap and `logpipe report`."""

    def __init__(self, max_routes_per_method: int = 1000, *, slot_s: float = 10.0,
                 retention_s: float = 300.0, windowed: bool = True,
                 clock: Callable[[], float] = time.time, alpha: float = DEFAULT_ALPHA,
                 with_hist: bool = True) -> None:
        self.table = KeyTable(max_routes_per_method)
        self.alpha = alpha
        self.total = Block(alpha, with_hist=with_hist)  # the histogram is for Prometheus only
        self.windowed = windowed
        self.slot_s = slot_s
        self.retention_slots = max(1, int(round(retention_s / slot_s)))
        self.slots: deque[tuple[int, Block]] = deque()
        self.clock = clock
        self.started_at = clock()
        self.last_access_at = 0.0
        self.lock = threading.Lock()  # guards blocks; held briefly by writers and readers alike
        self._extract_lock = threading.Lock()
        self.listeners: list[Callable[[Batch, list[dict[str, Any]]], None]] = []

    def observe(self, records: list[dict[str, Any]]) -> Batch | None:
        """Aggregate one batch; returns its columns (report details reuse them)."""
        if not records:
            return None
        with self._extract_lock:  # the KeyTable's writer; scrapes never wait on this part
            batch = extract(records, self.table)
        self._add(batch, records)
        return batch

    def observe_columns(self, cols: TapColumns) -> Batch | None:
        """`observe` for records given as columns (the native core's road); listeners see the
        records that came as dicts."""
        if not cols.n_records:
            return None
        with self._extract_lock:
            batch = extract_columns(cols, self.table)
        self._add(batch, cols.records)
        return batch

    def _add(self, batch: Batch, records: list[dict[str, Any]]) -> None:
        with self.lock:
            self.total.add(batch)
            now = self.clock()
            if batch.n_access:
                self.last_access_at = now
            if self.windowed:
                self._slot(now).add(batch)
            for listener in self.listeners:
                listener(batch, records)

    def _slot(self, now: float) -> Block:
        idx = int(now // self.slot_s)
        if self.slots and self.slots[-1][0] == idx:
            return self.slots[-1][1]
        block = Block(SLOT_ALPHA, max_buckets=SLOT_MAX_BUCKETS)
        self.slots.append((idx, block))
        self._expire(idx)
        return block

    def _expire(self, current: int) -> None:
        while self.slots and self.slots[0][0] <= current - self.retention_slots:
            self.slots.popleft()

    def window(self, seconds: float, now: float | None = None) -> Block:
        """Merge of the slots covering the last `seconds` (including the current slot)."""
        now = self.clock() if now is None else now
        current = int(now // self.slot_s)
        n = max(1, int(round(seconds / self.slot_s)))
        with self.lock:
            self._expire(current)
            picked = [(i, b) for i, b in self.slots if i > current - n]
        return self._merge(picked)

    def slots_between(self, first: int, last: int) -> Block:
        """Merge of slots with first <= index < last (metric records: completed slots)."""
        with self.lock:
            picked = [(i, b) for i, b in self.slots if first <= i < last]
        return self._merge(picked)

    def _merge(self, picked: list[tuple[int, Block]]) -> Block:
        """Merge outside the lock, so a scrape or an alert evaluation never holds up `observe`.

        Only the newest slot is still written to; it is copied under the lock (one slot,
        cheap), the others are read-only once time has moved past them.
        """
        out = Block(SLOT_ALPHA, max_buckets=SLOT_MAX_BUCKETS)
        live = None
        with self.lock:
            newest = self.slots[-1][1] if self.slots else None
            for _i, b in picked:
                if b is newest:
                    live = b
                    out.merge(b)
        for _i, b in picked:
            if b is not live:
                out.merge(b)
        return out

    def key(self, key_id: int) -> tuple[str, str]:
        return self.table.keys[key_id]

    def routes_folded(self) -> int:
        """Requests that the cardinality cap folded into {other}."""
        total = 0
        for i, (route, _method) in enumerate(self.table.keys):
            if route == "{other}" and i < self.total.nkeys:
                total += int(self.total.class_counts[i].sum())
        return total
