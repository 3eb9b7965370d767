"""One batch of records as columns: the only per-record Python work the metrics do.

Why columns: everything after this (status classes, invalid durations, per-route
sketches, histogram buckets) is a handful of numpy calls per batch, not per record.
Access records are those with a `method` plus a `status`, `path` or `route`.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from logpipe import fields as F
from logpipe.metrics.routes import OTHER, RouteTable, normalise_path, normalise_paths
from logpipe.metrics.sketch import Prepared, prepare

CACHE_MAX = 100_000  # raw (method, path) -> id entries; cleared when full (memory stays bounded)
MAX_DURATION_MS = 86_400_000.0  # a day: longer is a broken clock or unit, not a latency
N_CLASSES = 6  # 0 = no/unknown status, 1..5 = 1xx..5xx
STATUS_CLASS_NAMES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")


def _floats(values: list[Any]) -> np.ndarray:
    """Column of floats: None -> nan, junk -> -1 (counted as invalid later)."""
    try:
        arr = np.array(values, dtype=np.float64)
        if arr.ndim == 1:
            return arr
    except (TypeError, ValueError):
        pass
    # junk somewhere (a list, a word): convert one by one
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None:
            out[i] = math.nan
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            out[i] = -1.0
    return out


class KeyTable:
    """(route, method) <-> small int id, with the (method, path) -> id cache in front."""

    def __init__(self, max_routes_per_method: int = 1000) -> None:
        self.routes = RouteTable(max_routes_per_method)
        self.keys: list[tuple[str, str]] = []
        self._ids: dict[tuple[str, str], int] = {}
        self._cache: dict[tuple[Any, Any], int] = {}  # (method, raw path or route) -> id
        self._by_template: dict[tuple[Any, str], int] = {}  # (method as given, template) -> id

    def ids(self, methods: list[Any], paths: list[Any], routes: list[Any]) -> np.ndarray:
        """Key id per request. Fresh paths (new ids make most of them unique) are normalised
        together in one regex pass and mapped through a (method, template) dict, so a miss
        costs a few C-level list/dict operations, not Python code per record."""
        no_routes = not any(routes)
        if no_routes:  # access logs from nginx & co: the path is the key (C-level zip, no comprehension)
            keys = list(zip(methods, paths, strict=True))
        else:
            keys = [(m, r or p) for m, p, r in zip(methods, paths, routes, strict=True)]
        cache = self._cache
        try:
            out = list(map(cache.get, keys, itertools.repeat(-1)))
        except TypeError:  # unhashable junk (a list as path): key it by its repr
            keys = [(_hashable(m), _hashable(p)) for m, p in keys]
            out = list(map(cache.get, keys, itertools.repeat(-1)))
        ids = np.array(out, dtype=np.int64)  # -1 marks the misses
        miss = np.flatnonzero(ids < 0)
        if miss.size == 0:
            return ids
        pick = operator.itemgetter(*miss.tolist())
        one = miss.size == 1
        mkeys = [pick(keys)] if one else list(pick(keys))
        if no_routes:
            mmethods = [pick(methods)] if one else list(pick(methods))
            mpaths = [pick(paths)] if one else list(pick(paths))
        else:
            mmethods = [k[0] for k in mkeys]
            mpaths = [k[1] for k in mkeys]
        if no_routes and set(map(type, mpaths)) == {str}:
            templates = normalise_paths(mpaths)
        else:
            templates = [self._template(paths[i], routes[i]) for i in miss.tolist()]
        tkeys = list(zip(mmethods, templates, strict=True))
        found = list(map(self._by_template.get, tkeys))
        if None in found:
            for j, v in enumerate(found):
                if v is None:
                    found[j] = self._intern(tkeys[j])
        if len(cache) + len(mkeys) > CACHE_MAX:
            cache.clear()
        # Only paths that are their own template (/health, /static/app.js) repeat often enough
        # to be worth remembering; /users/8812 is usually seen once. All C-level, no loop.
        cache.update(itertools.compress(zip(mkeys, found, strict=True), map(operator.eq, mpaths, templates)))
        ids[miss] = found
        return ids

    @staticmethod
    def _template(path: Any, route: Any) -> str:
        if route:
            return str(route).split("?", 1)[0] or "/"
        return normalise_path("" if path is None else str(path))

    def _intern(self, tkey: tuple[Any, str]) -> int:
        """A (method, template) seen for the first time: apply the caps, give it an id."""
        hit = self._by_template.get(tkey)
        if hit is not None:
            return hit
        method = self.routes.method(str(tkey[0]).upper())
        route = self.routes.capped(method, tkey[1])
        key = (route, method)
        i = self._ids.get(key)
        if i is None:
            i = len(self.keys)
            self.keys.append(key)
            self._ids[key] = i
        if route != OTHER and method != OTHER:  # folded ones stay out: this dict stays cap-sized
            self._by_template[tkey] = i
        return i

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class Batch:
    """Columns of one batch; `groups` are (key id, valid durations) for sketch inserts."""

    nkeys: int
    n_records: int
    n_access: int
    class_counts: np.ndarray  # (nkeys, N_CLASSES)
    invalid: np.ndarray  # (nkeys,) durations present but unusable
    no_duration: np.ndarray  # (nkeys,)
    sum_ms: np.ndarray  # (nkeys,)
    valid_ids: np.ndarray
    valid_ms: np.ndarray
    groups: list[tuple[int, np.ndarray]]
    levels: Counter[str] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)
    # kept for report details (index into the access records)
    access: list[dict[str, Any]] = field(default_factory=list)
    ids: np.ndarray | None = None
    status: np.ndarray | None = None
    durations: np.ndarray | None = None
    valid_mask: np.ndarray | None = None

    _prepared: dict[float, tuple[Prepared | None, list[tuple[int, Prepared]]]] = field(default_factory=dict)

    def prepared(self, alpha: float) -> tuple[Prepared | None, list[tuple[int, Prepared]]]:
        """Bucketed once per batch and accuracy, added to every block using that accuracy."""
        hit = self._prepared.get(alpha)
        if hit is None:
            hit = self._prepared[alpha] = (
                prepare(self.valid_ms, alpha) if self.valid_ms.size else None,
                [(k, prepare(v, alpha)) for k, v in self.groups],
            )
        return hit


def extract(records: list[dict[str, Any]], table: KeyTable) -> Batch:
    """Split a batch into access columns and app/error counters."""
    kind = F.EVENT_KIND  # derived metric/alert records (e.g. in a replayed archive) are not traffic
    access = [r for r in records if F.METHOD in r and kind not in r]
    if access and (F.STATUS not in access[0] and F.PATH not in access[0] and F.ROUTE not in access[0]):
        access = [r for r in access if F.STATUS in r or F.PATH in r or F.ROUTE in r]
    n_acc = len(access)
    others = [r for r in records if F.METHOD not in r and kind not in r] if n_acc < len(records) else []
    levels: Counter[str] = Counter(r[F.LEVEL] for r in others if F.LEVEL in r)
    exc = F.EXCEPTION
    excs = [r for r in records if exc in r]
    exceptions: Counter[str] = Counter(_exc_type(r[exc]) for r in excs if kind not in r) if excs else Counter()
    ids = table.ids([r[F.METHOD] for r in access], [r.get(F.PATH) for r in access],
                         [r.get(F.ROUTE) for r in access])
    nkeys = len(table)
    status = _floats([r.get(F.STATUS) for r in access])
    dur = _floats([r.get(F.DURATION_MS) for r in access])

    ok_status = (status >= 100) & (status < 600)
    cls = np.where(ok_status, np.floor_divide(np.nan_to_num(status), 100), 0).astype(np.int64)
    class_counts = np.bincount(ids * N_CLASSES + cls, minlength=nkeys * N_CLASSES).reshape(nkeys, N_CLASSES)
    missing = np.isnan(dur)
    valid = (dur >= 0) & (dur <= MAX_DURATION_MS)
    invalid = ~missing & ~valid
    valid_ids = ids[valid]
    valid_ms = dur[valid]
    groups: list[tuple[int, np.ndarray]] = []
    if valid_ms.size:
        order = np.argsort(valid_ids, kind="stable")
        sid = valid_ids[order]
        sms = valid_ms[order]
        starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
        ends = np.r_[starts[1:], sid.size]
        groups = [(int(sid[s]), sms[s:e]) for s, e in zip(starts, ends, strict=True)]
    return Batch(
        nkeys=nkeys, n_records=len(records), n_access=n_acc, class_counts=class_counts,
        invalid=np.bincount(ids[invalid], minlength=nkeys),
        no_duration=np.bincount(ids[missing], minlength=nkeys),
        sum_ms=np.bincount(valid_ids, weights=valid_ms, minlength=nkeys),
        valid_ids=valid_ids, valid_ms=valid_ms, groups=groups,
        levels=levels, exceptions=exceptions,
        access=access, ids=ids, status=status, durations=dur, valid_mask=valid,
    )


def _hashable(v: Any) -> Any:
    try:
        hash(v)
    except TypeError:
        return repr(v)
    return v


def _exc_type(exc: Any) -> str:
    if isinstance(exc, dict):
        return str(exc.get("type") or "Exception")
    return "Exception"
