"""Wiring for `logpipe tail`: tap + alert rules + notifiers + HTTP endpoint + ticker thread.

`start_metrics(cfg, stats)` is the one call the tail command makes; the object it returns
is the pipeline's MetricsTap and also owns the background pieces (`stop()` ends them).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from logpipe.config import Config, ConfigError
from logpipe.metrics.alerts import AlertConfigError, AlertEngine, default_rules, load_rules
from logpipe.metrics.columns import TapColumns
from logpipe.metrics.dashboard import Dashboard
from logpipe.metrics.dashboard_http import DashboardRoutes, DashboardStartError
from logpipe.metrics.notify import StderrNotifier, WebhookNotifier
from logpipe.metrics.pagevitals import PageVitals, PageVitalsCollector
from logpipe.metrics.prometheus import make_registry
from logpipe.metrics.server import MetricsServer
from logpipe.metrics.tap import LogMetricsTap, Notifier
from logpipe.stages import PipelineStats


class MetricsRuntime:
    """A MetricsTap (observe / drain_records / on_delivery) plus its threads and server."""

    whole_records = False  # the native core's metric columns are enough

    def __init__(self, tap: LogMetricsTap, server: MetricsServer | None, tick_s: float = 1.0,
                 dashboard: Dashboard | None = None) -> None:
        self.tap = tap
        self.server = server
        self.dashboard = dashboard
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, args=(tick_s,), name="logpipe-metrics-tick",
                                        daemon=True)
        self._ticker.start()

    @property
    def port(self) -> int | None:
        return self.server.port if self.server else None

    @property
    def url(self) -> str | None:
        return f"http://{self.server.host}:{self.server.port}" if self.server else None

    def observe(self, records: list[dict[str, Any]]) -> None:
        self.tap.observe(records)

    def observe_columns(self, cols: TapColumns) -> None:
        self.tap.observe_columns(cols)

    def drain_records(self) -> list[dict[str, Any]]:
        return self.tap.drain_records()

    def flush_records(self) -> list[dict[str, Any]]:
        """Final metric records (unfinished interval) and pending alerts, for the last batch."""
        return self.tap.flush_records()

    def pending_records(self) -> int:
        """Metric/alert records due and not yet drained; an idle pipeline can poll this."""
        return self.tap.pending_records()

    def on_delivery(self, delivered: int, dropped: dict[str, int], dead_lettered: int,
                    sink_latency_s: float) -> None:
        self.tap.on_delivery(delivered, dropped, dead_lettered, sink_latency_s)

    def _tick_loop(self, tick_s: float) -> None:
        """Alerts such as 'no access records' must be evaluated when no batch arrives."""
        while not self._stop.wait(tick_s):
            try:
                self.tap.tick()
            except Exception as exc:  # noqa: BLE001 - the ticker must survive
                self.tap._internal_error(exc)

    def stop(self) -> None:
        """Stop ticking, flush notifiers briefly, close the HTTP server. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._ticker.join(2.0)
        self.tap.stop()
        if self.dashboard is not None:
            self.dashboard.stop()
        if self.server:
            self.server.stop()

    close = stop  # the tail command calls close()


def start_metrics(cfg: Config, stats: PipelineStats, *, clock: Callable[[], float] = time.time,
                  tick_s: float = 1.0) -> MetricsRuntime | None:
    """Build the tap from cfg.metrics / cfg.alerts; None when metrics are entirely off."""
    m, a = cfg.metrics, cfg.alerts
    if not m.addr and m.interval_s <= 0 and not (a.file or a.webhook_url):
        return None
    engine = None
    notifiers: list[Notifier] = []
    service = next((i.service for i in cfg.inputs if i.service), "")
    if a.enabled:
        try:
            rules = load_rules(a.file) if a.file else default_rules()
        except AlertConfigError as exc:
            raise ConfigError(str(exc)) from None
        engine = AlertEngine(rules, service=service)
        notifiers.append(StderrNotifier())
        if a.webhook_url:
            notifiers.append(WebhookNotifier(a.webhook_url))
    if not stats.started_at:
        stats.started_at = clock()
    tap = LogMetricsTap(
        max_routes_per_method=m.max_routes_per_method, interval_s=m.interval_s, service=service,
        host=cfg.pipeline.host or socket.gethostname(), stats=stats, alerts=engine, notifiers=notifiers,
        clock=clock,
    )
    pages = PageVitals(clock)  # browser records' Web Vitals and JS errors, beside server latency
    tap.agg.listeners.append(pages.on_batch)
    server = None
    dashboard = routes = None
    if m.dashboard:
        if not m.addr:
            tap.stop()
            raise ConfigError("the dashboard is served on metrics.addr: give --metrics-addr")
        dashboard = Dashboard(tap, stats, pages=pages)
        try:
            routes = DashboardRoutes(dashboard, m.addr.rpartition(":")[0].strip("[]"))
        except DashboardStartError as exc:
            tap.stop()
            raise ConfigError(str(exc)) from None
    if m.addr:
        try:
            registry = make_registry(tap)
            registry.register(PageVitalsCollector(pages))
            server = MetricsServer(m.addr, registry, stats, m.health_max_ack_age_s, routes).start()
        except (OSError, ValueError) as exc:
            tap.stop()
            raise ConfigError(f"metrics.addr '{m.addr}': cannot listen: {exc}") from None
    if dashboard is not None:
        dashboard.start()
    return MetricsRuntime(tap, server, tick_s, dashboard)
