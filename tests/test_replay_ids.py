"""`logpipe replay`: same ids every time, .gz same as plain, age order, time window, rate."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

LOGPIPE = [sys.executable, "-m", "logpipe"]


def replay(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(LOGPIPE + ["replay", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def recs(out: str) -> list[dict]:
    parsed = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [r for r in parsed if "event.kind" not in r]  # log records only, not the run's metric records


def write_log(path: Path, start: int, n: int, minute: int) -> None:
    with open(path, "w") as fh:
        for i in range(start, start + n):
            fh.write(json.dumps({"@timestamp": f"2026-11-20T10:{minute:02d}:{i % 60:02d}.000000Z",
                                 "level": "info", "message": f"event {i}"}) + "\n")


def test_replay_twice_gives_same_ids_and_gz_matches_plain(tmp_path: Path) -> None:
    write_log(tmp_path / "app.log", 0, 50, 0)
    with open(tmp_path / "app.log", "rb") as src:
        (tmp_path / "copy.log.gz").write_bytes(gzip.compress(src.read()))
    a = replay(["app.log", "--sink", "-"], tmp_path)
    b = replay(["app.log", "--sink", "-"], tmp_path)
    c = replay(["copy.log.gz", "--sink", "-"], tmp_path)
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr + c.stderr
    ids = [[r["_id"] for r in recs(p.stdout)] for p in (a, b, c)]
    assert len(ids[0]) == 50 and len(set(ids[0])) == 50
    assert ids[0] == ids[1] == ids[2]


def test_tail_then_replay_of_gz_generation_gives_the_same_ids(tmp_path: Path) -> None:
    write_log(tmp_path / "app.log", 0, 20, 0)
    tailed = subprocess.run(LOGPIPE + ["tail", "app.log", "--sink", "-", "--once"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    with open(tmp_path / "app.log", "rb") as src:
        (tmp_path / "app.log.1.gz").write_bytes(gzip.compress(src.read()))
    replayed = replay(["app.log.1.gz", "--sink", "-"], tmp_path)
    assert [r["_id"] for r in recs(tailed.stdout)] == [r["_id"] for r in recs(replayed.stdout)]


def test_rotated_set_is_replayed_oldest_first(tmp_path: Path) -> None:
    write_log(tmp_path / "access.log", 200, 3, 3)
    write_log(tmp_path / "access.log.1", 100, 3, 2)
    write_log(tmp_path / "gen2", 0, 3, 1)
    (tmp_path / "access.log.2.gz").write_bytes(gzip.compress((tmp_path / "gen2").read_bytes()))
    os.unlink(tmp_path / "gen2")
    proc = replay(["access.log*", "--sink", "-"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [r["message"] for r in recs(proc.stdout)] == [f"event {i}" for i in (0, 1, 2, 100, 101, 102, 200, 201, 202)]


def test_since_until_window_and_archive_round_trip_keeps_ids(tmp_path: Path) -> None:
    write_log(tmp_path / "app.log", 0, 10, 0)
    write_log(tmp_path / "later.log", 10, 10, 30)
    proc = replay(["app.log", "later.log", "--sink", "file:arch"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "20 records" in proc.stderr
    direct = recs(replay(["app.log", "later.log", "--sink", "-"], tmp_path).stdout)
    back = replay(["arch", "--sink", "-"], tmp_path)
    assert [r["_id"] for r in recs(back.stdout)] == [r["_id"] for r in direct]
    window = replay(["arch", "--sink", "-", "--since", "2026-11-20T10:15Z", "--until", "2026-11-20T10:30:15"],
                    tmp_path)
    assert [r["message"] for r in recs(window.stdout)] == [f"event {i}" for i in range(10, 15)]
    assert "outside --since/--until" in window.stderr
    bad = replay(["arch", "--since", "yesterday"], tmp_path)
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr


def test_rate_limit_paces_records(tmp_path: Path) -> None:
    write_log(tmp_path / "app.log", 0, 40, 0)
    t0 = time.monotonic()
    proc = replay(["app.log", "--sink", "-", "--rate", "40"], tmp_path)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0 and len(recs(proc.stdout)) == 40
    assert elapsed >= 0.9


def test_nothing_to_replay_is_a_clear_error(tmp_path: Path) -> None:
    proc = replay(["missing/*.log"], tmp_path)
    assert proc.returncode == 2 and "nothing to replay" in proc.stderr


def test_progress_bar_shows_bytes_and_records(tmp_path: Path) -> None:
    write_log(tmp_path / "app.log", 0, 30, 0)
    proc = replay(["app.log", "--sink", "file:out", "--progress"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "replay → file:out" in proc.stderr and "30 records" in proc.stderr


def test_binary_and_truncated_gz_inputs_are_reported_not_fatal(tmp_path: Path) -> None:
    write_log(tmp_path / "a.log", 0, 5, 0)
    (tmp_path / "b.bin").write_bytes(b"\x7fELF\x02\x01" + bytes(range(256)) * 4)
    full = gzip.compress((tmp_path / "a.log").read_bytes() * 50)
    (tmp_path / "c.log.gz").write_bytes(full[: len(full) // 2])  # cut off mid-stream
    proc = replay(["a.log", "b.bin", "c.log.gz", "--sink", "-"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "b.bin: skipped, binary" in proc.stderr
    assert "c.log.gz" in proc.stderr
    assert len(recs(proc.stdout)) >= 5


def test_backfill_into_elasticsearch_uses_bigger_batches_unless_configured() -> None:
    """Replay into Elasticsearch: bigger batches by default, the same records in flight;
    an explicit batch size or another sink keeps the config's values."""
    from logpipe.commands.replay import REPLAY_BATCH_RECORDS, tune_for_backfill
    from logpipe.config import Config

    cfg = Config()
    cfg.sink.url = "http://127.0.0.1:9200"
    default = Config().pipeline
    tune_for_backfill(cfg)
    assert cfg.pipeline.batch_max_records == REPLAY_BATCH_RECORDS
    assert (cfg.pipeline.batch_max_records * cfg.pipeline.inflight_max_batches
            <= max(2 * REPLAY_BATCH_RECORDS, default.batch_max_records * default.inflight_max_batches))
    chosen = Config()
    chosen.sink.url = "https://es:9200"
    chosen.pipeline.batch_max_records = 500
    tune_for_backfill(chosen)
    assert (chosen.pipeline.batch_max_records, chosen.pipeline.inflight_max_batches) == (500, default.inflight_max_batches)
    archive = Config()
    archive.sink.url = "file:restore"
    tune_for_backfill(archive)
    assert archive.pipeline.batch_max_records == default.batch_max_records
