"""GroupThrottle with a fake clock: fluent-plugin-throttle's bucket semantics, drop summaries,
delay mode's backpressure, and the global rate limit."""

from __future__ import annotations

from collections import Counter

import pytest

from logpipe.config import ThrottleConfig
from logpipe.ship.throttle import GLOBAL_GROUP, NO_GROUP, GroupThrottle
from logpipe.stages import Throttle


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:  # a multiple of 10 and 60
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def recs(group_counts: dict[str, int], start: int = 0) -> list[dict]:
    out = []
    n = start
    for group, count in group_counts.items():
        for _ in range(count):
            out.append({"_id": f"r{n}", "workspace_id": group, "service": "api", "level": "error"})
            n += 1
    return out


def cfg(**kw) -> ThrottleConfig:
    base = dict(enabled=True, group_key="workspace_id", group_bucket_period_s=10.0, group_bucket_limit=5)
    base.update(kw)
    return ThrottleConfig(**base)


def test_drop_mode_passes_exactly_the_limit_per_group_per_period():
    clock = FakeClock()
    t = GroupThrottle(cfg(), clock=clock)
    stage: Throttle = t  # the pipeline's Protocol
    assert callable(stage.apply)
    kept, report = t.apply(recs({"a": 12, "b": 3, "c": 7}))
    assert Counter(r["workspace_id"] for r in kept) == {"a": 5, "b": 3, "c": 5}
    assert report.dropped == {"a": 7, "c": 2}
    assert report.summaries == []  # the period is not over yet
    # more batches in the same period: the bucket is shared across batches
    clock.now += 4
    kept, report = t.apply(recs({"a": 2, "b": 4}, start=100))
    assert Counter(r["workspace_id"] for r in kept) == {"b": 2}
    assert report.dropped == {"a": 2, "b": 2}
    # next period: one summary per group that dropped, and fresh buckets
    clock.now += 6
    kept, report = t.apply(recs({"a": 9}, start=200))
    assert len(kept) == 5
    summaries = {s["workspace_id"]: s for s in report.summaries}
    assert {g: s["throttle"]["dropped"] for g, s in summaries.items()} == {"a": 9, "b": 2, "c": 2}
    s = summaries["a"]
    assert s["level"] == "warning" and "dropped 9 records" in s["message"]
    assert s["_id"].startswith("throttle-") and s["@timestamp"].endswith("Z")
    # the drop in this period is summarised later, or at shutdown
    assert [x["throttle"]["dropped"] for x in t.drain_summaries()] == [4]
    assert t.drain_summaries() == []


def test_summary_ids_are_deterministic_per_group_and_period():
    ids = []
    for _ in range(2):
        clock = FakeClock()
        t = GroupThrottle(cfg(), clock=clock)
        t.apply(recs({"a": 8}))
        ids.append([s["_id"] for s in t.drain_summaries()])
    assert ids[0] == ids[1] and len(ids[0]) == 1


def test_reset_rate_keeps_a_fast_group_blocked_until_it_slows_down():
    clock = FakeClock()
    t = GroupThrottle(cfg(group_bucket_limit=20, group_reset_rate_s=1.0), clock=clock)
    passed = 0
    # 4 records/s for 20 s: the limit of 20 per 10 s is hit, and the rate stays above 1/s
    for i in range(80):
        kept, _ = t.apply(recs({"a": 1}, start=i))
        passed += len(kept)
        clock.now += 0.25
    assert passed == 20  # blocked through the second period because the rate stayed high
    # slow down to 0.5/s: at the next period boundary the group is released
    got = []
    for i in range(20):
        kept, _ = t.apply(recs({"a": 1}, start=1000 + i))
        got.append(len(kept))
        clock.now += 2.0
    assert sum(got) > 0


def test_default_reset_releases_every_period_even_for_small_limits():
    # The plugin's integer default (50 / 60 = 0) would block such a group forever.
    clock = FakeClock()
    t = GroupThrottle(cfg(group_bucket_period_s=60.0, group_bucket_limit=50), clock=clock)
    for period in range(3):
        kept, _ = t.apply(recs({"a": 200}, start=period * 1000))
        assert len(kept) == 50, f"period {period}"
        clock.now += 60


def test_invalid_reset_rate_is_rejected():
    with pytest.raises(ValueError, match="group_reset_rate_s"):
        GroupThrottle(cfg(group_reset_rate_s=2.0))  # above limit/period = 0.5
    with pytest.raises(ValueError, match="mode"):
        GroupThrottle(cfg(mode="queue"))


def test_delay_mode_loses_nothing_and_spreads_over_periods():
    clock = FakeClock()
    t = GroupThrottle(cfg(mode="delay"), clock=clock, sleep=clock.sleep)
    batch = recs({"a": 12, "b": 3})
    start = clock.now
    kept, report = t.apply(batch)
    assert sorted(r["_id"] for r in kept) == sorted(r["_id"] for r in batch)
    assert report.dropped == {} and report.summaries == []
    # 12 records of 'a' at 5 per 10 s need two more periods
    assert clock.now - start == pytest.approx(20.0)
    assert len(clock.slept) == 2
    # within one period, never more than the limit for a group
    clock2 = FakeClock()
    t2 = GroupThrottle(cfg(mode="delay"), clock=clock2, sleep=clock2.sleep)
    per_period: Counter[int] = Counter()
    for i in range(30):
        kept, _ = t2.apply(recs({"a": 1}, start=i))
        per_period[int(clock2.now // 10)] += len(kept)
    assert set(per_period.values()) == {5} and sum(per_period.values()) == 30


def test_global_rate_limit_drop_and_delay():
    clock = FakeClock()
    t = GroupThrottle(cfg(group_key="", group_bucket_limit=10**6, rate_limit=10.0), clock=clock)
    kept, report = t.apply(recs({"x": 25}))
    assert len(kept) == 10 and report.dropped == {GLOBAL_GROUP: 15}
    clock.now += 0.5
    kept, _ = t.apply(recs({"x": 25}))
    assert len(kept) == 5
    clock2 = FakeClock()
    d = GroupThrottle(cfg(group_key="", group_bucket_limit=10**6, rate_limit=10.0, mode="delay"),
                      clock=clock2, sleep=clock2.sleep)
    kept, _ = d.apply(recs({"x": 30}))
    assert len(kept) == 30 and sum(clock2.slept) == pytest.approx(2.0)


def test_records_without_the_group_key_share_one_group():
    t = GroupThrottle(cfg(), clock=FakeClock())
    kept, report = t.apply([{"_id": str(i)} for i in range(8)])
    assert len(kept) == 5 and report.dropped == {NO_GROUP: 3}


def test_dotted_group_key_reaches_into_nested_objects():
    t = GroupThrottle(cfg(group_key="kubernetes.container_name"), clock=FakeClock())
    batch = [{"_id": str(i), "kubernetes": {"container_name": "c1" if i % 2 else "c2"}} for i in range(20)]
    kept, report = t.apply(batch)
    assert len(kept) == 10 and report.dropped == {"c1": 5, "c2": 5}


def test_global_limit_drops_do_not_use_up_a_groups_bucket():
    clock = FakeClock()
    t = GroupThrottle(cfg(rate_limit=4.0), clock=clock)
    kept, report = t.apply(recs({"a": 10}))
    assert len(kept) == 4 and report.dropped == {GLOBAL_GROUP: 6}
    clock.now += 1.0  # tokens refill; the group has used 4 of its 5
    kept, report = t.apply(recs({"a": 10}, start=10))
    assert len(kept) == 1 and report.dropped == {"a": 9}  # blocked by its bucket, not the rate
