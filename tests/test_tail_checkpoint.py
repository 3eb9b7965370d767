"""Checkpoint store: atomic durable writes, corrupt files, reset, locking, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logpipe.tail.checkpoint import CheckpointError, CheckpointStore


def test_roundtrip_and_no_temp_left(tmp_path: Path) -> None:
    path = tmp_path / "c" / "ckpt.json"
    store = CheckpointStore(path)
    store.set("abc", 123, "/var/log/app.log")
    store.save()
    store.close()
    assert json.loads(path.read_text())["files"]["abc"]["offset"] == 123
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.json", "ckpt.json.lock"]
    again = CheckpointStore(path)
    assert again.get("abc") == 123
    assert again.get("missing") is None
    again.close()


def test_corrupt_file_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.json"
    path.write_text('{"version": 1, "files": {"abc": {"offs')
    with pytest.raises(CheckpointError) as err:
        CheckpointStore(path)
    assert str(path) in str(err.value) and "--reset-checkpoint" in str(err.value)
    path.write_text('{"files": {"abc": {"offset": -5}}}')
    with pytest.raises(CheckpointError, match="corrupt"):
        CheckpointStore(path)


def test_reset_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.json"
    path.write_text("garbage")
    store = CheckpointStore(path, reset=True)
    assert store.get("abc") is None
    store.close()


def test_second_process_on_same_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.json"
    first = CheckpointStore(path)
    try:
        code = f"from logpipe.tail.checkpoint import CheckpointStore as C; C({str(path)!r})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0 and "in use by another logpipe process" in proc.stderr
    finally:
        first.close()


WRITER = """
import sys
from logpipe.tail.checkpoint import CheckpointStore
store = CheckpointStore(sys.argv[1])
i = 0
print("ready", flush=True)
while True:
    i += 1
    for k in range(50):
        store.set(f"key{k}", i * 1000 + k, "/logs/app.log")
    store.save()
"""


def test_kill_9_while_saving_never_leaves_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.json"
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(0.1 + 0.05 * round_)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        store = CheckpointStore(path)  # must load: either the previous or the next version
        offsets = {store.get(f"key{k}") for k in range(50)}
        store.close()
        assert None not in offsets
        assert len({o // 1000 for o in offsets}) == 1  # all keys from one consistent save
