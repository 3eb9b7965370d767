"""The retry delays of both sinks grow exponentially up to a cap, each drawn with jitter
(README: "retries with exponential backoff and jitter"; "429/503 items are retried with
backoff"; follow mode "keeps retrying with backoff").

The delays are recorded from the sinks' jitter draw (their `random` is replaced by a recorder),
not measured on the wall clock, so the test does not depend on machine speed."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from test_es_sink_retry import FakeES, _records, _sink

from logpipe.config import SinkConfig
from logpipe.ship import elastic, forward
from logpipe.ship.base import SinkStopped
from logpipe.ship.forward import ForwardSink


class JitterRecorder:
    """Stands in for the `random` module: records each `uniform(lo, hi)` window."""

    def __init__(self, pick: str, after: int = 0, then=None) -> None:
        self.windows: list[tuple[float, float]] = []
        self.pick = pick  # "lo" or "hi": which end of the window to return
        self.after, self.then = after, then

    def uniform(self, lo: float, hi: float) -> float:
        self.windows.append((lo, hi))
        if self.then is not None and len(self.windows) >= self.after:
            self.then()
        return lo if self.pick == "lo" else hi


def test_es_503_items_are_retried_with_growing_jittered_delays(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeES()
    rejected = {"d2", "d5"}
    fake.decide = lambda doc_id, n: (503, "master_not_discovered_exception") if doc_id in rejected and n < 6 else (201, "")
    jitter = JitterRecorder("lo")
    monkeypatch.setattr(elastic, "random", jitter)
    sink = _sink(fake.port, tmp_path)  # backoff base 0.01 s, cap 0.05 s
    try:
        result = sink.send(_records(8))
    finally:
        sink.close()
        fake.close()
    assert result.delivered == 8 and result.dead_lettered == 0
    assert fake.requests[1:] == [["d2", "d5"]] * 6  # only the 503 items, until accepted
    # one draw per retry round, each in [delay/2, delay], the delay doubling up to the cap
    flat = [x for window in jitter.windows for x in window]
    assert flat == pytest.approx([0.005, 0.01, 0.01, 0.02, 0.02, 0.04, 0.025, 0.05, 0.025, 0.05, 0.025, 0.05])


def test_forward_reconnect_delays_grow_with_jitter_up_to_the_cap(monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nothing listens on: every connect is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = ForwardSink(SinkConfig(url=f"forward://127.0.0.1:{port}"), backoff_base_s=0.01,
                       backoff_max_s=0.04, connect_timeout_s=2.0)
    jitter = JitterRecorder("hi", after=6, then=sink.stop_event.set)
    monkeypatch.setattr(forward, "random", jitter)
    caplog.set_level("DEBUG", logger=forward.log.name)
    guard = threading.Timer(30, sink.stop_event.set)  # bounds the test if no jitter is ever drawn
    guard.start()
    try:
        with pytest.raises(SinkStopped):
            sink.send(_records(3))
    finally:
        guard.cancel()
        sink.close()
    # each failure draws a jitter factor in [0.5, 1] ...
    assert jitter.windows == [(0.5, 1.0)] * 6
    # ... applied to a delay that doubles from the base up to the cap
    delays = [r.getMessage().rsplit("retry in ", 1)[1] for r in caplog.records if "retry in" in r.getMessage()]
    assert delays == ["0.01s)", "0.02s)", "0.04s)", "0.04s)", "0.04s)", "0.04s)"]
