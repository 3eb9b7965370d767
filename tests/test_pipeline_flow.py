"""Pipeline: backpressure, acks before checkpoints, sink failure, multi-line holds, stages."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from tail_support import CollectSink, Running, fast_config, wait_for  # noqa: E402

from logpipe.enrich import Enricher  # noqa: E402
from logpipe.pipeline import Pipeline  # noqa: E402
from logpipe.ship.base import SendResult, Sink, SinkFatalError  # noqa: E402
from logpipe.stages import (
    PipelineStats,  # noqa: E402
    ThrottleReport,  # noqa: E402
)
from logpipe.tail.checkpoint import CheckpointStore  # noqa: E402
from logpipe.tail.source import TailFront  # noqa: E402


def json_lines(path: Path, n: int, start: int = 0) -> list[str]:
    msgs = [f"msg {i}" for i in range(start, start + n)]
    with open(path, "a") as fh:
        for m in msgs:
            fh.write(json.dumps({"@timestamp": "2026-11-24T07:00:00.000000Z", "level": "info", "message": m}) + "\n")
    return msgs


def saved_offsets(cfg: Any) -> list[int]:
    path = Path(cfg.pipeline.checkpoint_path)
    if not path.exists():
        return []
    return [e["offset"] for e in json.loads(path.read_text())["files"].values()]


def test_slow_sink_holds_the_reader_back_and_checkpoint_waits_for_acks(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    msgs = json_lines(log, 5_000)
    cfg = fast_config([str(log)], tmp_path, fmt="json", batch_max_records=50, inflight_max_batches=2,
                      read_chunk_bytes=4_096)
    sink = CollectSink()
    sink.gate.clear()  # the sink is down
    run = Running(cfg, sink)
    try:
        assert wait_for(lambda: run.stats.inflight_batches == 2, 5)
        read_while_down = run.stats.lines_read
        assert read_while_down < 400, "reader must stop reading ahead while nothing is acknowledged"
        assert saved_offsets(cfg) in ([], [0])
        sink.gate.set()
        assert wait_for(lambda: len(sink.records) == 5_000, 20)
        assert wait_for(lambda: saved_offsets(cfg) == [log.stat().st_size], 5)
        assert sink.messages() == msgs  # in order, once
    finally:
        run.stop()


def test_inflight_max_bytes_caps_the_read_ahead_before_the_batch_count_does(tmp_path: Path) -> None:
    """Batches of ~8.5 KB under a 20,000-byte window: two fit, though 100 batches would be allowed."""
    log = tmp_path / "app.log"
    msgs = json_lines(log, 5_000)
    cfg = fast_config([str(log)], tmp_path, fmt="json", batch_max_records=100, inflight_max_batches=100,
                      inflight_max_bytes=20_000, read_chunk_bytes=4_096)
    sink = CollectSink()
    sink.gate.clear()  # the sink is down
    run = Running(cfg, sink)
    try:
        assert wait_for(lambda: run.stats.inflight_batches >= 2, 5)
        # bounded check that the reader stays held back (with only the batch cap it reads on to 50)
        assert not wait_for(lambda: run.stats.inflight_batches > 2 or run.stats.inflight_bytes > 20_000, 1.0)
        assert run.stats.lines_read < 1_000
        sink.gate.set()
        assert wait_for(lambda: len(sink.records) == 5_000, 20)
        assert sink.messages() == msgs
        assert wait_for(lambda: saved_offsets(cfg) == [log.stat().st_size], 5)
    finally:
        run.stop()


def test_batches_queued_behind_a_slow_sink_go_out_together_in_order(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit: while the sink is busy, queued batches are merged into one send (and one
    checkpoint write), never more than `merge_batches` of them, in order, each line once."""
    import logpipe.tail.checkpoint as checkpoint_mod

    writes: list[str] = []
    real_write = checkpoint_mod.atomic_write
    monkeypatch.setattr(checkpoint_mod, "atomic_write", lambda path, data: (writes.append(str(path)),
                                                                          real_write(path, data))[1])
    log = tmp_path / "app.log"
    msgs = json_lines(log, 2_000)
    cfg = fast_config([str(log)], tmp_path, fmt="json", batch_max_records=100, inflight_max_batches=8,
                      read_chunk_bytes=4_096)
    sink = CollectSink()
    sink.gate.clear()  # busy: the reader fills the window meanwhile
    run = Running(cfg, sink)
    try:
        assert wait_for(lambda: run.stats.inflight_batches == 8, 5)
        writes.clear()
        sink.gate.set()
        assert wait_for(lambda: len(sink.records) == 2_000, 20)
        assert sink.messages() == msgs
        sizes = [len(b) for b in sink.batches]
        assert max(sizes) > 100, "queued batches were sent one by one"
        assert max(sizes) <= 4 * 100
        assert len(sizes) < 20
        assert wait_for(lambda: saved_offsets(cfg) == [log.stat().st_size], 5)
        assert len(writes) == len(sizes)  # one checkpoint write per send, merged or not
    finally:
        run.stop()


