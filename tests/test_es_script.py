"""The test Elasticsearch: the fixture stops a node it started (and only that one), and
scripts/elasticsearch.sh never changes the mode of directories it did not create."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from es_node import local_node

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "elasticsearch.sh"

STUB = """#!/usr/bin/env bash
# A stand-in for scripts/elasticsearch.sh: records its calls, keeps its state in a file.
dir="$(dirname "$0")"
echo "$1" >> "$dir/calls"
case "$1" in
  status) [[ "$(cat "$dir/state" 2>/dev/null)" == running ]] ;;
  start) echo running > "$dir/state"; echo "http://127.0.0.1:1" ;;
  stop) echo stopped > "$dir/state" ;;
  url) echo "http://127.0.0.1:1" ;;
esac
"""


def _stub(tmp_path: Path, state: str) -> Path:
    script = tmp_path / "es.sh"
    script.write_text(STUB)
    (tmp_path / "state").write_text(state)
    return script


def test_fixture_stops_the_node_it_started(tmp_path: Path) -> None:
    script = _stub(tmp_path, "stopped")
    with local_node(script) as url:
        assert url == "http://127.0.0.1:1"
        assert (tmp_path / "state").read_text().strip() == "running"
    assert (tmp_path / "calls").read_text().split() == ["status", "start", "stop"]
    assert (tmp_path / "state").read_text().strip() == "stopped"


def test_fixture_leaves_a_running_node_running(tmp_path: Path) -> None:
    script = _stub(tmp_path, "running")
    with local_node(script) as url:
        assert url == "http://127.0.0.1:1"
    assert (tmp_path / "calls").read_text().split() == ["status", "url"]
    assert (tmp_path / "state").read_text().strip() == "running"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(os.geteuid() != 0, reason="the node's own user (and the chmod) exist only when run as root")
def test_as_root_the_script_never_chmods_a_directory_it_cannot_use(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    cache = private / "cache"
    ancestors = [private, *private.parents]
    before = {p: stat.S_IMODE(p.stat().st_mode) for p in ancestors}
    env = {**os.environ, "LOGPIPE_CACHE": str(cache), "LOGPIPE_ES_PORT": str(_free_port())}
    proc = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "cannot enter" in proc.stderr and "LOGPIPE_CACHE" in proc.stderr, proc.stderr
    assert {p: stat.S_IMODE(p.stat().st_mode) for p in ancestors} == before
    assert not cache.exists()  # it stopped before downloading anything

    # and by default, as root, the cache is not in root's home
    env = {k: v for k, v in os.environ.items() if k != "LOGPIPE_CACHE"}
    out = subprocess.run(["bash", str(SCRIPT), "cache"], env=env, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "/var/cache/logpipe/es"
