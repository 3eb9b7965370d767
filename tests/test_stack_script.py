"""scripts/stack.sh's control surface: fast checks that need no Elasticsearch.

The full start -> traffic -> stop road runs in tests/test_stack_e2e.py; here we check what
an operator meets first: status of a stack that is not running, idempotent stop, a clear
error (and nothing left running) when Elasticsearch is unreachable, and the usage line.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "stack.sh"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOGPIPE_STACK_DIR=str(tmp_path / "run"),
               LOGPIPE_ES_URL=f"http://127.0.0.1:{_closed_port()}",
               LOGPIPE_DEMO_PORT=str(_closed_port()), LOGPIPE_METRICS_ADDR=f"127.0.0.1:{_closed_port()}")
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_status_of_a_stopped_stack_says_so_and_fails(tmp_path: Path) -> None:
    res = _run(tmp_path, "status")
    assert res.returncode == 1
    lines = dict(line.split(None, 1) for line in res.stdout.splitlines())
    assert lines["elasticsearch"].startswith("down")
    assert lines["demo"].startswith("down") and lines["sidecar"].startswith("down")


def test_stop_is_idempotent(tmp_path: Path) -> None:
    assert _run(tmp_path, "stop").returncode == 0
    assert _run(tmp_path, "stop").returncode == 0


def test_unreachable_elasticsearch_fails_fast_and_starts_nothing(tmp_path: Path) -> None:
    res = _run(tmp_path, "start")
    assert res.returncode != 0
    assert "does not answer" in res.stderr and "http://127.0.0.1:" in res.stderr
    assert not list((tmp_path / "run").glob("*.pid")), "nothing may be left running"


def test_unknown_command_prints_usage(tmp_path: Path) -> None:
    res = _run(tmp_path, "frobnicate")
    assert res.returncode != 0 and "usage:" in res.stderr
    assert "start" in res.stderr and "traffic" in res.stderr
