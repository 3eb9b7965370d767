"""One batch of records as columns: the only per-record Python work the metrics do.

Why columns: everything after this (status classes, invalid durations, per-route
sketches, histogram buckets) is a handful of numpy calls per batch, not per record.
Access records are those with a `method` and a `status` and no `event.kind` (fields.is_access),
decided for each record on its own: the order of a batch never changes what is counted.
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
from logpipe.metrics.columns import TapColumns
from logpipe.metrics.routes import OTHER, RouteTable, normalise_path, normalise_paths, shape_keys, shape_safe
from logpipe.metrics.sketch import Prepared, prepare

CACHE_MAX = 100_000  # entries per path cache (raw path, path shape); cleared when full (memory stays bounded)
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
    """(route, method) <-> small int id.

    Why this shape: most paths carry an id and are seen once, so a (method, path) cache
    mostly misses. Instead a path (or the middleware's route) maps to a method-independent
    *template id* (the batch's new paths normalised together in one regex pass), the method
    to a *method slot*, and a dense numpy table [template id, method slot] gives the key id:
    per record that is two C-level dict lookups and one fancy index, no Python code.
    """

    METHOD_SLOTS = 64  # distinct method spellings as they appear ("GET", "get"); more -> {other}

    def __init__(self, max_routes_per_method: int = 1000) -> None:
        self.routes = RouteTable(max_routes_per_method)
        self.keys: list[tuple[str, str]] = []
        self._ids: dict[tuple[str, str], int] = {}
        self.max_templates = max(20_000, 4 * max_routes_per_method)
        self._templates: list[str] = [OTHER]  # template id 0 = {other} (template overflow)
        self._tid: dict[str, int] = {OTHER: 0}
        self._path_tid: dict[Any, int] = {}  # raw path or route -> template id (static paths only)
        self._shape_tid: dict[bytes, int] = {}  # path shape (routes.shape_keys) -> template id
        self._shape_ok: list[bool] = [True]  # per template id: routes.shape_safe(template)
        self._methods: list[str] = [OTHER]  # method slot 0 = {other}
        self._mid: dict[Any, int] = {}
        self._combo = np.full((64, self.METHOD_SLOTS), -1, dtype=np.int64)

    def ids(self, methods: list[Any], paths: list[Any], routes: list[Any] | None) -> np.ndarray:
        """Key id per request (see the class docstring for why it is built this way).

        `routes` None means no request has one (the extract's shortcut for a column of Nones).
        """
        no_routes = routes is None or not any(routes)
        if routes is None:
            routes = [None] * len(paths)
        src = paths if no_routes else [r or p for p, r in zip(paths, routes, strict=True)]
        try:
            m = list(map(self._mid.get, methods, itertools.repeat(-1)))
        except TypeError:  # unhashable junk (a list as method): key it by its repr
            methods = [_hashable(x) for x in methods]
            m = list(map(self._mid.get, methods, itertools.repeat(-1)))
        keys = None
        if no_routes:
            try:
                keys = shape_keys(paths)  # None when a path holds a newline
            except TypeError:  # a missing or non-string path somewhere: the general path below
                pass
        if keys is not None:  # raw paths, all strings: look them up by shape
            tid = np.array(list(map(self._shape_tid.get, keys, itertools.repeat(-1))), dtype=np.int64)
            miss = np.flatnonzero(tid < 0)
            if miss.size:
                tid[miss] = self._shape_templates(miss, paths, keys)
        else:
            try:
                t = list(map(self._path_tid.get, src, itertools.repeat(-1)))
            except TypeError:  # unhashable junk (a list as path): key it by its repr
                src = [_hashable(x) for x in src]
                t = list(map(self._path_tid.get, src, itertools.repeat(-1)))
            tid = np.array(t, dtype=np.int64)
            miss = np.flatnonzero(tid < 0)
            if miss.size:
                tid[miss] = self._templates_for(miss, src, paths, routes, no_routes)
        mid = np.array(m, dtype=np.int64)
        if -1 in m:
            for i in np.flatnonzero(mid < 0).tolist():
                mid[i] = self._method_slot(methods[i])
        out = self._combo[tid, mid]
        unknown = np.flatnonzero(out < 0)
        if unknown.size:  # a (template, method) pair seen for the first time: rare
            for pair in np.unique(tid[unknown] * self.METHOD_SLOTS + mid[unknown]).tolist():
                ti, mi = divmod(pair, self.METHOD_SLOTS)
                self._combo[ti, mi] = self._intern(ti, mi)
            out = self._combo[tid, mid]
        return out

    def _templates_for(self, miss: np.ndarray, src: list[Any], paths: list[Any], routes: list[Any],
                       no_routes: bool) -> list[int]:
        idx = miss.tolist()
        pick = operator.itemgetter(*idx)
        msrc = [pick(src)] if len(idx) == 1 else list(pick(src))
        if no_routes and set(map(type, msrc)) == {str}:
            templates = normalise_paths(msrc)
        else:
            templates = [self._template(paths[i], routes[i]) for i in idx]
        found = self._template_ids(templates)
        # Only paths that are their own template (/health, a middleware route) repeat often
        # enough to be worth remembering as they are; /users/8812 is usually seen once.
        self._remember(self._path_tid, len(msrc), zip(msrc, found, strict=True), map(operator.eq, msrc, templates))
        return found

    def _shape_templates(self, miss: np.ndarray, paths: list[str], keys: list[bytes]) -> list[int]:
        """Template ids for paths whose shape is new: one batched normalisation; the shape is
        remembered when the template holds no folded digit (routes.shape_safe), so the next
        /users/8812 after /users/1234 is a dict lookup."""
        idx = miss.tolist()
        pick = operator.itemgetter(*idx)
        if len(idx) == 1:
            mpaths, mkeys = [pick(paths)], [pick(keys)]
        else:
            mpaths, mkeys = list(pick(paths)), list(pick(keys))
        found = self._template_ids(normalise_paths(mpaths))
        self._remember(self._shape_tid, len(mkeys), zip(mkeys, found, strict=True),
                       map(self._shape_ok.__getitem__, found))
        return found

    def _template_ids(self, templates: list[str]) -> list[int]:
        found = list(map(self._tid.get, templates, itertools.repeat(-1)))
        if -1 in found:
            for j, v in enumerate(found):
                if v < 0:
                    found[j] = self._new_template(templates[j])
        return found

    @staticmethod
    def _remember(cache: dict[Any, int], n: int, pairs: Any, keep: Any) -> None:
        """Add those of the n (key, template id) pairs whose `keep` is true; C-level, no loop."""
        if len(cache) + n > CACHE_MAX:
            cache.clear()
        cache.update(itertools.compress(pairs, keep))

    def _new_template(self, template: str) -> int:
        hit = self._tid.get(template)
        if hit is not None:
            return hit
        if len(self._templates) >= self.max_templates:
            return 0  # junk flood: fold, memory stays bounded
        i = len(self._templates)
        self._templates.append(template)
        self._shape_ok.append(shape_safe(template))
        self._tid[template] = i
        if i >= self._combo.shape[0]:
            grown = np.full((self._combo.shape[0] * 2, self.METHOD_SLOTS), -1, dtype=np.int64)
            grown[:self._combo.shape[0]] = self._combo
            self._combo = grown
        return i

    def _method_slot(self, method: Any) -> int:
        hit = self._mid.get(method)
        if hit is not None:
            return hit
        canon = self.routes.method(str(method).upper())
        if canon == OTHER or len(self._methods) >= self.METHOD_SLOTS:
            slot = 0
        else:
            slot = len(self._methods)
            self._methods.append(canon)
        if len(self._mid) < 4 * self.METHOD_SLOTS:
            self._mid[method] = slot
        return slot

    @staticmethod
    def _template(path: Any, route: Any) -> str:
        if route:
            return str(route).split("?", 1)[0] or "/"
        return normalise_path("" if path is None else str(path))

    def _intern(self, tid: int, mid: int) -> int:
        """Apply the per-method route cap to a new (template, method) pair; give it a key id."""
        method = self._methods[mid]
        route = OTHER if tid == 0 else self.routes.capped(method, self._templates[tid])
        key = (route, method)
        i = self._ids.get(key)
        if i is None:
            i = len(self.keys)
            self.keys.append(key)
            self._ids[key] = i
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
    # field names bound to locals: a module attribute lookup per record per field adds up
    kind, method, path, route, status_k, dur_k, level, exc = (
        F.EVENT_KIND, F.METHOD, F.PATH, F.ROUTE, F.STATUS, F.DURATION_MS, F.LEVEL, F.EXCEPTION)
    fast = _access_fast(records, method, status_k, kind)
    if fast is not None:  # every record is an access record (the usual tail batch)
        access, methods = fast
    else:
        # derived metric/alert records (e.g. in a replayed archive) are not traffic; an error
        # record naming the request's method and path is a log line, not a second request
        access = [r for r in records if method in r and status_k in r and kind not in r]
        methods = None
    n_acc = len(access)
    others = ([r for r in records if kind not in r and not (method in r and status_k in r)]
              if n_acc < len(records) else [])
    levels: Counter[str] = Counter([r[level] for r in others if level in r]) if others else Counter()
    exceptions: Counter[str] = Counter()
    if fast is None or any(map(dict.__contains__, records, itertools.repeat(exc))):
        excs = [r for r in records if exc in r]
        if excs:
            exceptions = Counter([_exc_type(r[exc]) for r in excs if kind not in r])
    if methods is None:
        methods = [r[method] for r in access]
    routes = _column(access, route) if _any_has(access, route) else None  # None: no routes at all
    ids = table.ids(methods, _column(access, path), routes)
    nkeys = len(table)
    status = _floats(_column(access, status_k))
    dur = _floats(_column(access, dur_k))
    return _columns(len(records), access, ids, nkeys, status, dur, levels, exceptions)


def extract_columns(cols: TapColumns, table: KeyTable) -> Batch:
    """`extract` for records given as columns (logpipe.metrics.columns): same Batch, no dicts."""
    ids = table.ids(cols.methods, cols.paths, cols.routes)
    return _columns(cols.n_records, [], ids, len(table), cols.status, cols.durations, Counter(cols.levels),
                    Counter(cols.exceptions))


def _access_fast(records: list[Any], method: str, status: str,
                 kind: str) -> tuple[list[Any], list[Any]] | None:
    """(records, method column) when every record is a plain access record, else None.

    C-level checks only: every record is a dict with a non-None `method`, a `status` and no
    `event.kind`. Anything else (derived records, app logs, a non-dict record) takes the
    general path.
    """
    try:
        methods = list(map(dict.get, records, itertools.repeat(method)))
    except TypeError:  # not a dict: the general path decides (and may raise, as before)
        return None
    if any(map(operator.is_, methods, itertools.repeat(None))):
        return None  # a record without a method (or with method None): general path
    if not all(map(dict.__contains__, records, itertools.repeat(status))):
        return None
    if any(map(dict.__contains__, records, itertools.repeat(kind))):
        return None
    return (records if type(records) is list else list(records)), methods


def _column(rows: list[Any], key: str) -> list[Any]:
    """rows[i].get(key) for every row, iterated in C (a Python loop only for non-dict rows)."""
    try:
        return list(map(dict.get, rows, itertools.repeat(key)))
    except TypeError:  # some other mapping type
        return [r.get(key) for r in rows]


def _any_has(rows: list[Any], key: str) -> bool:
    try:
        return any(map(dict.__contains__, rows, itertools.repeat(key)))
    except TypeError:
        return any(key in r for r in rows)


def _columns(n_records: int, access: list[dict[str, Any]], ids: np.ndarray, nkeys: int,
             status: np.ndarray, dur: np.ndarray, levels: Counter[str],
             exceptions: Counter[str]) -> Batch:
    """The numpy part: status classes, invalid/missing durations, per-key groups."""
    n = ids.size
    ok_status = (status >= 100) & (status < 600)
    # floor(status / 100) where the status is usable, 0 (class "none") elsewhere (nan included)
    cls = np.floor_divide(status, 100.0, out=np.zeros(n), where=ok_status).astype(np.int64)
    class_counts = np.bincount(ids * N_CLASSES + cls, minlength=nkeys * N_CLASSES).reshape(nkeys, N_CLASSES)
    missing = np.isnan(dur)
    valid = (dur >= 0) & (dur <= MAX_DURATION_MS)
    invalid = ~(missing | valid)
    if valid.all():
        valid_ids, valid_ms = ids, dur
    else:
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
        nkeys=nkeys, n_records=n_records, n_access=ids.size, class_counts=class_counts,
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
