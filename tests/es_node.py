"""The test Elasticsearch from scripts/elasticsearch.sh, for the `es_url` fixture.

Why a helper: a session that starts a node must stop it again, while a node that was already
running (someone's, or a previous session's kept on purpose) is reused and left alone.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _script(script: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=timeout)


@contextmanager
def local_node(script: Path) -> Iterator[str]:
    """URL of the script's node. Reused (and left running) when it is up already; otherwise
    started here and stopped on exit. Never skips: no Elasticsearch is a test failure."""
    if _script(script, "status").returncode == 0:
        yield _script(script, "url").stdout.strip()
        return
    try:
        proc = _script(script, "start", timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{script.name} start did not finish within 300 s")
    if proc.returncode != 0:
        pytest.fail(f"could not start Elasticsearch ({script.name} start):\n{proc.stderr[-3000:]}")
    try:
        yield proc.stdout.strip().splitlines()[-1]
    finally:
        stopped = _script(script, "stop", timeout=120)
        if stopped.returncode != 0:
            print(f"{script.name} stop failed:\n{stopped.stderr[-2000:]}")
