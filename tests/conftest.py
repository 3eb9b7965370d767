"""Shared pytest fixtures. Keep this file small: area-specific helpers live in their own modules."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def es_url() -> str:
    """URL of a real Elasticsearch: $LOGPIPE_TEST_ES_URL, else the local node of scripts/elasticsearch.sh.

    The node is started when not running (idempotent; a running one is reused) and left running
    for later sessions. It never skips: no Elasticsearch is a test failure.
    """
    url = os.environ.get("LOGPIPE_TEST_ES_URL", "").strip()
    if url:
        return url.rstrip("/")
    script = REPO / "scripts" / "elasticsearch.sh"
    try:
        proc = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("scripts/elasticsearch.sh start did not finish within 300 s")
    if proc.returncode != 0:
        pytest.fail(f"could not start Elasticsearch (scripts/elasticsearch.sh start):\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_fluentd: needs a real Fluentd named by $LOGPIPE_TEST_FLUENTD")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without $LOGPIPE_TEST_FLUENTD the real-Fluentd suite is deselected (not skipped test by
    test): CI cannot have Fluentd, and a skip must not read as a pass."""
    if os.environ.get("LOGPIPE_TEST_FLUENTD", "").strip():
        return
    kept = [item for item in items if item.get_closest_marker("real_fluentd") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
