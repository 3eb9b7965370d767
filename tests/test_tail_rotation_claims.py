"""README "Rotation: what is covered": a first start's old `.gz` files, copies of a checkpointed
file, and rotators' temp names, as a user sees them through `logpipe tail --once`; and
"What happens during outages": rotated generations stay open until delivered."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from tail_support import CollectSink, Running, fast_config, wait_for  # noqa: E402

LOGPIPE = [sys.executable, "-m", "logpipe"]


def tail_once(tmp_path: Path, pattern: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*LOGPIPE, "tail", pattern, "--once", "--sink", "-", "--format", "raw",
                           "--checkpoint", str(tmp_path / "ck.json")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def records(stdout: str) -> list[dict]:
    parsed = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [r for r in parsed if "event.kind" not in r]


def lines(prefix: str, n: int) -> str:
    return "".join(f"{prefix} {i:05d}\n" for i in range(n))


def test_first_start_without_checkpoint_takes_every_gz_for_history(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text(lines("live", 20))
    (logs / "app.log.1.gz").write_bytes(gzip.compress(lines("gen1", 10).encode()))
    (logs / "app.log.2.gz").write_bytes(gzip.compress(lines("gen2", 10).encode()))
    assert not (tmp_path / "ck.json").exists()
    proc = tail_once(tmp_path, "logs/app.log*")
    assert sorted(r["message"] for r in records(proc.stdout)) == sorted(lines("live", 20).splitlines())
    assert "2 files skipped" in proc.stderr and proc.stderr.count("older than the checkpoint") == 1


def test_a_file_identical_to_the_start_of_a_checkpointed_one_is_taken_for_a_copy(tmp_path: Path) -> None:
    """Copied away (cp, then the original removed) while the sidecar is down: the copy is read
    on from the checkpoint's offset, with the original's ids, not shipped a second time."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text(lines("before", 500))
    first = records(tail_once(tmp_path, "logs/*").stdout)
    assert len(first) == 500
    shutil.copyfile(logs / "app.log", logs / "copy-of-app")
    (logs / "app.log").unlink()
    with open(logs / "copy-of-app", "a") as fh:
        fh.write(lines("after", 30))
    second = records(tail_once(tmp_path, "logs/*").stdout)
    assert [r["message"] for r in second] == lines("after", 30).splitlines()
    assert {r["_id"][:-12] for r in second} == {first[0]["_id"][:-12]}


def test_temp_names_are_never_read_whatever_their_content(tmp_path: Path) -> None:
    """Plain text under temp names (`*.tmp`, `*.part`, `*.swp`, `*~`): the binary check would
    let it through, so only the name keeps it out."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("real 1\n")
    temps = ["app.log.tmp", "app.log.part", "app.log.swp", "app.log~"]
    for name in temps:
        (logs / name).write_text(f"temp {name}\n")
    assert [r["message"] for r in records(tail_once(tmp_path, "logs/app.log*").stdout)] == ["real 1"]
    for name in temps:
        with open(logs / name, "a") as fh:
            fh.write("more temp\n")
    with open(logs / "app.log", "a") as fh:
        fh.write("real 2\n")
    assert [r["message"] for r in records(tail_once(tmp_path, "logs/app.log*").stdout)] == ["real 2"]


def test_generations_rotated_and_deleted_during_a_sink_outage_are_delivered_when_it_returns(tmp_path: Path) -> None:
    """The sink is down with the window full; app.log is renamed and the rotated file deleted by
    retention; new lines go to a new app.log. The old generation stays open (its descriptor)
    until the sink is back and every line of it is acknowledged."""
    log = tmp_path / "app.log"
    log.write_text(lines("old", 2_000))
    cfg = fast_config([str(log)], tmp_path, batch_max_records=50, inflight_max_batches=2, read_chunk_bytes=4_096,
                      rotate_wait_s=0.0)
    sink = CollectSink()
    sink.gate.clear()  # the sink is down
    run = Running(cfg, sink)
    try:
        assert wait_for(lambda: run.stats.inflight_batches == 2, 5)
        os.rename(log, tmp_path / "app.log.1")
        log.write_text(lines("new", 300))
        (tmp_path / "app.log.1").unlink()
        sink.gate.set()
        assert wait_for(lambda: len(sink.messages()) == 2_300, 20)
        got = sink.messages()
        for prefix, n in (("old", 2_000), ("new", 300)):  # each file in order, once
            assert [m for m in got if m.startswith(prefix)] == lines(prefix, n).splitlines()
    finally:
        assert run.stop() == 0
