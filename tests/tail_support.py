"""Helpers shared by the tail/pipeline/replay/archive tests (not a test module)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logpipe.config import Config, InputConfig
from logpipe.enrich import Enricher
from logpipe.pipeline import Pipeline
from logpipe.ship.base import SendResult, Sink
from logpipe.stages import PipelineStats
from logpipe.tail.checkpoint import CheckpointStore
from logpipe.tail.source import TailFront


class CollectSink(Sink):
    """Keeps every acknowledged record; optional per-send delay and a gate to block sends."""

    name = "collect"

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []
        self.batches: list[list[dict[str, Any]]] = []
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def send(self, records: list[dict[str, Any]]) -> SendResult:
        while not self.gate.wait(0.05):
            if self.stop_event.is_set():
                from logpipe.ship.base import SinkStopped

                raise SinkStopped("stopped")
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.records.extend(records)
            self.batches.append(list(records))
        return SendResult(delivered=len(records))

    def messages(self) -> list[str]:
        with self.lock:
            return [str(r.get("message")) for r in self.records if "event.kind" not in r]


def fast_config(paths: list[str], tmp: Path, fmt: str = "raw", **pipeline: Any) -> Config:
    """A config with short timers so follow-mode tests finish quickly."""
    cfg = Config()
    cfg.inputs = [InputConfig(paths=paths, format=fmt)]
    cfg.inputs[0].multiline.timeout_s = 0.05
    cfg.scrub.enabled = False
    p = cfg.pipeline
    p.checkpoint_path = str(tmp / "ckpt" / "checkpoints.json")
    p.poll_interval_s = 0.02
    p.reconcile_interval_s = 0.1
    p.rotate_wait_s = 0.2
    p.batch_max_wait_s = 0.02
    for key, value in pipeline.items():
        setattr(p, key, value)
    return cfg


class Running:
    """A follow-mode pipeline in a background thread."""

    def __init__(self, cfg: Config, sink: Sink, use_events: bool = False, once: bool = False,
                 store: bool = True, **kw: Any) -> None:
        self.stats = PipelineStats()
        self.store = CheckpointStore(cfg.pipeline.checkpoint_path) if store else None
        self.front = TailFront(cfg, self.stats, store=self.store, once=once, use_events=use_events)
        self.pipeline = Pipeline(cfg, self.front, sink, stats=self.stats, enricher=Enricher("testhost"), **kw)
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.pipeline.run()

    def stop(self, timeout: float = 10.0) -> int | None:
        self.pipeline.stop()
        self.thread.join(timeout)
        if self.store is not None:
            self.store.close()
        return self.code


def wait_for(pred: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()
