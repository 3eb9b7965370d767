"""`logpipe tail` with the native core on its JSON road: the same output as the Python road
(LOGPIPE_CORE=off), batches cut at batch_max_records, and the bytes reaching an NDJSON sink."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from logpipe.config import Config, InputConfig
from logpipe.enrich import Enricher, load_scrubber
from logpipe.pipeline import Pipeline
from logpipe.ship.base import SendResult, Sink
from logpipe.ship.ndjson import NdjsonSink
from logpipe.stages import PipelineStats
from logpipe.tail.checkpoint import CheckpointStore
from logpipe.tail.source import TailFront

LOGPIPE = [sys.executable, "-m", "logpipe"]


def corpus(n: int = 60) -> str:
    out = []
    for i in range(n):
        rec: dict[str, Any] = {"@timestamp": f"2026-11-24T07:00:{i % 60:02d}.000000Z", "level": "info",
                               "message": f"request {i}", "host": "web-1", "method": "GET", "path": f"/api/items/{i}",
                               "status": 200 if i % 7 else 500, "duration_ms": i * 1.5}
        if i % 5 == 0:
            rec["message"] = f"user u{i}@example.com signed in"  # scrubbed (flagged by the screen)
        if i % 11 == 0:
            rec = {"time": "2026-11-24 07:00:00", "msg": f"foreign {i}", "severity": "WARNING"}  # Python road
        out.append(json.dumps(rec))
        if i % 13 == 0:
            out.append("")  # blank: dropped and counted
    return "\n".join(out) + "\n"


def run(tmp: Path, *args: str, core: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOGPIPE_CORE=core)
    return subprocess.run([*LOGPIPE, "tail", "app.log", "--once", "--format", "json", "--config", "cfg.toml",
                           "--checkpoint", f"ck-{core}-{len(args)}.json", *args],
                          cwd=tmp, capture_output=True, text=True, timeout=120, env=env)


def test_tail_output_is_the_same_with_and_without_the_core(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text(corpus())
    (tmp_path / "cfg.toml").write_text('[pipeline]\nbatch_max_records = 7\nhost = "h1"\n')
    on = run(tmp_path, "--sink", "-", "--no-metrics", core="on")
    off = run(tmp_path, "--sink", "-", "--no-metrics", core="off")
    assert on.returncode == 0 and off.returncode == 0, (on.stderr, off.stderr)
    assert on.stdout == off.stdout
    assert on.stderr == off.stderr  # the summary: lines read, delivered, dropped (empty_line)
    recs = [json.loads(x) for x in on.stdout.splitlines()]
    assert len(recs) == 60 and "[REDACTED:email]" in recs[5]["message"]
    assert [r["log_offset"] for r in recs] == sorted(r["log_offset"] for r in recs)  # file order kept
    for core in ("on", "off"):  # and the archive holds the same records
        proc = run(tmp_path, "--sink", f"file:arch-{core}", core=core)
        assert proc.returncode == 0, proc.stderr
    archived = {core: [json.loads(x) for p in sorted((tmp_path / f"arch-{core}").rglob("*.ndjson.gz"))
                       for x in gzip.decompress(p.read_bytes()).splitlines()] for core in ("on", "off")}
    logs = {k: [r for r in v if "event.kind" not in r] for k, v in archived.items()}
    assert logs["on"] == logs["off"] and len(logs["on"]) == 60


class RecordingSink(Sink, NdjsonSink):
    """Keeps what it is given, by road."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.dicts: list[dict[str, Any]] = []
        self.ndjson: list[bytes] = []

    def send(self, records: list[dict[str, Any]]) -> SendResult:
        self.dicts += records
        return SendResult(delivered=len(records))

    def accepts_ndjson(self) -> bool:
        return True

    def send_ndjson(self, data: bytes, count: int) -> SendResult:
        assert data.count(b"\n") == count
        self.ndjson.append(data)
        return SendResult(delivered=count)


def run_pipeline(tmp: Path, **stages: Any) -> RecordingSink:
    cfg = Config()
    cfg.inputs = [InputConfig(paths=[str(tmp / "app.log")], format="json")]
    cfg.pipeline.checkpoint_path = str(tmp / f"ck-{len(stages)}.json")
    sink = RecordingSink()
    stats = PipelineStats()
    store = CheckpointStore(cfg.pipeline.checkpoint_path)
    front = TailFront(cfg, stats, store=store, once=True)
    pipe = Pipeline(cfg, front, sink, stats=stats, enricher=Enricher("h", load_scrubber(cfg.scrub)),
                    **stages)
    assert pipe.run() == 0
    store.close()
    assert stats.delivered == 60
    return sink


def test_json_reaches_an_ndjson_sink_as_bytes_unless_a_stage_needs_dicts(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text(corpus())
    fast = run_pipeline(tmp_path)
    assert fast.dicts == [] and sum(d.count(b"\n") for d in fast.ndjson) == 60
    filtered = run_pipeline(tmp_path, record_filter=lambda records: records)
    assert filtered.ndjson == [] and len(filtered.dicts) == 60
    assert [json.loads(x) for d in fast.ndjson for x in d.splitlines()] == filtered.dicts


def test_a_renamed_stream_is_stamped_with_its_new_path() -> None:
    """Rotation renames a followed file: same stream key, new path; records say where they were read."""
    from logpipe import _core
    from logpipe.config import InputConfig as Inp
    from logpipe.coreroute import CoreRoute
    from logpipe.parse.jsonfmt import JsonParser
    from logpipe.tail.lines import LineSplitter
    from logpipe.tail.stream import Stream

    line = b'{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m"}\n'
    route = CoreRoute(_core, Enricher("h", None), tap=False)
    parser = JsonParser()
    splitter = LineSplitter(0)
    paths = []
    for path in ("app.log", "app.log.1"):
        stream = Stream(key="ino:42", path=path, fp="00112233445566ff", input=Inp(paths=["app.log"]))
        out = route.run(stream, "json", parser.parse_batch, parser, splitter.feed(line), 0, 1)
        paths.append(json.loads(out.ndjson)["log_file"])
    assert paths == ["app.log", "app.log.1"]
