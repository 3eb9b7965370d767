"""Latency sketch: ≤1% relative error on every quantile, merge == union, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from logpipe.metrics.sketch import LogSketch

QS = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0)
N = 1_000_000


def _distributions() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261124)
    return {
        "lognormal": rng.lognormal(np.log(45.0), 1.1, N),
        "bimodal": np.concatenate([rng.normal(12.0, 2.0, N // 2).clip(0.05), rng.normal(900.0, 120.0, N // 2)]),
        "heavy_tailed": (rng.pareto(1.1, N) + 1.0) * 3.0,  # Pareto: p99.9 is ~ 500x the median
    }


DISTS = _distributions()


def _insert(values: np.ndarray, batch: int = 2000) -> LogSketch:
    s = LogSketch()
    for chunk in np.array_split(values, max(1, values.size // batch)):
        s.add_batch(chunk)
    return s


@pytest.mark.parametrize("name", sorted(DISTS))
def test_every_quantile_within_one_percent(name: str) -> None:
    values = DISTS[name]
    sketch = _insert(values)
    # exact value = the order statistic at rank floor(q·(n-1)) (numpy's "lower"); interpolating
    # between ranks is meaningless in the gap of a bimodal distribution
    exact = np.quantile(values, QS, method="lower")
    for q, est, ex in zip(QS, sketch.quantiles(QS), exact, strict=True):
        assert est is not None
        assert abs(est - ex) <= 0.01 * ex, (name, q, est, ex)
    assert sketch.count == N
    assert sketch.max == values.max()


@pytest.mark.parametrize("name", sorted(DISTS))
def test_merge_of_parts_equals_sketch_of_union(name: str) -> None:
    values = DISTS[name]
    whole = _insert(values)
    rng = np.random.default_rng(3)
    shuffled = rng.permutation(values)
    parts = [_insert(p) for p in np.array_split(shuffled, 3)]  # three sidecars
    fleet = LogSketch()
    for p in parts:
        fleet.merge(p)
    assert fleet.count == whole.count
    assert fleet.quantiles(QS) == whole.quantiles(QS)
    # and via the wire format a sidecar would ship
    shipped = LogSketch()
    for p in parts:
        shipped.merge(LogSketch.from_dict(p.to_dict()))
    assert shipped.quantiles(QS) == whole.quantiles(QS)


def test_memory_is_bounded_whatever_the_range() -> None:
    rng = np.random.default_rng(1)
    values = 10.0 ** rng.uniform(-5, 8, 1_000_000)  # 13 decades: more buckets than allowed
    s = LogSketch(max_buckets=2048)
    for chunk in np.array_split(values, 50):
        s.add_batch(chunk)
    assert s.bucket_count <= 2048
    # only the collapsed low end loses precision; the quantiles on-call looks at do not
    for q in (0.5, 0.9, 0.99, 0.999):
        exact = np.quantile(values, q, method="lower")
        assert abs(s.quantile(q) - exact) <= 0.01 * exact, q


def test_zero_and_tiny_values_and_empty() -> None:
    s = LogSketch()
    assert s.quantile(0.5) is None
    s.add_batch(np.array([0.0, 0.0, 0.0, 5.0]))
    assert s.quantile(0.5) == 0.0
    assert abs(s.quantile(1.0) - 5.0) <= 0.05
