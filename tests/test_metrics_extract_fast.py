"""The columnar extract and the KeyTable's path caches against a plain per-record reference.

Why: `extract` takes C-level shortcuts (whole-batch checks, columns via map, template ids by
path shape); this pins every count to what a slow, obvious loop computes, so the shortcuts
cannot drift from the documented semantics.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.metrics.batch import CACHE_MAX, MAX_DURATION_MS, KeyTable, extract
from logpipe.metrics.routes import normalise_path, shape_keys, shape_safe
from logpipe.metrics.windows import Aggregator

KIND, EXC = "event.kind", "exception"


def _num(v: Any) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return -1.0


def _reference(records: list[Any]) -> dict[str, Any]:
    """What extract must count, one record at a time: a request is a record with a method and
    a status (and no event.kind), whatever the records around it."""
    access = [r for r in records if isinstance(r, dict) and "method" in r and "status" in r and KIND not in r]
    any_route = any(r.get("route") for r in access)
    counts: Counter[tuple[str, str, int]] = Counter()
    invalid: Counter[tuple[str, str]] = Counter()
    no_dur: Counter[tuple[str, str]] = Counter()
    sum_ms: Counter[tuple[str, str]] = Counter()
    for r in access:
        route, path = r.get("route"), r.get("path")
        if any_route and route:
            tmpl = str(route).split("?", 1)[0] or "/"
        else:
            tmpl = normalise_path("" if path is None else str(path))
        key = (tmpl, str(r["method"]).upper())
        s = _num(r.get("status"))
        counts[(*key, int(s // 100) if 100 <= s < 600 else 0)] += 1
        d = _num(r.get("duration_ms"))
        if math.isnan(d):
            no_dur[key] += 1
        elif 0 <= d <= MAX_DURATION_MS:
            sum_ms[key] += d
        else:
            invalid[key] += 1
    levels = Counter(r["level"] for r in records
                     if not any(r is a for a in access) and KIND not in r and "level" in r)
    excs = Counter(str(r[EXC].get("type") or "Exception") if isinstance(r[EXC], dict) else "Exception"
                   for r in records if EXC in r and KIND not in r)
    return {"access": access, "counts": counts, "invalid": invalid, "no_dur": no_dur, "sum_ms": sum_ms,
            "levels": levels, "excs": excs}


def _observed(agg: Aggregator) -> dict[str, Any]:
    t = agg.total
    counts: Counter[tuple[str, str, int]] = Counter()
    invalid: Counter[tuple[str, str]] = Counter()
    no_dur: Counter[tuple[str, str]] = Counter()
    sum_ms: Counter[tuple[str, str]] = Counter()
    for k in range(t.nkeys):
        key = agg.key(k)
        for c in range(t.class_counts.shape[1]):
            if t.class_counts[k, c]:
                counts[(*key, c)] += int(t.class_counts[k, c])
        if t.invalid[k]:
            invalid[key] += int(t.invalid[k])
        if t.no_duration[k]:
            no_dur[key] += int(t.no_duration[k])
        if t.sum_ms[k]:
            sum_ms[key] += float(t.sum_ms[k])
    return {"counts": counts, "invalid": invalid, "no_dur": no_dur, "sum_ms": sum_ms,
            "levels": Counter(t.levels), "excs": Counter(t.exceptions)}


def _assert_same(got: dict[str, Any], want: dict[str, Any], times: int = 1) -> None:
    for name in ("counts", "invalid", "no_dur", "levels", "excs"):
        assert got[name] == Counter({k: v * times for k, v in want[name].items()}), name
    for k in got["sum_ms"].keys() | want["sum_ms"].keys():
        assert got["sum_ms"].get(k, 0.0) == pytest.approx(want["sum_ms"].get(k, 0.0) * times), k


def _access(rng: random.Random, i: int) -> dict[str, Any]:
    paths = [f"/api/users/{rng.randint(1, 10**6)}", f"/api/orders/{rng.getrandbits(128):032x}",
             "/health", f"/api/users/{i}?page={i % 3}", f"/v{i % 3 + 1}/items/{i}", "/static/app.js",
             f"/u/jane{i}@example.com", f"/blob/{rng.getrandbits(96):024x}#frag", "relative/42", ""]
    rec: dict[str, Any] = {"method": rng.choice(["GET", "POST", "get", "DELETE"]), "path": rng.choice(paths)}
    rec["status"] = rng.choice([200, 201, 302, 404, 500, 503, "404", 99, 600, None, "junk", [1], 204.0])
    rec["duration_ms"] = rng.choice([1.5, 0.0, 40.0, 1e-9, "12.5", None, -3.0, MAX_DURATION_MS + 1,
                                     "slow", [2.0], {}, 250, True])
    for k in ("status", "duration_ms"):
        if rng.random() < 0.1:
            del rec[k]
    return rec


def _varied_batch(seed: int) -> list[Any]:
    rng = random.Random(seed)
    out: list[Any] = []
    for i in range(400):
        roll = rng.random()
        if roll < 0.7:
            out.append(_access(rng, i))
        elif roll < 0.8:
            out.append({"level": rng.choice(["info", "error", "WARNING"]), "message": "app"})
        elif roll < 0.87:
            exc = rng.choice([{"type": "ValueError"}, {"type": ""}, "boom", {"message": "x"}])
            out.append({"level": "error", EXC: exc})
        elif roll < 0.94:  # derived metric/alert records: never traffic, levels or exceptions
            out.append({KIND: "metric", "method": "GET", "route": "/x", "status": 500, "level": "error",
                        EXC: {"type": "Nope"}})
        else:
            out.append({"message": "no level"})
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mixed_batch_matches_reference(seed: int) -> None:
    records = _varied_batch(seed)
    agg = Aggregator(windowed=False)
    batch = agg.observe(records)
    want = _reference(records)
    assert batch is not None and batch.n_access == len(want["access"])
    assert all(a is b for a, b in zip(batch.access, want["access"], strict=True))
    _assert_same(_observed(agg), want)
    agg.observe(records)  # again: now through the caches
    _assert_same(_observed(agg), want, times=2)


def test_access_only_batches_take_the_fast_path_and_match() -> None:
    rng = random.Random(9)
    agg = Aggregator(windowed=False)
    batches = [[_access(rng, i) for i in range(300)] for _ in range(4)]
    for b in batches:
        for r in b:
            r["method"] = "GET"
            r["path"] = r["path"] or "/"
            r.setdefault("status", 200)
    total: Counter[Any] = Counter()
    for b in batches:
        batch = agg.observe(b)
        assert batch is not None and batch.access is b and batch.n_access == len(b)
        want = _reference(b)
        total.update(want["counts"])
    assert _observed(agg)["counts"] == total


def test_routes_from_middleware_unhashable_and_odd_values() -> None:
    records: list[Any] = [
        {"method": "GET", "path": "/users/1", "route": "/users/{user_id}?x=1", "status": 200, "duration_ms": 1},
        {"method": "GET", "path": "/users/2", "status": 200, "duration_ms": 2},  # no route: its path
        {"method": "GET", "path": ["not", "a", "path"], "status": 200, "duration_ms": 3},
        {"method": ["junk"], "path": "/x", "status": {}, "duration_ms": []},
        {"method": None, "path": "/none-method", "status": 201},
        {"method": "GET", "path": None, "route": "", "status": 404},
        {"method": "GET", "path": 12345, "status": 200},
        {"method": "GET", "path": "/with\nnewline/7", "status": 200},
        {"method": "PUT", "route": "/only/route"},
    ]
    for batch in (records, records[1:]):  # with and without a middleware route in the batch
        agg = Aggregator(windowed=False)
        agg.observe(batch)
        _assert_same(_observed(agg), _reference(batch))


def test_non_dict_records_fall_back_to_the_general_path() -> None:
    records: list[Any] = [{"method": "GET", "path": "/a/1", "status": 200, "duration_ms": 1.0},
                          ["a", "list"], "a plain string", {"level": "info"}]
    agg = Aggregator(windowed=False)
    agg.observe(records)
    _assert_same(_observed(agg), _reference(records))
    assert agg.total.records == 4


def test_records_without_a_status_are_not_requests_wherever_they_stand() -> None:
    request = {"method": "GET", "path": "/p/1", "status": 500, "duration_ms": 3.0}
    error = {"level": "error", "method": "GET", "path": "/p/1", "message": "unhandled exception in GET /p/1",
             EXC: {"type": "KeyError"}}
    for records in ([{"method": "GET"}, request, {"method": "HEAD"}], [request, {"method": "HEAD"}, error],
                    [error, request], [request, error]):
        agg = Aggregator(windowed=False)
        batch = agg.observe(records)
        assert batch is not None and batch.n_access == 1, records
        assert agg.total.levels.get("error", 0) == (1 if error in records else 0)
        _assert_same(_observed(agg), _reference(records))


@pytest.mark.parametrize("seed", range(5))
def test_counts_do_not_depend_on_the_order_of_a_batch(seed: int) -> None:
    records = _varied_batch(seed)
    rng = random.Random(seed)
    for r in records[::7]:  # error records that name the request, as the middleware writes them
        if isinstance(r, dict) and "status" not in r and KIND not in r:
            r.update(method="POST", path=f"/orders/{rng.randint(1, 99)}")
    want = _reference(records)
    for _ in range(3):
        rng.shuffle(records)
        agg = Aggregator(windowed=False)
        agg.observe(records)
        _assert_same(_observed(agg), want)


def test_batch_columns_for_report_details() -> None:
    records = [{"method": "GET", "path": "/a", "status": s, "duration_ms": d}
               for s, d in [(200, 1.0), (503, None), ("x", -1.0), (None, 5.0)]]
    batch = extract(records, KeyTable())
    assert batch.access is records
    assert batch.status is not None and batch.durations is not None and batch.valid_mask is not None
    np.testing.assert_array_equal(batch.status, [200.0, 503.0, -1.0, np.nan])
    np.testing.assert_array_equal(batch.durations, [1.0, np.nan, -1.0, 5.0])
    assert batch.valid_mask.tolist() == [True, False, False, True]
    assert batch.class_counts.sum(axis=0).tolist() == [2, 0, 1, 0, 0, 1]


# -- path shapes ---------------------------------------------------------------------------

# Pairs with the same shape key but different templates must never share a cache entry.
_TRICKY = [
    ("/a/1xdeadbeefdeadbeef12", "/a/0xdeadbeefdeadbeef12"),
    ("/u/ab%41cd.com", "/u/ab%40cd.com"),
    ("/v1/items/7", "/v2/items/7"),
    ("/t/abcdefghijklmnopq1r", "/t/abcdefghijklmnopq12"),
    ("/n/12345678123412341234123456789012", "/n/92345678923492349234923456789012"),
    ("/e/x@y.co1", "/e/x@y.com"),
]


@pytest.mark.parametrize(("first", "second"), _TRICKY)
def test_shape_cache_never_changes_a_template(first: str, second: str) -> None:
    table = KeyTable()
    for batch in ([first] * 5, [second] * 5, [first, second] * 3):
        ids = table.ids(["GET"] * len(batch), batch, None)
        assert [table.keys[int(i)][0] for i in ids] == [normalise_path(p) for p in batch]


_SEG = st.one_of(
    st.sampled_from(["users", "api", "v2", "v7", "0x", "x", "", "a.b", "%40", "reset-password-confirmation-page"]),
    st.integers(-5, 10**12).map(str),
    st.uuids().map(str),
    st.binary(min_size=8, max_size=32).map(bytes.hex),
    st.from_regex(r"[a-z0-9]{1,8}(@|%4[0-9])[a-z]{1,6}\.(com|io|c1)", fullmatch=True),
    st.from_regex(r"(0x)?[A-Za-z0-9_\-]{14,40}", fullmatch=True),
    st.text(alphabet="abc0123456789/?#=&.@%-_ xX", max_size=14),
)
_PATH = st.lists(_SEG, min_size=0, max_size=5).map(lambda segs: "/" + "/".join(segs))
_DIGITS = "0123456789"


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATH, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_ids_by_shape_equal_one_by_one(paths: list[str], rnd: random.Random) -> None:
    """Seed the shape cache with digit-shuffled variants, then look the real paths up."""
    table = KeyTable(max_routes_per_method=10**6)
    variants = ["".join(rnd.choice(_DIGITS) if c.isdigit() and c.isascii() else c for c in p) for p in paths]
    for batch in (variants, paths, variants + paths):
        ids = table.ids(["GET"] * len(batch), batch, None)
        assert [table.keys[int(i)][0] for i in ids] == [normalise_path(p) for p in batch]


def test_shape_helpers() -> None:
    assert shape_keys(["/users/8812", "/users/1235"]) == [b"/users/1111", b"/users/1111"]
    assert shape_keys(["/a/0x40", "/u/%40"]) == [b"/a/0x40", b"/u/%40"]
    assert shape_keys(["/a\nb", "/c"]) is None
    assert shape_safe("/users/{id}") and shape_safe("/v0/x") and not shape_safe("/v2/items")


def test_shape_cache_stays_bounded() -> None:
    table = KeyTable()
    rng = random.Random(3)
    for _ in range(60):
        paths = [f"/p{rng.getrandbits(64):x}/{rng.getrandbits(32):x}" for _ in range(2000)]
        table.ids(["GET"] * len(paths), paths, None)
    assert len(table._shape_tid) <= CACHE_MAX
