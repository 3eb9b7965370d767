"""Page-side figures from browser records (event.kind = "browser"): Web Vitals p75 and the
JavaScript error rate per page route, since start and over the last 5 minutes.

Why apart from the request aggregates: browser events are not traffic (the tap's extract skips
every event.kind), and their percentiles are the page's experience, shown beside server latency.
Cheap on the tail's hot path: a batch made only of access records is skipped in O(1) (the tap
already counted them); only mixed batches are scanned.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from logpipe import fields as F
from logpipe.metrics.batch import Batch
from logpipe.metrics.sketch import LogSketch

VITAL_NAMES = ("LCP", "INP", "CLS", "FCP", "TTFB")
WINDOW_S = 300.0
SLOT_S = 10.0
MAX_PER_SLOT = 5000  # values kept per (route, vital) and 10 s slot; more are counted, not kept
MAX_ROUTES = 500


class PageVitals:
    """Listener of the tap's Aggregator: `on_batch(batch, records)`; `snapshot()` for readers."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.total: dict[tuple[str, str], LogSketch] = {}
        self.views: defaultdict[str, int] = defaultdict(int)
        self.errors: defaultdict[str, int] = defaultdict(int)
        self.slots: deque[tuple[int, dict[tuple[str, str], list[float]], dict[str, list[int]]]] = deque()
        self.overflow = 0

    def on_batch(self, batch: Batch, records: list[dict[str, Any]]) -> None:
        if batch.n_access == batch.n_records:
            return
        kind = F.EVENT_KIND
        browser = [r for r in records if r.get(kind) == F.KIND_BROWSER]
        if browser:
            self.observe(browser)

    def observe(self, records: list[dict[str, Any]]) -> None:
        now = self.clock()
        idx = int(now // SLOT_S)
        with self.lock:
            if not self.slots or self.slots[-1][0] != idx:
                self.slots.append((idx, defaultdict(list), defaultdict(lambda: [0, 0])))
                while self.slots and self.slots[0][0] <= idx - int(WINDOW_S // SLOT_S):
                    self.slots.popleft()
            _i, values, counts = self.slots[-1]
            fresh: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
            for r in records:
                route = r.get(F.PAGE_ROUTE)
                if not isinstance(route, str):
                    continue
                if route not in self.views and len(self.views) >= MAX_ROUTES:
                    route = "{other}"
                t = r.get(F.BROWSER_TYPE)
                if t == "pageview":
                    self.views[route] += 1
                    counts[route][0] += 1
                elif t == "error":
                    self.errors[route] += 1
                    self.views.setdefault(route, 0)
                    counts[route][1] += 1
                elif t == "vital":
                    name, value = r.get(F.VITAL_NAME), r.get(F.VITAL_VALUE)
                    if name in VITAL_NAMES and isinstance(value, int | float) and value >= 0:
                        self.views.setdefault(route, 0)
                        fresh[(route, name)].append(float(value))
            for key, vals in fresh.items():
                sketch = self.total.get(key)
                if sketch is None:
                    sketch = self.total[key] = LogSketch()
                sketch.add_batch(np.asarray(vals))
                kept = values[key]
                room = MAX_PER_SLOT - len(kept)
                kept.extend(vals[:max(0, room)])
                self.overflow += max(0, len(vals) - max(0, room))

    def snapshot(self) -> list[dict[str, Any]]:
        """Per page route: views, JS errors, error rate, and p75/count per vital, since start and 5 m."""
        now = self.clock()
        with self.lock:
            cutoff = int(now // SLOT_S) - int(WINDOW_S // SLOT_S)
            recent = [(v, c) for i, v, c in self.slots if i > cutoff]
            window_vals: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
            window_counts: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
            for values, counts in recent:
                for key, vals in values.items():
                    window_vals[key].extend(vals)
                for route, (v, e) in counts.items():
                    window_counts[route][0] += v
                    window_counts[route][1] += e
            routes = sorted(self.views)
            total = {k: s.copy() for k, s in self.total.items()}
            views, errors = dict(self.views), dict(self.errors)
        out = []
        for route in routes:
            row: dict[str, Any] = {"route": route, "since_start": _page(views.get(route, 0), errors.get(route, 0)),
                                   "5m": _page(*window_counts[route]) if route in window_counts else _page(0, 0)}
            for name in VITAL_NAMES:
                sk = total.get((route, name))
                if sk is not None and sk.count:
                    row["since_start"][name] = {"p75": _r(sk.quantile(0.75)), "count": sk.count}
                vals = window_vals.get((route, name))
                if vals:
                    row["5m"][name] = {"p75": _r(float(np.percentile(vals, 75, method="inverted_cdf"))),
                                       "count": len(vals)}
            out.append(row)
        return out


def _page(views: int, errors: int) -> dict[str, Any]:
    return {"page_views": views, "js_errors": errors, "js_error_rate": (errors / views) if views else None}


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


class PageVitalsCollector(Collector):
    """`/metrics`: logpipe_page_vital_p75{route, vital, window} and page-side counters."""

    def __init__(self, vitals: PageVitals) -> None:
        self.vitals = vitals

    def collect(self) -> Iterator:  # type: ignore[override]
        p75 = GaugeMetricFamily("logpipe_page_vital_p75", "75th percentile of a Web Vital per page route "
                                "(ms; CLS unitless), from browser records.", labels=["route", "vital", "window"])
        views = CounterMetricFamily("logpipe_page_views", "Page views reported by browsers.", labels=["route"])
        errors = CounterMetricFamily("logpipe_page_js_errors", "JavaScript errors reported by browsers "
                                     "(page-side; not in the server's 5xx).", labels=["route"])
        for row in self.vitals.snapshot():
            route = row["route"]
            views.add_metric([route], float(row["since_start"]["page_views"]))
            errors.add_metric([route], float(row["since_start"]["js_errors"]))
            for window in ("5m", "since_start"):
                for name in VITAL_NAMES:
                    v = row[window].get(name)
                    if v is not None and v["p75"] is not None:
                        p75.add_metric([route, name, window], float(v["p75"]))
        yield from (p75, views, errors)
