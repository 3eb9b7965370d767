"""Rotation around the sidecar: while it is down (rename, gzip, copytruncate outside the glob),
files sharing their first line, a rotator's temp files, and directory symlink loops."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from tail_support import CollectSink, Running, fast_config, wait_for  # noqa: E402

LOGPIPE = [sys.executable, "-m", "logpipe"]


def records(stdout: str) -> list[dict]:
    """Log records only (the run's metric records ride along)."""
    parsed = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [r for r in parsed if "event.kind" not in r]


def append(path: Path, *lines: str) -> None:
    with open(path, "a") as fh:
        fh.write("".join(line + "\n" for line in lines))


def test_rotator_temp_file_and_late_gzip_bytes_are_never_shipped(tmp_path: Path) -> None:
    """Our own rotator writes app.log.N.gz.tmp, which `app.log*` matches; a file opened while
    empty that then fills with gzip bytes is skipped as binary, whatever its name."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    append(log, "first")
    tmp = logs / "app.log.1.gz.tmp"
    odd = logs / "app.log.2"
    tmp.touch()
    odd.touch()
    sink = CollectSink()
    run = Running(fast_config([str(logs / "app.log*")], tmp_path), sink)
    try:
        assert wait_for(lambda: sink.messages() == ["first"])
        assert wait_for(lambda: str(odd) in run.stats.files or any(f.path == str(odd) for f in run.front.order))
        payload = gzip.compress("".join(f"compressed line {i}\n" for i in range(400)).encode(), compresslevel=1)
        tmp.write_bytes(payload)
        odd.write_bytes(payload)
        append(log, "second")
        assert wait_for(lambda: "second" in sink.messages())
        assert wait_for(lambda: str(odd) in run.stats.skipped_files)
        append(log, "third")  # one more full turn over every file
        assert wait_for(lambda: "third" in sink.messages())
    finally:
        assert run.stop() == 0
    assert sink.messages() == ["first", "second", "third"]
    assert run.stats.skipped_files[str(odd)].startswith("binary")


def _symlink_loops(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    (logs / "a" / "b").mkdir(parents=True)
    (logs / "a" / "b" / "up").symlink_to("../..")  # two links back up: glob's walk is exponential
    (logs / "a" / "self").symlink_to(".")
    (logs / "top.log").write_text("top 1\ntop 2\n")
    (logs / "a" / "b" / "deep.log").write_text("deep 1\n")
    return logs


def test_directory_symlink_loop_under_double_star_is_read_once_and_warned_once(tmp_path: Path) -> None:
    logs = _symlink_loops(tmp_path)
    proc = subprocess.run([*LOGPIPE, "tail", str(logs / "**" / "*.log"), "--once", "--sink", "-", "--format", "raw",
                           "--checkpoint", str(tmp_path / "ck.json")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(r["message"] for r in records(proc.stdout)) == ["deep 1", "top 1", "top 2"]
    warnings = [line for line in proc.stderr.splitlines() if "directory already read" in line]
    assert len(warnings) == 2, proc.stderr  # one per looping link, each said once


def test_sigterm_ends_follow_mode_over_a_symlink_loop_within_5_s(tmp_path: Path) -> None:
    logs = _symlink_loops(tmp_path)
    proc = subprocess.Popen([*LOGPIPE, "tail", str(logs / "**" / "*.log"), "--sink", "-", "--format", "raw",
                             "--checkpoint", str(tmp_path / "ck.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        got = []
        assert proc.stdout is not None
        while len(got) < 3:  # readiness: it has read every file once
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            got.append(json.loads(line)["message"])
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        proc.wait(timeout=30)
        assert time.monotonic() - t0 < 5.0
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert sorted(got) == ["deep 1", "top 1", "top 2"]


def tail_once(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*LOGPIPE, "tail", *args, "--once", "--sink", "-", "--format", "raw",
                           "--checkpoint", str(tmp_path / "ck.json")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def numbered(prefix: str, n: int) -> list[str]:
    return [f"{prefix} {i:05d} 2026-12-04 GET /api/items 200" for i in range(n)]


def test_files_sharing_their_header_line_are_told_apart_across_a_rename_while_down(tmp_path: Path) -> None:
    """W3C-style files all begin with the same `#Fields:` line. Renamed while the sidecar is
    down, the old file is read on from its checkpoint and the new one from its start."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    header = "#Fields: date time cs-method cs-uri-stem sc-status"
    append(log, header, *numbered("old", 1000))
    first = records(tail_once(tmp_path, "logs/app.log*").stdout)
    assert len(first) == 1001
    old_prefix = first[0]["_id"][:-12]

    os.rename(log, logs / "app.log.1")  # rotated while down; the writer still appends to it
    append(logs / "app.log.1", *numbered("late", 500))
    append(log, header, *numbered("new", 1500))
    second = records(tail_once(tmp_path, "logs/app.log*").stdout)
    got = [r["message"] for r in second]
    assert sorted(got) == sorted(numbered("late", 500) + [header] + numbered("new", 1500))
    ids = [r["_id"] for r in second] + [r["_id"] for r in first]
    assert len(set(ids)) == len(ids)
    late = [r for r in second if r["message"].startswith("late")]
    assert all(r["_id"][:-12] == old_prefix for r in late)  # the old file keeps its key and ids
    assert records(tail_once(tmp_path, "logs/app.log*").stdout) == []


def test_generations_rotated_and_compressed_while_down_are_read_and_old_history_is_counted(tmp_path: Path) -> None:
    """Two rename+gzip rotations while the sidecar is down (logrotate `compress`, no
    delaycompress): the half-read generation is read on from its offset, the one never seen
    is read whole; a .gz that predates the checkpoint is history: skipped, counted, said once,
    and `read_from_head` ingests it."""
    logs = tmp_path / "logs"
    logs.mkdir()
    history = logs / "app.log.7.gz"
    history.write_bytes(gzip.compress("".join(f"history {i}\n" for i in range(30)).encode()))
    log = logs / "app.log"
    append(log, *numbered("gen1", 1000))
    first = tail_once(tmp_path, "logs/app.log*")
    assert len(records(first.stdout)) == 1000

    append(log, *numbered("gen1-unread", 100))

    def rotate() -> None:
        for n in (2, 1):
            if (logs / f"app.log.{n}.gz").exists():
                os.rename(logs / f"app.log.{n}.gz", logs / f"app.log.{n + 1}.gz")
        (logs / "app.log.1.gz").write_bytes(gzip.compress(log.read_bytes()))
        log.unlink()

    rotate()
    append(log, *numbered("gen2", 500))
    rotate()
    append(log, *numbered("gen3", 200))
    second = tail_once(tmp_path, "logs/app.log*")
    got = sorted(r["message"] for r in records(second.stdout))
    assert got == sorted(numbered("gen1-unread", 100) + numbered("gen2", 500) + numbered("gen3", 200))
    assert "older than the checkpoint" in first.stderr and "1 files skipped" in first.stderr
    assert second.stderr.count("older than the checkpoint") == 1
    assert "1 files skipped" in second.stderr

    config = tmp_path / "tail.toml"
    config.write_text(f'[[inputs]]\npaths = ["{logs}/app.log*"]\nformat = "raw"\nread_from_head = true\n'
                      f'[pipeline]\ncheckpoint_path = "{tmp_path / "ck.json"}"\n[sink]\nurl = "-"\n')
    third = subprocess.run([*LOGPIPE, "tail", "--config", str(config), "--once"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert sorted(r["message"] for r in records(third.stdout)) == sorted(f"history {i}" for i in range(30))


#: `_id`s of this corpus as logpipe gave them before files sharing a first line were told
#: apart: a file whose first line is unique keeps fingerprint + offset, byte for byte.
PINNED_IDS = {
    "10.0.0.1 - GET /a - Status: 200 - Time: 0.01s": "39d42ae556c5151c000000000000",
    "10.0.0.2 - GET /b - Status: 404 - Time: 0.02s": "39d42ae556c5151c00000000002e",
    "10.0.0.3 - POST /c - Status: 500 - Time: 0.5s": "39d42ae556c5151c00000000005c",
    '{"level": "info", "message": "app 0"}': "fc016f47cee6a91e000000000000",
    '{"level": "info", "message": "app 1"}': "fc016f47cee6a91e000000000026",
    '{"level": "info", "message": "app 2"}': "fc016f47cee6a91e00000000004c",
    "#Software: only-one": "9b1317562d0f791c000000000000",
    "#Fields: date time": "9b1317562d0f791c000000000014",
    "2026-12-04 07:00:00": "9b1317562d0f791c000000000027",
    "fresh 1": "7abd8cff5d657106000000000000",
    "fresh 2": "7abd8cff5d657106000000000008",
    "late 1": "fc016f47cee6a91e000000000072",
    "late 2": "fc016f47cee6a91e000000000079",
}


def test_ids_of_files_with_a_unique_first_line_are_unchanged(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("".join(f'{{"level": "info", "message": "app {i}"}}\n' for i in range(3)))
    (logs / "access.log").write_text("10.0.0.1 - GET /a - Status: 200 - Time: 0.01s\n"
                                     "10.0.0.2 - GET /b - Status: 404 - Time: 0.02s\n"
                                     "10.0.0.3 - POST /c - Status: 500 - Time: 0.5s")
    (logs / "w3c.log").write_text("#Software: only-one\n#Fields: date time\n2026-12-04 07:00:00\n")
    got = {r["message"]: r["_id"] for r in records(tail_once(tmp_path, "logs/*.log*").stdout)}
    os.rename(logs / "app.log", logs / "app.log.1")
    append(logs / "app.log.1", "late 1", "late 2")
    append(logs / "app.log", "fresh 1", "fresh 2")
    got.update({r["message"]: r["_id"] for r in records(tail_once(tmp_path, "logs/*.log*").stdout)})
    assert got == PINNED_IDS


@pytest.mark.parametrize("style", ["rename", "dateext", "dateext-before-ext", "dateext-gzip", "copytruncate"])
@pytest.mark.parametrize("pattern", ["logs/*.log", "logs/app.log"])
def test_file_rotated_out_of_the_glob_while_down_is_finished_from_its_sibling(tmp_path: Path, style: str,
                                                                               pattern: str) -> None:
    """The README's glob (`logs/*.log`) and a plain path do not match app.log.1,
    app.log-20261204 or app.log-20261204.gz: the checkpointed file is found there and read to
    its end (app-20261204.log, the README's last sibling form, is matched by the glob)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    append(log, *numbered("before", 1000))
    assert len(records(tail_once(tmp_path, pattern).stdout)) == 1000
    append(log, *numbered("unread", 500))
    if style == "rename":
        os.rename(log, logs / "app.log.1")
    elif style == "dateext":
        os.rename(log, logs / "app.log-20261204")
    elif style == "dateext-before-ext":
        os.rename(log, logs / "app-20261204.log")
    elif style == "dateext-gzip":
        (logs / "app.log-20261204.gz").write_bytes(gzip.compress(log.read_bytes()))
        log.unlink()
    else:
        (logs / "app.log.1").write_bytes(log.read_bytes())
        os.truncate(log, 0)
    append(log, *numbered("after", 300))
    (logs / "other.log.1").write_text("not a sibling of app.log\n")
    second = records(tail_once(tmp_path, pattern).stdout)
    assert sorted(r["message"] for r in second) == sorted(numbered("unread", 500) + numbered("after", 300))
    assert records(tail_once(tmp_path, pattern).stdout) == []  # finished once, not again
