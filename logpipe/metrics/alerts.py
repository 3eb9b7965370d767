"""Alert rules (TOML) and their evaluation: pending -> firing -> resolved, with cooldown.

A rule file holds `[[rules]]` tables (or `[rules.<name>]` tables):

    [[rules]]
    name = "high_5xx_rate"
    metric = "error_rate"       # see METRICS
    window = "5m"               # sliding window the value is computed over
    comparison = ">"
    threshold = 0.05
    for = "0s"                  # condition must hold this long before firing
    severity = "critical"
    cooldown = "15m"            # no second notification for this rule within this time
    # optional: route = "/users/{id}", method = "GET", min_count = 20

Why cooldown and dedup: a flapping error rate must not page someone every 10 seconds;
a rule notifies once when it fires and once when it resolves, and a re-fire inside the
cooldown stays silent (it is still counted).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from logpipe import fields as F
from logpipe.config import read_toml
from logpipe.metrics.block import Block

METRICS: dict[str, str] = {
    "error_rate": "share of requests with a status that answered 5xx (0..1)",
    "client_error_rate": "share of requests with a status that answered 4xx (0..1)",
    "p50_ms": "median latency", "p90_ms": "90th percentile latency",
    "p95_ms": "95th percentile latency", "p99_ms": "99th percentile latency",
    "max_ms": "slowest request", "mean_ms": "mean latency",
    "count": "access records in the window", "rate_per_s": "access records per second",
    "status_5xx": "5xx responses in the window", "status_4xx": "4xx responses in the window",
    "error_logs": "error-level log records in the window",
    "error_logs_per_min": "error-level log records per minute",
    "invalid_durations": "access records with negative or absurd durations",
    "records": "all records in the window",
}
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}
SEVERITIES = ("info", "warning", "critical")
RULE_KEYS = ("name", "metric", "window", "comparison", "threshold", "for", "severity", "cooldown",
             "route", "method", "min_count", "description")
_VOLUME_METRICS = frozenset({"count", "rate_per_s", "records"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class AlertConfigError(ValueError):
    """An alert file problem; the message names the file and the offending key or value."""


@dataclass
class AlertRule:
    name: str
    metric: str
    window_s: float = 300.0
    comparison: str = ">"
    threshold: float = 0.0
    for_s: float = 0.0
    severity: str = "warning"
    cooldown_s: float = 900.0
    route: str = ""
    method: str = ""
    min_count: int = 0
    description: str = ""

    @property
    def is_absence(self) -> bool:
        """"Too little traffic" rules: only meaningful after a full window of uptime."""
        return self.metric in _VOLUME_METRICS and self.comparison in ("<", "<=", "==")


def default_rules() -> list[AlertRule]:
    """Common practice: 5xx > 5% (critical), p95 > 1 s (warning), silence (warning), all over 5 min;
    rate and latency rules need 20 requests in the window so a handful of requests cannot page."""
    return [
        AlertRule("high_5xx_rate", "error_rate", 300, ">", 0.05, 0, "critical", 900, min_count=20,
                  description="More than 5% of requests answered 5xx over 5 minutes"),
        AlertRule("slow_p95", "p95_ms", 300, ">", 1000.0, 0, "warning", 900, min_count=20,
                  description="95th percentile latency above 1 s over 5 minutes"),
        AlertRule("no_access_records", "count", 300, "<", 1, 0, "warning", 900,
                  description="No access records for 5 minutes"),
    ]


def parse_duration(value: Any, where: str) -> float:
    """'90s', '5m', '1h', '250ms' or a number of seconds."""
    if isinstance(value, bool):
        raise AlertConfigError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise AlertConfigError(f"{where}: expected a duration such as '30s', '5m' or '1h', got {value!r}")


def load_rules(path: str | Path) -> list[AlertRule]:
    """Read rules from TOML; an unknown key, metric, comparison or severity is an error naming it."""
    raw = read_toml(path, "alert rules file", AlertConfigError)
    return rules_from_dict(raw, str(Path(path)))


def rules_from_dict(raw: dict[str, Any], source: str = "<alerts>") -> list[AlertRule]:
    unknown = [k for k in raw if k != "rules"]
    if unknown:
        raise AlertConfigError(f"{source}: unknown top-level key '{unknown[0]}' (expected [[rules]] tables)")
    tables = raw.get("rules", [])
    items: list[tuple[str, dict[str, Any]]]
    if isinstance(tables, dict):
        items = [(str(k), dict(v, name=v.get("name", k)) if isinstance(v, dict) else v)
                 for k, v in tables.items()]
    elif isinstance(tables, list):
        items = [(f"rules[{i}]", t) for i, t in enumerate(tables)]
    else:
        raise AlertConfigError(f"{source}: 'rules' must be [[rules]] tables")
    rules = [_rule(t, source, where) for where, t in items]
    names = [r.name for r in rules]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise AlertConfigError(f"{source}: rule name '{dup}' is used twice")
    return rules


def _rule(t: Any, source: str, where: str) -> AlertRule:
    if not isinstance(t, dict):
        raise AlertConfigError(f"{source}: {where} must be a table")
    for key in t:
        if key not in RULE_KEYS:
            raise AlertConfigError(f"{source}: {where}: unknown key '{key}' (known: {', '.join(RULE_KEYS)})")
    name = str(t.get("name") or "")
    if not name:
        raise AlertConfigError(f"{source}: {where}: missing 'name'")
    where = f"{where} ({name})"
    metric = t.get("metric")
    if metric not in METRICS:
        raise AlertConfigError(f"{source}: {where}: unknown metric '{metric}' (known: {', '.join(METRICS)})")
    comparison = t.get("comparison", ">")
    if comparison not in COMPARISONS:
        raise AlertConfigError(f"{source}: {where}: unknown comparison '{comparison}' (use {' '.join(COMPARISONS)})")
    severity = t.get("severity", "warning")
    if severity not in SEVERITIES:
        raise AlertConfigError(f"{source}: {where}: unknown severity '{severity}' (use {', '.join(SEVERITIES)})")
    threshold = t.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise AlertConfigError(f"{source}: {where}: 'threshold' must be a number, got {threshold!r}")
    window_s = parse_duration(t.get("window", "5m"), f"{source}: {where}: 'window'")
    if not 1 <= window_s <= 3600:
        raise AlertConfigError(f"{source}: {where}: 'window' must be between 1s and 1h")
    min_count = t.get("min_count", 0)
    if isinstance(min_count, bool) or not isinstance(min_count, int):
        raise AlertConfigError(f"{source}: {where}: 'min_count' must be an integer")
    return AlertRule(
        name=name, metric=metric, window_s=window_s, comparison=comparison, threshold=float(threshold),
        for_s=parse_duration(t.get("for", 0), f"{source}: {where}: 'for'"), severity=severity,
        cooldown_s=parse_duration(t.get("cooldown", "15m"), f"{source}: {where}: 'cooldown'"),
        route=str(t.get("route", "")), method=str(t.get("method", "")).upper(), min_count=min_count,
        description=str(t.get("description", "")),
    )


@dataclass
class RuleState:
    pending_since: float | None = None
    firing: bool = False
    notified: bool = False
    last_notified_at: float = -math.inf
    value: float | None = None
    suppressed: int = 0
    fired_at: float | None = None  # when it last started firing (the dashboard shows it)
    resolved_at: float | None = None  # when it last stopped firing


@dataclass
class AlertEngine:
    """Evaluates rules against window blocks; returns alert records for state changes."""

    rules: list[AlertRule]
    service: str = ""
    states: dict[str, RuleState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.states = {r.name: RuleState() for r in self.rules}

    def max_window_s(self) -> float:
        return max((r.window_s for r in self.rules), default=0.0)

    def evaluate(self, window: Callable[[float], Block], keys: list[tuple[str, str]], now: float,
                 uptime_s: float, traffic_seen: bool = True) -> list[dict[str, Any]]:
        """`window(seconds)` gives the merged Block; `keys` maps key ids to (route, method).

        "Too little traffic" rules wait for a full window of uptime and for traffic to have
        been seen once: a sidecar that only tails app logs must not page about access logs.
        """
        blocks: dict[float, Block] = {}
        out: list[dict[str, Any]] = []
        for rule in self.rules:
            block = blocks.get(rule.window_s)
            if block is None:
                block = blocks[rule.window_s] = window(rule.window_s)
            value, count = _value(rule, block, keys)
            state = self.states[rule.name]
            state.value = value
            cond = value is not None and count >= rule.min_count and COMPARISONS[rule.comparison](value, rule.threshold)
            if rule.is_absence and (uptime_s < rule.window_s or not traffic_seen):
                cond = False
            event = self._step(rule, state, cond, now)
            if event:
                out.append(self._record(rule, state, event, now))
        return out

    def _step(self, rule: AlertRule, state: RuleState, cond: bool, now: float) -> str | None:
        if cond:
            if state.pending_since is None:
                state.pending_since = now
            if not state.firing and now - state.pending_since >= rule.for_s:
                state.firing = True
                state.fired_at = now
                if now - state.last_notified_at >= rule.cooldown_s:
                    state.notified = True
                    state.last_notified_at = now
                    return "firing"
                state.notified = False
                state.suppressed += 1
            return None
        state.pending_since = None
        if state.firing:
            state.firing = False
            state.resolved_at = now
            if state.notified:
                state.notified = False
                return "resolved"
        return None

    def _record(self, rule: AlertRule, state: RuleState, event: str, now: float) -> dict[str, Any]:
        value = state.value
        rec: dict[str, Any] = {
            F.TIMESTAMP: iso_utc(now),
            F.LEVEL: "error" if event == "firing" and rule.severity == "critical" else
                     ("warning" if event == "firing" else "info"),
            F.MESSAGE: alert_text(rule, event, value),
            F.EVENT_KIND: F.KIND_ALERT,
            F.ALERT_NAME: rule.name,
            F.ALERT_STATE: event,
            F.ALERT_SEVERITY: rule.severity,
            F.ALERT_VALUE: None if value is None else round(value, 6),
            F.ALERT_THRESHOLD: rule.threshold,
            "metric": rule.metric,
            "comparison": rule.comparison,
            F.METRIC_WINDOW_S: rule.window_s,
        }
        if self.service:
            rec[F.SERVICE] = self.service
        if rule.route:
            rec[F.ROUTE] = rule.route
        if rule.method:
            rec[F.METHOD] = rule.method
        return rec

    def firing(self) -> list[AlertRule]:
        return [r for r in self.rules if self.states[r.name].firing]


def _value(rule: AlertRule, block: Block, keys: list[tuple[str, str]]) -> tuple[float | None, int]:
    """The rule's metric over `block` (overall, or the matching route/method keys) and its count."""
    if not rule.route and not rule.method:
        stats = block.overall_stats(rule.window_s)
    else:
        ids = [i for i, (route, method) in enumerate(keys)
               if (not rule.route or route == rule.route) and (not rule.method or method == rule.method)]
        stats = block.subset_stats(ids, rule.window_s)
    value = stats.get(rule.metric)
    count = int(stats.get("count") or 0)
    if rule.metric in ("error_logs", "error_logs_per_min", "records"):
        count = max(count, int(stats.get("records") or 0))
    return (None if value is None else float(value)), count


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) < 1 and value != 0:
        return f"{value:.2%}" if value <= 1 else f"{value:.3g}"
    return f"{value:,.1f}" if value != int(value) else f"{int(value):,}"


def alert_text(rule: AlertRule, event: str, value: float | None) -> str:
    """Slack-compatible one-liner."""
    icon = ":rotating_light:" if event == "firing" else ":white_check_mark:"
    scope = f" {rule.method} {rule.route}".rstrip() if (rule.route or rule.method) else ""
    window = f"{rule.window_s / 60:g}m" if rule.window_s >= 60 else f"{rule.window_s:g}s"
    return (f"{icon} [{rule.severity.upper()}] {rule.name} {event}{scope}: {rule.metric} = {_fmt(value)} "
            f"({rule.comparison} {_fmt(rule.threshold)} over {window})")
