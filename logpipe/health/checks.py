"""Readiness checks a service registers, run with a timeout each in a bounded pool, cached briefly.

Why a pool of fixed size and "still running" bookkeeping: a hung database ping must not hang
the probe nor pile up a new thread per probe. A check still running from an earlier probe is
reported as timed out again instead of being started a second time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("logpipe.health")

OK, FAILING, TIMED_OUT = "ok", "failing", "timed_out"

CheckFn = Callable[[], Any]
"""A check returns None/True (healthy), False (unhealthy) or raises (unhealthy, the error is the reason)."""


@dataclass
class Check:
    name: str
    fn: CheckFn
    timeout_s: float = 1.0
    critical: bool = True  # a failing non-critical check is reported but does not make the service unready


@dataclass
class CheckResult:
    name: str
    state: str
    duration_ms: float
    critical: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"state": self.state, "duration_ms": round(self.duration_ms, 1),
                             "critical": self.critical}
        if self.error:
            d["error"] = self.error
        return d


@dataclass
class Readiness:
    ready: bool
    checks: list[CheckResult]
    checked_at: float
    cached: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "unready",
                "checks": {r.name: r.as_dict() for r in self.checks}}


def _run(fn: CheckFn) -> tuple[str, str | None]:
    try:
        out = fn()
    except Exception as exc:  # a check's failure is its result, never the endpoint's
        msg = str(exc) or type(exc).__name__
        return FAILING, f"{type(exc).__name__}: {msg}"[:500]
    if out is False:
        return FAILING, "check returned False"
    return OK, None


@dataclass
class _Running:
    future: Future[tuple[str, str | None]]
    started: float


@dataclass
class HealthChecks:
    """The registry of checks plus the runner; thread-safe, one evaluation at a time.

    `cache_s`: a result is reused for that long, so many probes (several load balancers,
    Kubernetes) cost one evaluation. `max_workers` bounds the threads checks run on.
    """

    cache_s: float = 1.0
    max_workers: int = 4
    clock: Callable[[], float] = time.monotonic
    _checks: dict[str, Check] = field(default_factory=dict)
    _running: dict[str, _Running] = field(default_factory=dict)
    _states: dict[str, str] = field(default_factory=dict)
    _cached: Readiness | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = None

    def add(self, name: str, fn: CheckFn, *, timeout_s: float = 1.0, critical: bool = True) -> None:
        """Register a check (replaces one of the same name)."""
        if timeout_s <= 0:
            raise ValueError(f"check {name!r}: timeout_s must be > 0")
        self._checks[name] = Check(name, fn, timeout_s, critical)

    def check(self, name: str | None = None, *, timeout_s: float = 1.0,
              critical: bool = True) -> Callable[[CheckFn], CheckFn]:
        """Decorator form of `add`."""
        def deco(fn: CheckFn) -> CheckFn:
            self.add(name or fn.__name__, fn, timeout_s=timeout_s, critical=critical)
            return fn
        return deco

    def readiness(self) -> Readiness:
        with self._lock:
            now = self.clock()
            cached = self._cached
            if cached is not None and now - cached.checked_at < self.cache_s:
                return Readiness(cached.ready, cached.checks, cached.checked_at, cached=True)
            result = self._evaluate(now)
            self._cached = result
            return result

    def _evaluate(self, now: float) -> Readiness:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(1, self.max_workers),
                                            thread_name_prefix="logpipe-health")
        checks = list(self._checks.values())
        started: dict[str, _Running] = {}
        for c in checks:
            running = self._running.get(c.name)
            if running is None or running.future.done():
                running = _Running(self._pool.submit(_run, c.fn), time.monotonic())
                self._running[c.name] = running
            started[c.name] = running
        results = []
        for c in checks:
            running = started[c.name]
            remaining = running.started + c.timeout_s - time.monotonic()
            try:
                state, error = running.future.result(timeout=max(0.0, remaining))
            except TimeoutError:
                state, error = TIMED_OUT, f"no answer within {c.timeout_s:g}s"
                if not running.future.running():
                    error += f" (not started: all {self.max_workers} health workers busy with hung checks)"
            duration = (time.monotonic() - running.started) * 1000.0
            results.append(CheckResult(c.name, state, duration, c.critical, error))
        for r in results:
            self._log_change(r)
        ready = all(r.state == OK for r in results if r.critical)
        return Readiness(ready, results, now)

    def _log_change(self, r: CheckResult) -> None:
        """One record per state change, none per probe; a first healthy result is not news."""
        before = self._states.get(r.name)
        self._states[r.name] = r.state
        if before == r.state or (before is None and r.state == OK):
            return
        extra = {"health_check": r.name, "health_state": r.state, "previous_state": before or "unknown"}
        if r.state == OK:
            log.info("health check %s recovered (was %s)", r.name, before, extra=extra)
        else:
            log.warning("health check %s is %s: %s", r.name, r.state, r.error, extra=extra)

    def close(self) -> None:
        """Stop the pool without waiting for hung checks."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
