"""Prometheus exposition of the tap's aggregates and the pipeline's own counters.

Why a custom collector: calling `Histogram.observe` per record costs more than parsing
the line (DESIGN.md measurements). The tap keeps numpy aggregates; this collector turns
them into metric families only when Prometheus scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from logpipe.metrics.batch import STATUS_CLASS_NAMES
from logpipe.metrics.block import HIST_BOUNDS_S, QUANTILE_FIELDS, QUANTILES, Block

if TYPE_CHECKING:
    from logpipe.metrics.tap import LogMetricsTap

WINDOWS = (("1m", 60.0), ("5m", 300.0))
_LE = [f"{b:g}" for b in HIST_BOUNDS_S] + ["+Inf"]


class TapCollector(Collector):
    """Reads the tap at scrape time; holds the aggregation lock only to copy arrays."""

    def __init__(self, tap: LogMetricsTap) -> None:
        self.tap = tap

    def collect(self) -> Iterator:  # type: ignore[override]
        yield from self._http()
        yield from self._windows()
        yield from self._logs()
        yield from self._pipeline()
        yield from self._alerts()

    def _http(self) -> Iterator:
        agg = self.tap.agg
        with agg.lock:
            keys = list(agg.table.keys)
            total = agg.total
            counts = total.class_counts.copy()
            hist = total.hist.copy() if total.hist is not None else None
            sums = total.sum_ms.copy()
            invalid = total.invalid.copy()
        requests = CounterMetricFamily("logpipe_http_requests", "Access records by route, method and status class.",
                                       labels=["route", "method", "status_class"])
        duration = HistogramMetricFamily("logpipe_http_request_duration_seconds",
                                         "Request latency from access logs.", labels=["route", "method"])
        bad = CounterMetricFamily("logpipe_http_invalid_durations",
                                  "Access records whose duration was negative or above a day.",
                                  labels=["route", "method"])
        for i in range(counts.shape[0]):
            route, method = keys[i]
            for c, name in enumerate(STATUS_CLASS_NAMES):
                if counts[i, c]:
                    requests.add_metric([route, method, name], float(counts[i, c]))
            if hist is not None and hist[i].any():
                cum = np.cumsum(hist[i])
                duration.add_metric([route, method], [(le, float(v)) for le, v in zip(_LE, cum, strict=True)],
                                    sum_value=float(sums[i]) / 1000.0)
            if invalid[i]:
                bad.add_metric([route, method], float(invalid[i]))
        folded = CounterMetricFamily("logpipe_routes_folded", "Requests folded into {other} by the route cap.")
        folded.add_metric([], float(agg.routes_folded()))
        routes = GaugeMetricFamily("logpipe_routes", "Distinct route+method keys being tracked.")
        routes.add_metric([], float(len(keys)))
        yield from (requests, duration, bad, folded, routes)

    def _windows(self) -> Iterator:
        agg = self.tap.agg
        lat = GaugeMetricFamily("logpipe_http_request_duration_window_ms",
                                "Latency quantiles over sliding windows and since start (sketches, <=1% error).",
                                labels=["route", "method", "window", "quantile"])
        rate = GaugeMetricFamily("logpipe_http_request_rate_window", "Requests per second over sliding windows.",
                                 labels=["route", "method", "window"])
        err = GaugeMetricFamily("logpipe_http_error_rate_window", "Share of 5xx responses over sliding windows.",
                                labels=["route", "method", "window"])
        uptime = max(1e-9, agg.clock() - agg.started_at)
        for wname, seconds in (*WINDOWS, ("since_start", uptime)):
            if wname == "since_start":
                with agg.lock:
                    block = Block(agg.total.alpha)
                    block.merge(agg.total)  # a copy: sketches are read outside the lock
            else:
                block = agg.window(seconds)
            keys = list(agg.table.keys)  # after the block: ids only grow, so every id has a key
            rows = [("*", "*", block.overall_stats(seconds))]
            rows += [(*keys[k], block.key_stats(k, seconds)) for k in block.active_keys()]
            for route, method, st in rows:
                rate.add_metric([route, method, wname], float(st["rate_per_s"]))
                if st["error_rate"] is not None:
                    err.add_metric([route, method, wname], float(st["error_rate"]))
                for q, field in zip(QUANTILES, QUANTILE_FIELDS, strict=True):
                    if st[field] is not None:
                        lat.add_metric([route, method, wname, f"{q:g}"], float(st[field]))
        yield from (lat, rate, err)

    def _logs(self) -> Iterator:
        total = self.tap.agg.total
        with self.tap.agg.lock:
            levels = dict(total.levels)
            exceptions = total.exceptions.most_common(50)
        lv = CounterMetricFamily("logpipe_log_records", "App/error log records by level.", labels=["level"])
        for level, n in sorted(levels.items(), key=lambda kv: str(kv[0])):
            lv.add_metric([str(level)], float(n))
        ex = CounterMetricFamily("logpipe_exceptions", "Exceptions in logs by type (top 50).", labels=["type"])
        for typ, n in exceptions:
            ex.add_metric([typ], float(n))
        yield from (lv, ex)

    def _pipeline(self) -> Iterator:
        s = self.tap.stats
        now = time.time()

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc)
            c.add_metric([], float(value))
            return c

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], float(value))
            return g

        yield counter("logpipe_lines_read", "Lines read from input files.", s.lines_read)
        yield counter("logpipe_bytes_read", "Bytes read from input files.", s.bytes_read)
        yield counter("logpipe_records_parsed", "Records produced by the parsers.", s.records_parsed)
        yield counter("logpipe_parse_failures", "Lines shipped raw because they did not parse.", s.parse_failures)
        yield counter("logpipe_records_delivered", "Records acknowledged by the sink.", s.delivered)
        yield counter("logpipe_records_duplicates", "Records the sink already had (idempotent retries).", s.duplicates)
        yield counter("logpipe_records_encode_failures", "Records delivered in the safe form (tagged _encode_failure).",
                      s.encode_failures)
        yield counter("logpipe_records_dead_lettered", "Records no destination accepted.", s.dead_lettered)
        dropped = CounterMetricFamily("logpipe_records_dropped", "Records dropped on purpose, by reason.",
                                      labels=["reason"])
        for reason, n in sorted(dict(s.dropped).items()):
            dropped.add_metric([reason], float(n))
        yield dropped
        behind = GaugeMetricFamily("logpipe_file_bytes_behind", "Bytes not yet acknowledged, per file.",
                                   labels=["path"])
        for path, f in sorted(dict(s.files).items()):
            behind.add_metric([path], float(max(0, f.size - f.acked_offset)))
        yield behind
        yield gauge("logpipe_bytes_behind", "Bytes not yet acknowledged, all files.", s.bytes_behind())
        yield gauge("logpipe_sink_latency_seconds", "Latency of the last acknowledged batch.", s.last_sink_latency_s)
        ack_age = now - s.last_ack_at if s.last_ack_at else (now - s.started_at if s.started_at else 0.0)
        yield gauge("logpipe_last_ack_age_seconds", "Seconds since the sink last acknowledged a batch.", ack_age)
        yield gauge("logpipe_inflight_batches", "Batches sent and not yet acknowledged.", s.inflight_batches)
        yield gauge("logpipe_inflight_bytes", "Bytes sent and not yet acknowledged.", s.inflight_bytes)
        yield gauge("logpipe_sink_healthy", "1 when the last sink call succeeded.", 0.0 if s.sink_error else 1.0)
        nodes = GaugeMetricFamily("logpipe_sink_node_up", "1 while a sink node/server answers, 0 while it is "
                                  "benched after a failure (several Elasticsearch nodes or forward servers).",
                                  labels=["node"])
        for url, up in sorted(dict(s.sink_nodes).items()):
            nodes.add_metric([url], 1.0 if up else 0.0)
        yield nodes
        yield counter("logpipe_sink_requests_rerouted", "Sink requests sent again to another node/server after "
                      "theirs failed.", s.sink_rerouted)
        yield counter("logpipe_metrics_internal_errors", "Errors inside the metrics tap (delivery continued).",
                      self.tap.internal_errors)
        yield counter("logpipe_metrics_records_dropped", "Metric/alert records dropped: nobody drained them.",
                      self.tap.records_dropped)

    def _alerts(self) -> Iterator:
        tap = self.tap
        firing = GaugeMetricFamily("logpipe_alert_firing", "1 while an alert rule is firing.",
                                   labels=["alert", "severity"])
        if tap.alerts is not None:
            for rule in tap.alerts.rules:
                firing.add_metric([rule.name, rule.severity], 1.0 if tap.alerts.states[rule.name].firing else 0.0)
        yield firing
        notes = CounterMetricFamily("logpipe_alert_events", "Alert state changes emitted.", labels=["state"])
        notes.add_metric(["firing"], float(tap.alerts_fired))
        notes.add_metric(["resolved"], float(tap.alerts_resolved))
        yield notes
        failures = CounterMetricFamily("logpipe_alert_webhook_failures",
                                       "Webhook alerts given up on after retries, or dropped on a full queue.")
        failures.add_metric([], float(sum(getattr(n, "failed", 0) + getattr(n, "dropped", 0)
                                          for n in tap.notifiers)))
        yield failures


def make_registry(tap: LogMetricsTap) -> CollectorRegistry:
    """A private registry (not the global one) so tests and several taps never collide."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TapCollector(tap))
    return registry
