"""`logpipe tail --once` into the forward receiver (tests/fluentd_receiver.py) delivers the same
decoded entries — tag, EventTime, record, in the same order — whether the native core (its
NDJSON and its PackedForward encoder) or the Python road does the work.

Before the sink encoders the pipeline turned the core off for a forward sink (it took dicts
only): `test_the_pipeline_takes_the_core_road_to_fluentd` fails on that code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fluentd_receiver import FluentdReceiver
from test_es_core_road import _lines

from logpipe import _core  # noqa: E402, F401 - required: pip install -e . builds it; missing is a failure, not a skip
from logpipe.config import Config, InputConfig, SinkConfig
from logpipe.enrich import Enricher
from logpipe.pipeline import Pipeline
from logpipe.ship.forward import ForwardSink
from logpipe.stages import PipelineStats
from logpipe.tail.source import TailFront

REPO = Path(__file__).resolve().parents[1]


def _tail(port: int, log: Path, workdir: Path, core: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOGPIPE_CORE": core, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "logpipe", "tail", "--once", "--no-metrics", "--format", "json",
                           "--sink", f"forward://127.0.0.1:{port}", "--tag", "logpipe.{service}.{kind}",
                           "--checkpoint", str(workdir / f"{core}.ckpt"), str(log)],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=120)


def _entries(rx: FluentdReceiver) -> list[tuple[str, int, int, dict[str, Any]]]:
    out = []
    for ev in rx.events:
        rec = dict(ev.record)
        if "_parse_failure" in rec.get("tags", ()):  # stamped with the time it was read
            rec.pop("@timestamp")
            ev.seconds = ev.nanos = 0
        assert ev.event_time and ev.mode == "PackedForward"
        out.append((ev.tag, ev.seconds, ev.nanos, rec))
    return out


def test_same_entries_with_the_core_on_and_off(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    lines = _lines("api")
    log.write_bytes(b"\n".join(lines) + b"\n")
    runs = {}
    for core in ("off", "on"):
        with FluentdReceiver() as rx:
            proc = _tail(rx.port, log, tmp_path, core)
            assert proc.returncode == 0, proc.stderr
            runs[core] = _entries(rx)
    assert len(runs["on"]) == len(lines)
    assert runs["on"] == runs["off"]
    assert {tag for tag, *_ in runs["on"]} >= {"logpipe.api.app", "logpipe.api.error", "logpipe.unknown.app"}
    assert (runs["on"][0][1], runs["on"][0][2]) == (1_795_504_527, 0)  # 2026-11-24T07:15:27.000000Z


def test_the_pipeline_takes_the_core_road_to_fluentd(tmp_path: Path) -> None:
    cfg = Config()
    cfg.inputs = [InputConfig(paths=[str(tmp_path / "a.log")], format="json")]
    cfg.pipeline.checkpoint_path = str(tmp_path / "ckpt.json")
    cfg.sink = SinkConfig(url="forward://127.0.0.1:9")
    sink = ForwardSink(cfg.sink)
    try:
        stats = PipelineStats()
        pipeline = Pipeline(cfg, TailFront(cfg, stats, once=True), sink, stats=stats, enricher=Enricher("h"))
        assert sink.accepts_ndjson()
        assert pipeline._core is not None
    finally:
        sink.close()


def test_ndjson_chunks_are_resent_as_they_were_after_a_lost_ack(tmp_path: Path) -> None:
    """The core road keeps the delivery contract: a chunk whose ack never came is sent again,
    same chunk id, and `send_ndjson` returns only once everything is acknowledged."""
    import orjson

    data = b"".join(orjson.dumps({"@timestamp": f"2026-11-24T07:15:27.{i:06d}Z", "level": "info",
                                  "message": f"m{i}", "service": "api", "_id": f"id{i}"}) + b"\n"
                    for i in range(50))
    with FluentdReceiver() as rx:
        rx.faults.close_before_ack = 1
        sink = ForwardSink(SinkConfig(url=f"forward://127.0.0.1:{rx.port}", ack_timeout_s=2.0),
                           chunk_max_records=20, backoff_base_s=0.01, backoff_max_s=0.05)
        try:
            result = sink.send_ndjson(data, 50)
        finally:
            sink.close()
        ids = [ev.record["_id"] for ev in rx.events]
        chunks = list(rx.chunks)
    assert result.delivered == 50 and sink.chunks_resent >= 1
    assert set(ids) == {f"id{i}" for i in range(50)}
    assert len(set(chunks)) == 3 < len(chunks)  # 20 + 20 + 10 records; resends kept their chunk ids
