"""`logpipe tail --sink null:` (discard, acknowledged, counted) and `--no-metrics`, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOGPIPE = [sys.executable, "-m", "logpipe"]
LINES = "".join(
    json.dumps({"@timestamp": f"2026-11-24T07:00:0{i}.000000Z", "level": "info", "message": f"m{i}",
                "method": "GET", "path": "/api/items/1", "status": 200, "duration_ms": 3.5}) + "\n"
    for i in range(3)
)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(LOGPIPE + args, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_null_sink_acknowledges_counts_and_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text(LINES)
    first = run(["tail", "app.log", "--sink", "null:", "--once", "--no-metrics"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3 lines read, 3 log records delivered to null" in first.stderr
    assert first.stdout == ""
    with (tmp_path / "app.log").open("a") as fh:
        fh.write(LINES.splitlines(keepends=True)[0])
    again = run(["tail", "app.log", "--sink", "null:", "--once", "--no-metrics"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "1 lines read, 1 log records delivered to null" in again.stderr  # the checkpoint moved on


def test_no_metrics_leaves_the_tap_out(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text(LINES)
    with_tap = run(["tail", "app.log", "--sink", "-", "--once", "--checkpoint", "a.json"], tmp_path)
    without = run(["tail", "app.log", "--sink", "-", "--once", "--checkpoint", "b.json", "--no-metrics"], tmp_path)
    assert with_tap.returncode == 0 and without.returncode == 0, (with_tap.stderr, without.stderr)
    kinds = [[json.loads(x).get("event.kind") for x in p.stdout.splitlines()] for p in (with_tap, without)]
    assert "metric" in kinds[0]  # the tap's records for the run ride along by default
    assert kinds[1] == [None, None, None]
