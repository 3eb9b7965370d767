"""`logpipe tail` ends with one summary line that tells log records from its own metric records,
after --once and when follow mode is stopped by SIGTERM or SIGINT."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

LOGPIPE = [sys.executable, "-m", "logpipe"]


def _summary(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.startswith("logpipe tail: ") and "lines read" in x]
    assert len(lines) == 1, stderr
    return lines[0]


def test_once_summary_names_metric_records(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text("".join(
        f'{{"@timestamp": "2026-12-01T10:00:{i:02d}.000000Z", "method": "GET", "path": "/a/{i}", "status": 200, '
        f'"duration_ms": 5}}\n' for i in range(50)))
    proc = subprocess.run(LOGPIPE + ["tail", "app.log", "--once", "--sink", "-", "--checkpoint", "ck.json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    metric = sum(1 for r in out if "event.kind" in r)
    assert metric > 0 and len(out) == 50 + metric
    line = _summary(proc.stderr)
    assert f"50 lines read, 50 log records + {metric} metric records (event.kind) delivered to stdout" in line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_follow_mode_prints_a_summary_when_stopped(tmp_path: Path, sig: signal.Signals) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f'{{"message": "m{i}"}}\n' for i in range(1000)))
    ck = tmp_path / "ck.json"
    proc = subprocess.Popen(LOGPIPE + ["tail", "app.log", "--sink", "file:arch", "--checkpoint", str(ck)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60  # bounded: readiness is the checkpoint reaching the end
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                files = json.loads(ck.read_text())["files"]
            except (OSError, ValueError, KeyError):
                files = {}
            if [e["offset"] for e in files.values()] == [log.stat().st_size]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("tail never acknowledged the file")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    line = _summary(err)
    assert re.search(r"1,000 lines read, 1,000 log records( \+ \d+ metric records \(event\.kind\))? delivered", line)