class FailingSink(Sink):
    def send(self, records: list[dict[str, Any]]) -> SendResult:
        raise SinkFatalError("test sink: credentials rejected")


def test_fatal_sink_error_stops_without_advancing_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    json_lines(log, 100)
    cfg = fast_config([str(log)], tmp_path, fmt="json")
    run = Running(cfg, FailingSink(), once=True)
    run.thread.join(10)
    assert run.code == 1
    assert "credentials rejected" in run.pipeline.error
    run.stop()
    assert saved_offsets(cfg) in ([], [0])


def test_held_multiline_event_caps_the_checkpoint_and_is_reread_whole(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    head = "2026-11-24 07:00:00,000 - app - INFO - main:1 - started\n"
    tb = ("2026-11-24 07:00:01,000 - app - ERROR - main:2 - boom\n"
          "Traceback (most recent call last):\n"
          '  File "x.py", line 1, in <module>\n'
          "ValueError: bad\n")
    log.write_text(head + tb)
    cfg = fast_config([str(log)], tmp_path, fmt="python")
    cfg.inputs[0].multiline.timeout_s = 60.0  # the traceback stays pending
    sink = CollectSink()
    run = Running(cfg, sink)
    try:
        assert wait_for(lambda: len(sink.records) == 1, 5)
        assert wait_for(lambda: saved_offsets(cfg) == [len(head)], 5)
    finally:
        run.stop()
    assert saved_offsets(cfg) == [len(head)]  # shutdown does not checkpoint past the held event
    cfg.inputs[0].multiline.timeout_s = 0.05
    sink2 = CollectSink()
    run = Running(cfg, sink2)
    try:
        assert wait_for(lambda: len(sink2.records) == 1, 5)
        rec = sink2.records[0]
        assert rec["level"] == "error" and "ValueError: bad" in json.dumps(rec)
        assert rec["log_offset"] == len(head)
    finally:
        run.stop()


class HalfThrottle:
    def apply(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ThrottleReport]:
        kept = records[::2]
        summary = {"message": "throttled", "event.kind": "throttle", "dropped": len(records) - len(kept)}
        return kept, ThrottleReport(dropped={"g": len(records) - len(kept)}, summaries=[summary])


class RecordingTap:
    whole_records = False

    def __init__(self) -> None:
        self.observed = 0
        self.delivered = 0
        self.drained = 0

    def observe(self, records: list[dict[str, Any]]) -> None:
        self.observed += len(records)

    def drain_records(self) -> list[dict[str, Any]]:
        self.drained += 1
        return [{"message": "metric", "event.kind": "metric"}] if self.drained == 1 else []

    def on_delivery(self, delivered: int, dropped: dict[str, int], dead_lettered: int, latency: float) -> None:
        self.delivered += delivered


def test_throttle_drops_are_counted_and_acknowledged_and_tap_records_shipped(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    json_lines(log, 100)
    cfg = fast_config([str(log)], tmp_path, fmt="json", batch_max_records=20)
    tap = RecordingTap()
    sink = CollectSink()
    run = Running(cfg, sink, once=True, tap=tap, throttle=HalfThrottle())
    run.thread.join(10)
    run.stop()
    assert run.code == 0
    logs = [r for r in sink.records if "event.kind" not in r]
    assert 50 <= len(logs) < 100
    assert len(logs) + run.stats.dropped["throttle"] == 100  # every line: delivered or counted as dropped
    assert sum(1 for r in sink.records if r.get("event.kind") == "throttle") >= 5
    assert sum(1 for r in sink.records if r.get("event.kind") == "metric") == 1
    assert tap.observed == 100 and tap.delivered == len(sink.records)
    assert saved_offsets(cfg) == [log.stat().st_size]


def test_records_carry_origin_and_stable_ids(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    json_lines(log, 3)
    cfg = fast_config([str(log)], tmp_path, fmt="json")
    cfg.inputs[0].tags = ["nginx-edge"]
    ids = []
    for _ in range(2):
        sink = CollectSink()
        run = Running(cfg, sink, once=True, store=False)
        run.thread.join(10)
        run.stop()
        ids.append([r["_id"] for r in sink.records])
        rec = sink.records[1]
        assert rec["host"] == "testhost" and rec["log_file"] == str(log)
        assert rec["log_offset"] == len(log.read_text().splitlines()[0]) + 1
        assert rec["tags"] == ["nginx-edge"]
    assert ids[0] == ids[1] and len(set(ids[0])) == 3


def test_checkpoint_resumes_after_restart(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    first = json_lines(log, 10)
    cfg = fast_config([str(log)], tmp_path, fmt="json")
    sink = CollectSink()
    run = Running(cfg, sink, once=True)
    run.thread.join(10)
    run.stop()
    assert sink.messages() == first
    second = json_lines(log, 5, start=10)
    sink2 = CollectSink()
    run = Running(cfg, sink2, once=True)
    run.thread.join(10)
    run.stop()
    assert sink2.messages() == second
    store = CheckpointStore(cfg.pipeline.checkpoint_path)
    assert list(store.entries().values())[0]["path"] == str(log)
    store.close()


def test_shutdown_with_sink_down_gives_up_after_grace_without_checkpointing(tmp_path: Path) -> None:
    import time

    log = tmp_path / "app.log"
    json_lines(log, 50)
    cfg = fast_config([str(log)], tmp_path, fmt="json")
    sink = CollectSink()
    sink.gate.clear()  # down for good
    run = Running(cfg, sink, shutdown_grace_s=0.5)
    assert wait_for(lambda: run.stats.inflight_batches >= 1, 5)
    t0 = time.monotonic()
    code = run.stop()
    assert time.monotonic() - t0 < 5
    assert code == 0 and not sink.records
    assert saved_offsets(cfg) in ([], [0])


def test_shutdown_with_full_window_and_dead_sink_does_not_hang(tmp_path: Path) -> None:
    import time

    log = tmp_path / "app.log"
    json_lines(log, 2_000)
    cfg = fast_config([str(log)], tmp_path, fmt="json", batch_max_records=10, inflight_max_batches=2,
                      read_chunk_bytes=4_096)
    sink = CollectSink()
    sink.gate.clear()
    run = Running(cfg, sink, shutdown_grace_s=0.3)
    assert wait_for(lambda: run.stats.inflight_batches == 2, 5)
    t0 = time.monotonic()
    run.pipeline.stop()
    run.thread.join(10)
    assert not run.thread.is_alive() and time.monotonic() - t0 < 5
    run.stop()
    assert saved_offsets(cfg) in ([], [0])


def test_once_waits_for_a_slow_sink_beyond_the_shutdown_grace(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    json_lines(log, 30)
    cfg = fast_config([str(log)], tmp_path, fmt="json", batch_max_records=10)
    sink = CollectSink(delay=0.3)
    run = Running(cfg, sink, once=True, shutdown_grace_s=0.1)
    run.thread.join(20)
    run.stop()
    assert run.code == 0 and len(sink.records) == 30
    assert saved_offsets(cfg) == [log.stat().st_size]


def test_tags_of_a_continuation_line_reach_the_joined_event(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(
        b"2026-11-24 07:00:01,000 - app - ERROR - main:2 - boom\n"
        b"Traceback (most recent call last):\n"
        b'  File "caf\xe9.py", line 1, in <module>\n'
        b"ValueError: bad\n"
        b"2026-11-24 07:00:02,000 - app - INFO - main:3 - next\n"
    )
    cfg = fast_config([str(log)], tmp_path, fmt="python")
    sink = CollectSink()
    run = Running(cfg, sink, once=True)
    run.thread.join(10)
    run.stop()
    assert len(sink.records) == 2
    first, second = sink.records
    assert "_invalid_utf8" in first.get("tags", [])
    assert "_invalid_utf8" not in second.get("tags", [])
    assert first["log_offset"] == 0 and second["log_offset"] > 100


class TickingTap(RecordingTap):
    def drain_records(self) -> list[dict[str, Any]]:
        self.drained += 1
        return [{"message": "metric", "event.kind": "metric", "n": self.drained}]


def test_metric_records_flow_while_no_logs_arrive(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.touch()
    cfg = fast_config([str(log)], tmp_path, fmt="json")
    sink = CollectSink()
    run = Running(cfg, sink, tap=TickingTap())
    try:
        assert wait_for(lambda: sum(1 for r in sink.records if r.get("event.kind") == "metric") >= 2, 5)
        assert not [r for r in sink.records if "event.kind" not in r]
    finally:
        run.stop()


def test_a_filter_that_drops_records_never_makes_a_batch_bigger_than_batch_max_records(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    msgs = json_lines(log, 1_000)
    cfg = fast_config([str(log)], tmp_path, fmt="json", batch_max_records=100)
    sink = CollectSink()
    stats = PipelineStats()

    def most(records: list[dict[str, Any]]) -> list[dict[str, Any]]:  # 9 in 10
        return [r for r in records if int(r["message"].split()[1]) % 10 != 0]

    pipeline = Pipeline(cfg, TailFront(cfg, stats, once=True), sink, stats=stats, enricher=Enricher("testhost"),
                        record_filter=most)
    pipeline.merge_batches = 1  # one batch per send, so the sink sees batch sizes as cut
    assert pipeline.run() == 0
    assert sink.messages() == [m for m in msgs if int(m.split()[1]) % 10 != 0]
    assert max(len(b) for b in sink.batches) == 100
