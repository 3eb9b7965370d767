"""GroupThrottle: a global rate limit plus per-group buckets, before any sink.

Group buckets follow fluent-plugin-throttle: periods are aligned to the clock
(`floor(now / group_bucket_period_s)`), a group may pass `group_bucket_limit` records per
period, and once over the limit it stays blocked for the rest of the period. With
`group_reset_rate_s >= 0` a blocked group is only released at a period boundary if its
recent rate (records/s, measured over ~1 s windows, dropped records included) is below
that rate; `-1` releases it at every period end. Unlike the plugin, the reset rate is
computed in floating point: the plugin's integer default (`limit / period`, e.g.
50 / 60 = 0) blocks a small group forever.

mode `drop`: records over the limit are dropped and counted per group (`report.dropped`),
and each (group, period) that dropped anything yields one summary record
(`report.summaries`) once that period is over — or from `drain_summaries()` at shutdown.
mode `delay`: nothing is dropped; `apply` sleeps until the next period (or until the
global limiter has tokens), which blocks the pipeline and so pushes back on the reader.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from logpipe.config import ThrottleConfig
from logpipe.fields import ID, LEVEL, LOGGER, MESSAGE, SERVICE, TIMESTAMP
from logpipe.stages import ThrottleReport

log = logging.getLogger("logpipe.throttle")

NO_GROUP = "(none)"
GLOBAL_GROUP = "(rate_limit)"


@dataclass
class _Group:
    period: int = -1  # index of the period `count` belongs to
    count: int = 0
    blocked: bool = False
    rate_count: int = 0
    rate_start: float = 0.0
    approx_rate: float = 0.0
    service: str = ""


@dataclass
class _Pending:
    """Drops of one group in one period, not yet summarised."""

    group: str
    period: int
    dropped: int
    service: str


class GroupThrottle:
    """See module docstring. `clock` returns epoch seconds; `sleep` is used in delay mode."""

    def __init__(self, cfg: ThrottleConfig, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Any] | None = None,
                 stop_event: threading.Event | None = None) -> None:
        if cfg.mode not in ("drop", "delay"):
            raise ValueError(f"throttle.mode must be 'drop' or 'delay', got {cfg.mode!r}")
        if cfg.group_bucket_period_s <= 0:
            raise ValueError(f"throttle.group_bucket_period_s must be > 0, got {cfg.group_bucket_period_s}")
        if cfg.group_bucket_limit <= 0:
            raise ValueError(f"throttle.group_bucket_limit must be > 0, got {cfg.group_bucket_limit}")
        if cfg.rate_limit < 0:
            raise ValueError(f"throttle.rate_limit must be >= 0, got {cfg.rate_limit}")
        group_rate = cfg.group_bucket_limit / cfg.group_bucket_period_s
        if cfg.group_reset_rate_s != -1 and not 0 <= cfg.group_reset_rate_s <= group_rate:
            raise ValueError(f"throttle.group_reset_rate_s must be -1 or between 0 and "
                             f"group_bucket_limit / group_bucket_period_s = {group_rate:g}, "
                             f"got {cfg.group_reset_rate_s}")
        if cfg.group_reset_rate_s == 0:
            log.warning("throttle.group_reset_rate_s = 0: a group that breaches its limit is "
                        "blocked until restart")
        self.cfg = cfg
        self._clock = clock
        self._sleep = sleep
        self.stop_event = stop_event or threading.Event()
        self._keys = [k.strip() for k in cfg.group_key.split(",") if k.strip()]
        self._groups: dict[str, _Group] = {}
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._tokens = float(self._burst)
        self._tokens_at = clock()
        self.dropped_total: dict[str, int] = {}

    @property
    def _burst(self) -> float:
        return max(1.0, self.cfg.rate_limit)

    # -- public ----------------------------------------------------------------------
    def apply(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ThrottleReport]:
        report = ThrottleReport()
        if self.cfg.mode == "delay":
            kept = self._apply_delay(records)
        else:
            kept = self._apply_drop(records, report)
        report.summaries = self._due_summaries(self._period(self._clock()))
        return kept, report

    def drain_summaries(self) -> list[dict[str, Any]]:
        """Summaries for every group that dropped records, including the current period
        (call at shutdown so no drop goes unreported)."""
        return self._due_summaries(None)

    # -- drop mode -------------------------------------------------------------------
    def _apply_drop(self, records: list[dict[str, Any]], report: ThrottleReport) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        now = self._clock()
        period = self._period(now)
        self._refill(now)
        limited = self.cfg.rate_limit > 0
        for record in records:
            if limited and self._tokens < 1.0:  # over the global rate: no group is charged
                self._count_drop(GLOBAL_GROUP, period, record, report)
                continue
            name = self._group_name(record)
            if not self._admit(name, record, now, period):
                self._count_drop(name, period, record, report)
                continue
            if limited:
                self._tokens -= 1.0
            kept.append(record)
        return kept

    def _admit(self, name: str, record: dict[str, Any], now: float, period: int) -> bool:
        """One record through its group's bucket (fluent-plugin-throttle's filter logic)."""
        g = self._groups.get(name)
        if g is None:
            g = self._groups[name] = _Group(period=period, rate_start=now)
        g.rate_count += 1
        if now - g.rate_start >= 1.0:
            g.approx_rate = g.rate_count / (now - g.rate_start)
            g.rate_count, g.rate_start = 0, now
        if period > g.period:
            reset = self.cfg.group_reset_rate_s
            if g.blocked and reset != -1 and not g.approx_rate < reset:
                return False  # still too fast: stay blocked into the new period
            if g.blocked:
                log.info("throttle: group %s back under its limit", name)
            g.period, g.count, g.blocked = period, 0, False
        elif g.blocked:
            return False
        g.count += 1
        if g.count > self.cfg.group_bucket_limit:
            g.blocked = True
            log.warning("throttle: group %s exceeded %d records per %gs; dropping until the period ends",
                        name, self.cfg.group_bucket_limit, self.cfg.group_bucket_period_s)
            return False
        return True

    def _count_drop(self, name: str, period: int, record: dict[str, Any], report: ThrottleReport) -> None:
        report.dropped[name] = report.dropped.get(name, 0) + 1
        self.dropped_total[name] = self.dropped_total.get(name, 0) + 1
        key = (name, period)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(name, period, 0, str(record.get(SERVICE) or ""))
        pending.dropped += 1

    # -- delay mode ------------------------------------------------------------------
    def _apply_delay(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        waiting = records
        while waiting:
            now = self._clock()
            period = self._period(now)
            deferred: list[dict[str, Any]] = []
            admitted: list[dict[str, Any]] = []
            for record in waiting:
                name = self._group_name(record)
                g = self._groups.get(name)
                if g is None:
                    g = self._groups[name] = _Group(period=period, rate_start=now)
                if period > g.period:
                    g.period, g.count = period, 0
                if g.count < self.cfg.group_bucket_limit:
                    g.count += 1
                    admitted.append(record)
                else:
                    deferred.append(record)
            self._take_tokens(len(admitted))
            kept.extend(admitted)
            waiting = deferred
            if waiting and not self._wait((period + 1) * self.cfg.group_bucket_period_s - self._clock()):
                kept.extend(waiting)  # shutting down: let them through rather than lose them
                break
        return kept

    def _take_tokens(self, n: int) -> None:
        if self.cfg.rate_limit <= 0 or n == 0:
            return
        self._refill(self._clock())
        self._tokens -= n
        if self._tokens < 0:
            self._wait(-self._tokens / self.cfg.rate_limit)
            self._refill(self._clock())

    def _wait(self, seconds: float) -> bool:
        """Sleep (interruptible by stop_event); False if stopping."""
        if self.stop_event.is_set():
            return False
        if seconds > 0:
            if self._sleep is not None:
                self._sleep(seconds)
            elif self.stop_event.wait(seconds):
                return False
        return True

    # -- helpers ---------------------------------------------------------------------
    def _refill(self, now: float) -> None:
        if self.cfg.rate_limit > 0:
            self._tokens = min(self._burst, self._tokens + (now - self._tokens_at) * self.cfg.rate_limit)
        self._tokens_at = now

    def _period(self, now: float) -> int:
        return math.floor(now / self.cfg.group_bucket_period_s)

    def _group_name(self, record: dict[str, Any]) -> str:
        if not self._keys:
            return NO_GROUP
        parts = [self._lookup(record, k) for k in self._keys]
        if all(p is None for p in parts):
            return NO_GROUP
        return ",".join("" if p is None else str(p) for p in parts)

    @staticmethod
    def _lookup(record: dict[str, Any], key: str) -> Any:
        if key in record:
            return record[key]
        node: Any = record
        for part in key.split("."):  # dotted path into nested objects, like the plugin
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def _due_summaries(self, current: int | None) -> list[dict[str, Any]]:
        """Summaries for pending (group, period) drops whose period ended (all if current is None)."""
        if not self._pending:
            return []
        due = [k for k in self._pending if current is None or k[1] < current]
        return [self._summary(self._pending.pop(k)) for k in sorted(due, key=lambda k: (k[1], k[0]))]

    def _summary(self, p: _Pending) -> dict[str, Any]:
        period_s = self.cfg.group_bucket_period_s
        start = p.period * period_s
        end = start + period_s
        key_name = self.cfg.group_key or "group"
        if p.group == GLOBAL_GROUP:
            what = f"over the global rate limit of {self.cfg.rate_limit:g}/s"
        else:
            what = f"of {key_name}={p.group} over {self.cfg.group_bucket_limit} per {period_s:g}s"
        digest = hashlib.sha256(f"throttle|{key_name}|{p.group}|{p.period}|{period_s}".encode()).hexdigest()
        record: dict[str, Any] = {
            TIMESTAMP: _iso(end),
            LEVEL: "warning",
            LOGGER: "logpipe.throttle",
            MESSAGE: f"throttle dropped {p.dropped} records {what} in the period starting {_iso(start)}",
            SERVICE: p.service or "logpipe",
            "throttle": {"group_key": key_name, "group": p.group, "dropped": p.dropped,
                         "period_start": _iso(start), "period_s": period_s,
                         "limit": self.cfg.group_bucket_limit, "mode": self.cfg.mode},
            ID: f"throttle-{digest[:32]}",
        }
        if p.group not in (NO_GROUP, GLOBAL_GROUP) and len(self._keys) == 1:
            record[self._keys[0]] = p.group
        return record


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
