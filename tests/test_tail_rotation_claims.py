"""README "Rotation: what is covered": a first start's old `.gz` files, copies of a checkpointed
file, and rotators' temp names, as a user sees them through `logpipe tail --once`."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

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
