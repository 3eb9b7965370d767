"""Archive sink: dated gzip NDJSON segments, atomic, sortable, acknowledged after fsync."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from logpipe.config import SinkConfig
from logpipe.ship.archive import ArchiveSink
from logpipe.ship.base import SinkConfigError, SinkStopped
from logpipe.ship.factory import make_sink


def test_segments_are_dated_sorted_and_complete(tmp_path: Path) -> None:
    sink = make_sink(SinkConfig(url=f"file:{tmp_path / 'arch'}"))
    assert isinstance(sink, ArchiveSink)
    for b in range(3):
        res = sink.send([{"message": f"b{b} r{i}", "_id": f"{b}-{i}"} for i in range(100)])
        assert res.delivered == 100
    sink.close()
    segments = sorted((tmp_path / "arch").rglob("*"))
    files = [p for p in segments if p.is_file()]
    assert len(files) == 3
    assert all(p.parent.name.count("-") == 2 and len(p.parent.name) == 10 for p in files)  # YYYY-MM-DD
    assert not [p for p in files if p.name.startswith(".") or p.name.endswith(".tmp")]
    lines = [json.loads(x) for p in files for x in gzip.decompress(p.read_bytes()).splitlines()]
    assert [r["message"] for r in lines] == [f"b{b} r{i}" for b in range(3) for i in range(100)]


def test_ecs_schema_option(tmp_path: Path) -> None:
    sink = ArchiveSink(SinkConfig(url=f"file:{tmp_path}", schema="ecs"))
    sink.send([{"message": "m", "level": "info", "status": 200, "method": "GET", "_id": "x"}])
    (seg,) = [p for p in tmp_path.rglob("*.gz")]
    rec = json.loads(gzip.decompress(seg.read_bytes()))
    assert rec["log"]["level"] == "info" and rec["http"]["response"]["status_code"] == 200


def test_unwritable_directory_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(SinkConfigError, match="archive directory"):
        ArchiveSink(SinkConfig(url=f"file:{blocker}/sub"))


def test_write_failure_is_retried_then_stops_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = ArchiveSink(SinkConfig(url=f"file:{tmp_path}"))
    calls = {"n": 0}
    real = os.fsync

    def flaky(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", flaky)
    res = sink.send([{"message": "eventually"}])
    assert res.delivered == 1 and res.retries == 2
    assert not list(tmp_path.rglob(".*.tmp"))
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    sink.stop_event.set()
    with pytest.raises(SinkStopped):
        sink.send([{"message": "never"}])
