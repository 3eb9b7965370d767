"""The metrics tap the tail pipeline calls: observe batches, hand back metric/alert records.

Cheap by construction: `observe` is one columnar pass plus numpy per batch (no per-record
metric-library calls); everything periodic (metric records, alert evaluation) runs in
`tick`, at most every `eval_interval_s`, from `observe`/`drain_records` or a ticker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from logpipe import fields as F
from logpipe.metrics.alerts import AlertEngine, iso_utc
from logpipe.metrics.block import Block
from logpipe.metrics.columns import TapColumns
from logpipe.metrics.windows import Aggregator
from logpipe.stages import PipelineStats


class Notifier(Protocol):
    def notify(self, record: dict[str, Any]) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


class LogMetricsTap:
    """Implements logpipe.stages.ColumnTap (a MetricsTap that also takes columns)."""

    whole_records = False  # the native core's metric columns are enough

    def __init__(self, *, max_routes_per_method: int = 1000, interval_s: float = 60.0,
                 service: str = "", host: str = "", stats: PipelineStats | None = None,
                 alerts: AlertEngine | None = None, notifiers: list[Notifier] | None = None,
                 clock: Callable[[], float] = time.time, eval_interval_s: float = 5.0,
                 max_pending_records: int = 100_000) -> None:
        slot_s = min(10.0, interval_s) if interval_s > 0 else 10.0
        retention = max(300.0, interval_s + slot_s, alerts.max_window_s() if alerts else 0.0)
        self.agg = Aggregator(max_routes_per_method, slot_s=slot_s, retention_s=retention, clock=clock)
        self.clock = clock
        self.interval_s = interval_s
        self.service = service
        self.host = host
        self.stats = stats if stats is not None else PipelineStats(started_at=clock())
        self.alerts = alerts
        self.notifiers = notifiers or []
        self.eval_interval_s = eval_interval_s
        self.max_pending_records = max_pending_records
        self._pending: list[dict[str, Any]] = []
        self._pending_lock = threading.Lock()
        self._tick_lock = threading.Lock()
        self._last_eval = -1e18
        self._emitted_upto = int(clock() // self.agg.slot_s)
        self._last_emit = clock()
        self.records_dropped = 0  # derived records dropped because nobody drained them
        self.alerts_fired = 0
        self.alerts_resolved = 0
        self.internal_errors = 0
        self.last_internal_error = ""

    # -- MetricsTap --------------------------------------------------------------------------
    def observe(self, records: list[dict[str, Any]]) -> None:
        """Aggregate a batch; never raises into the pipeline (a metrics bug must not stop logs)."""
        try:
            self.agg.observe(records)
            self.tick()
        except Exception as exc:  # noqa: BLE001 - deliberately isolated from delivery
            self._internal_error(exc)

    def observe_columns(self, cols: TapColumns) -> None:
        """`observe` for a batch given as columns (the native core's road): the same aggregates
        as observing the same records as dicts (tests/test_tap_columns.py)."""
        try:
            self.agg.observe_columns(cols)
            self.tick()
        except Exception as exc:  # noqa: BLE001 - deliberately isolated from delivery
            self._internal_error(exc)

    def drain_records(self) -> list[dict[str, Any]]:
        try:
            self.tick()
        except Exception as exc:  # noqa: BLE001
            self._internal_error(exc)
        with self._pending_lock:
            out, self._pending = self._pending, []
        return out

    def flush_records(self) -> list[dict[str, Any]]:
        """At shutdown (`tail --once`, SIGTERM): metric records for the unfinished interval,
        current slot included, plus anything pending, so the last minute is not lost."""
        now = self.clock()
        with self._tick_lock:
            first, self._emitted_upto = self._emitted_upto, int(now // self.agg.slot_s) + 1
            self._last_emit = now
        block = self.agg.slots_between(first, self._emitted_upto)
        if block.records:
            self._push(self.metric_records(block, max(self.agg.slot_s, now - first * self.agg.slot_s), now))
        with self._pending_lock:
            out, self._pending = self._pending, []
        return out

    def pending_records(self) -> int:
        """Derived records waiting for drain_records (lets an idle pipeline ship them)."""
        return len(self._pending)

    def on_delivery(self, delivered: int, dropped: dict[str, int], dead_lettered: int,
                    sink_latency_s: float) -> None:
        """The pipeline owns PipelineStats; we only remember the latest sink latency if it did not."""
        if sink_latency_s and not self.stats.last_sink_latency_s:
            self.stats.last_sink_latency_s = sink_latency_s

    # -- periodic work -----------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        """Emit due metric records and evaluate alerts; cheap when nothing is due."""
        now = self.clock() if now is None else now
        if now - self._last_eval < self.eval_interval_s and now - self._last_emit < self.interval_s:
            return
        if not self._tick_lock.acquire(blocking=False):
            return  # another thread is ticking; never wait
        try:
            if self.interval_s > 0 and now - self._last_emit >= self.interval_s:
                self._emit_metrics(now)
            if self.alerts is not None and now - self._last_eval >= self.eval_interval_s:
                self._last_eval = now
                self._evaluate(now)
        finally:
            self._tick_lock.release()

    def _emit_metrics(self, now: float) -> None:
        current = int(now // self.agg.slot_s)
        first = self._emitted_upto
        self._last_emit = now
        if current <= first:
            return
        self._emitted_upto = current
        block = self.agg.slots_between(first, current)
        window_s = (current - first) * self.agg.slot_s
        self._push(self.metric_records(block, window_s, now))

    def metric_records(self, block: Block, window_s: float, now: float) -> list[dict[str, Any]]:
        """One record per active route+method plus an overall one (route '*', method '*')."""
        out: list[dict[str, Any]] = []
        ts = iso_utc(now)
        overall = block.overall_stats(window_s)
        overall["levels"] = dict(block.levels)
        if block.exceptions:
            overall["top_exceptions"] = dict(block.exceptions.most_common(10))
        out.append(self._metric(ts, "*", "*", overall))
        for key in block.active_keys():
            route, method = self.agg.key(key)
            out.append(self._metric(ts, route, method, block.key_stats(key, window_s)))
        return out

    def _metric(self, ts: str, route: str, method: str, stats: dict[str, Any]) -> dict[str, Any]:
        rec: dict[str, Any] = {F.TIMESTAMP: ts, F.EVENT_KIND: F.KIND_METRIC}
        if self.service:
            rec[F.SERVICE] = self.service
        if self.host:
            rec[F.HOST] = self.host
        rec[F.ROUTE] = route
        rec[F.METHOD] = method
        rec.update(stats)
        return rec

    def _evaluate(self, now: float) -> None:
        assert self.alerts is not None
        events = self.alerts.evaluate(lambda s: self.agg.window(s, now), list(self.agg.table.keys),
                                      now, now - self.agg.started_at, self.agg.last_access_at > 0)
        if not events:
            return
        for ev in events:
            if ev[F.ALERT_STATE] == "firing":
                self.alerts_fired += 1
            else:
                self.alerts_resolved += 1
            for n in self.notifiers:
                try:
                    n.notify(ev)
                except Exception as exc:  # noqa: BLE001
                    self._internal_error(exc)
        self._push(events)

    def _push(self, records: list[dict[str, Any]]) -> None:
        with self._pending_lock:
            room = self.max_pending_records - len(self._pending)
            if room < len(records):
                self.records_dropped += len(records) - max(room, 0)
                records = records[:max(room, 0)]
            self._pending.extend(records)

    def _internal_error(self, exc: Exception) -> None:
        """Counted (exported as logpipe_metrics_internal_errors_total) and said once on stderr."""
        self.internal_errors += 1
        self.last_internal_error = f"{type(exc).__name__}: {exc}"
        if self.internal_errors == 1:
            import sys
            import traceback
            print(f"logpipe metrics: internal error (delivery continues): {self.last_internal_error}",
                  file=sys.stderr)
            traceback.print_exception(exc, file=sys.stderr)

    # -- lifecycle ---------------------------------------------------------------------------
    def stop(self) -> None:
        for n in self.notifiers:
            n.stop()
