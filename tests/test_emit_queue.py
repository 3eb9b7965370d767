"""A writer that falls behind: callers wait a bounded time, memory stays bounded, and every
record is either written or counted in a warning record that is written later."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from emit_support import read_json_lines

from logpipe import get_logger, setup_logging, shutdown_logging
from logpipe.emit import setup as emit_setup
from logpipe.emit.handlers import Handoff, QueueGate


def test_gate_waits_then_sheds_then_recovers() -> None:
    q = Handoff()
    gate = QueueGate(q, limit=10, max_wait_s=0.05)
    for i in range(10):
        gate.put(i)
    t0 = time.monotonic()
    gate.put(10)  # full: waits for the writer, which never comes, then drops
    assert time.monotonic() - t0 >= 0.05 and q.qsize() == 10
    t0 = time.monotonic()
    for i in range(100):  # shedding: no more waiting while the queue stays full
        gate.put(i)
    assert time.monotonic() - t0 < 0.05
    assert q.qsize() == 10 and gate.take_dropped() == 101 and gate.take_dropped() == 0
    for _ in range(6):  # the writer catches up below half the limit
        q.get_nowait()
    gate.put(99)
    assert q.qsize() == 5 and gate.take_dropped() == 0
    for i in range(5):
        gate.put(i)
    t0 = time.monotonic()
    gate.put(10)  # a second overload waits for the writer again before it drops
    assert time.monotonic() - t0 >= 0.05 and gate.take_dropped() == 1


def test_stalled_writer_costs_bounded_memory_and_every_record_is_accounted_for(tmp_path: Path) -> None:
    setup_logging(service="svc", log_dir=tmp_path, console="off", queue_max_entries=50, queue_max_wait_s=0.05)
    try:
        state = emit_setup._state
        assert state is not None
        writer = state.listener.writer
        release = threading.Event()
        real = writer.process

        def stalled(entries):  # type: ignore[no-untyped-def]
            release.wait(10)
            return real(entries)

        writer.process = stalled
        std = logging.getLogger("app.std")
        slog = get_logger("app.struct")
        peak = 0
        for i in range(300):
            (std.info if i % 2 else slog.info)(f"event {i}")
            peak = max(peak, state.queue.qsize())
        assert peak <= 50 + 1  # bounded, whatever the writer does
        release.set()
    finally:
        shutdown_logging()
    records = read_json_lines(tmp_path / "app.log")
    written = [r for r in records if r["message"].startswith("event ")]
    notices = [r for r in records if r.get("dropped_records")]
    assert notices and all(r["level"] == "warning" and "dropped" in r["message"] for r in notices)
    assert len(written) + sum(r["dropped_records"] for r in notices) == 300
    assert len(written) >= 50  # what fitted was kept, in order
    nums = [int(r["message"].split()[1]) for r in written]
    assert nums == sorted(nums)
