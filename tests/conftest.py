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


@pytest.fixture(scope="session")
def es_cluster():  # noqa: ANN201 - tests/es_cluster.py's EsCluster
    """A private 3-node cluster (scripts/elasticsearch.sh --nodes 3, ports 9411+), started fresh
    for the session and stopped after it; never the node LOGPIPE_TEST_ES_URL names."""
    from es_cluster import ClusterError, EsCluster

    cluster = EsCluster()
    try:
        cluster.start(fresh=True)
    except ClusterError as exc:
        cluster.stop()  # the nodes that did start
        pytest.fail(str(exc))
    yield cluster
    cluster.stop()
