"""What the metrics tap reads of a run of records, as columns: the contract between whoever has
the records (the native core, or Python dicts) and the aggregation (`batch.extract_columns`).

Why: on the core road no dict is built per record; the core hands over these columns, and the
few records it does not vouch for (derived records, exceptions, unusual values) come as dicts
and are turned into columns here by `columns_of`, the same reading `batch.extract` does. Entries
stay in file order (route caps and key ids depend on the order requests are first seen).

Access records are those with a `method` and a `status` and no `event.kind`; every other
record that is not derived (no `event.kind`) counts its `level`, and any record that is not
derived counts its `exception` type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logpipe import fields as F

_EMPTY_F = np.zeros(0, dtype=np.float64)


@dataclass
class TapColumns:
    """Columns of `n_records` records, each list/array in file order.

    methods/paths/routes/status/durations: one entry per access record (None where a text is
    absent or null, and the path None where the route is set: the route keys the request, and
    the path, usually unique, would only cost a string; status and duration as floats, NaN
    where absent or null, -1 where present but unusable, as `batch._floats` reads them). levels: the level of each other non-derived
    record that has one. exceptions: the exception type of each non-derived record with one.
    records: the records that came as dicts (listeners such as page vitals look at them)."""

    n_records: int = 0
    methods: list[Any] = field(default_factory=list)
    paths: list[Any] = field(default_factory=list)
    routes: list[Any] = field(default_factory=list)
    status: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    durations: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    levels: list[Any] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def concat(cls, parts: list[TapColumns]) -> TapColumns:
        if len(parts) == 1:
            return parts[0]
        out = cls(n_records=sum(p.n_records for p in parts))
        for p in parts:
            out.methods += p.methods
            out.paths += p.paths
            out.routes += p.routes
            out.levels += p.levels
            out.exceptions += p.exceptions
            out.records += p.records
        out.status = np.concatenate([p.status for p in parts])
        out.durations = np.concatenate([p.durations for p in parts])
        return out

    @classmethod
    def from_core(cls, n_records: int, core: tuple[Any, ...], slow_lines: list[int],
                  slow: list[dict[str, Any]]) -> TapColumns:
        """The core's columns of its fast records (`JsonCore.process`'s last item) merged in
        file order with the columns of `slow`, the records of lines `slow_lines` (ascending
        line indices within the chunk) that went the Python way."""
        access_lines, methods, paths, routes, status, dur, level_lines, levels = core
        fast = cls(n_records=n_records, methods=methods, paths=paths, routes=routes,
                   status=np.frombuffer(status, dtype=np.float64),
                   durations=np.frombuffer(dur, dtype=np.float64), levels=levels)
        if not slow:
            return fast
        other = columns_of(slow)
        if other.methods:
            fast_at = np.frombuffer(access_lines, dtype=np.uint32).astype(np.int64)
            slow_at = np.asarray(slow_lines, dtype=np.int64)[other.access_index]
            order = np.argsort(np.concatenate([fast_at, slow_at]), kind="stable").tolist()
            fast.methods = _pick(methods + other.methods, order)
            fast.paths = _pick(paths + other.paths, order)
            fast.routes = _pick(routes + other.routes, order)
            fast.status = np.concatenate([fast.status, other.status])[order]
            fast.durations = np.concatenate([fast.durations, other.durations])[order]
        if other.levels:
            fast_at = np.frombuffer(level_lines, dtype=np.uint32).astype(np.int64)
            slow_at = np.asarray(slow_lines, dtype=np.int64)[other.level_index]
            order = np.argsort(np.concatenate([fast_at, slow_at]), kind="stable").tolist()
            fast.levels = _pick(levels + other.levels, order)
        fast.exceptions = other.exceptions
        fast.records = slow
        return fast


@dataclass
class _Indexed(TapColumns):
    access_index: list[int] = field(default_factory=list)  # position in the records of each access entry
    level_index: list[int] = field(default_factory=list)


def columns_of(records: list[dict[str, Any]]) -> _Indexed:
    """The columns of records given as dicts (the reading `batch.extract` does)."""
    from logpipe.metrics.batch import _exc_type, _floats

    kind, method, status_k, level, exc = F.EVENT_KIND, F.METHOD, F.STATUS, F.LEVEL, F.EXCEPTION
    out = _Indexed(n_records=len(records), records=records)
    status: list[Any] = []
    dur: list[Any] = []
    for i, r in enumerate(records):
        if kind in r:
            continue
        if method in r and status_k in r:
            out.access_index.append(i)
            route = r.get(F.ROUTE)
            out.methods.append(r[method])
            out.paths.append(None if route else r.get(F.PATH))
            out.routes.append(route)
            status.append(r[status_k])
            dur.append(r.get(F.DURATION_MS))
        elif level in r:
            out.level_index.append(i)
            out.levels.append(r[level])
        if exc in r:
            out.exceptions.append(_exc_type(r[exc]))
    if status:
        out.status = _floats(status)
        out.durations = _floats(dur)
    return out


def _pick(values: list[Any], order: list[int]) -> list[Any]:
    return [values[i] for i in order]
