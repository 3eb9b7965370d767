"""Rotation around the sidecar: while it is down (rename, gzip, copytruncate outside the glob),
files sharing their first line, a rotator's temp files, and directory symlink loops."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from tail_support import CollectSink, Running, fast_config, wait_for  # noqa: E402


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
