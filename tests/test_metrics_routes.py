"""Route normalisation and the cardinality cap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.metrics.routes import OTHER, RouteTable, normalise_path, normalise_paths
from logpipe.metrics.windows import Aggregator


@pytest.mark.parametrize(("path", "route"), [
    ("/users/123", "/users/{id}"),
    ("/users/123/orders/9?expand=1#top", "/users/{id}/orders/{id}"),
    ("/orders/3f2b8c1e-9d4a-4c3b-8e2f-0a1b2c3d4e5f", "/orders/{uuid}"),
    ("/blobs/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "/blobs/{hash}"),
    ("/reset/eyJhbGciOiJIUzI1NiJ9xQ2ZkR7mP0aB", "/reset/{hash}"),
    ("/users/jane.doe@example.com/profile", "/users/{email}/profile"),
    ("/users/jane.doe%40example.com", "/users/{email}"),
    ("https://shop.example.com/api/items/42?x=y", "/api/items/{id}"),
    ("/docs/reset-password-confirmation-page", "/docs/reset-password-confirmation-page"),
    ("/static/app.min.js", "/static/app.min.js"),
    ("/v2/items", "/v2/items"),
    ("", "/"),
    ("/", "/"),
])
def test_normalise_path(path: str, route: str) -> None:
    assert normalise_path(path) == route


def test_route_from_middleware_wins() -> None:
    table = RouteTable()
    assert table.route_for("GET", "/users/123", "/users/{user_id}") == "/users/{user_id}"
    assert table.route_for("GET", "/users/123") == "/users/{id}"


def test_cap_folds_new_routes_into_other_per_method_and_counts_them() -> None:
    agg = Aggregator(max_routes_per_method=3, windowed=False)
    records = [{"method": "GET", "path": f"/page-{i}", "status": 200, "duration_ms": 5.0} for i in range(10)]
    records += [{"method": "POST", "path": "/submit", "status": 201, "duration_ms": 5.0}]
    agg.observe(records)
    agg.observe(records[:5])  # the same folded paths again are folded again
    routes = {agg.key(k) for k in agg.total.active_keys()}
    assert routes == {("/page-0", "GET"), ("/page-1", "GET"), ("/page-2", "GET"), (OTHER, "GET"),
                      ("/submit", "POST")}
    assert agg.routes_folded() == 7 + 2  # /page-3..9, then /page-3 and /page-4 again


_SEGMENTS = st.one_of(
    st.sampled_from(["users", "api", "v2", "orders", "x", "", "a.b", "reset-password-confirmation-page"]),
    st.integers(-5, 10**12).map(str),
    st.uuids().map(str),
    st.binary(min_size=8, max_size=32).map(bytes.hex),
    st.from_regex(r"[a-z]{1,8}(@|%40)[a-z]{1,6}\.(com|io)", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_\-]{18,40}", fullmatch=True),
    st.text(alphabet="abc123/?#=&.@%-_ ", max_size=12),
)
_PATHS = st.lists(_SEGMENTS, min_size=0, max_size=6).map(lambda segs: "/" + "/".join(segs))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PATHS, _PATHS.map(lambda p: p + "?q=1/2"), st.just(""),
                          st.just("https://h.example/api/1")), min_size=0, max_size=40))
def test_batch_normalisation_equals_one_by_one(paths: list[str]) -> None:
    assert normalise_paths(paths) == [normalise_path(p) for p in paths]
