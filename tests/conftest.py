"""Shared pytest fixtures. Keep this file small: area-specific helpers live in their own modules."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from es_node import local_node

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def es_url() -> Iterator[str]:
    """URL of a real Elasticsearch: $LOGPIPE_TEST_ES_URL, else the local node of scripts/elasticsearch.sh.

    A node that is already running is reused and left running; one this session starts is
    stopped at its end (tests/es_node.py). It never skips: no Elasticsearch is a test failure.
    """
    url = os.environ.get("LOGPIPE_TEST_ES_URL", "").strip()
    if url:
        yield url.rstrip("/")
        return
    with local_node(REPO / "scripts" / "elasticsearch.sh") as node:
        yield node


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
