"""A fleet: 16 sidecar processes (each its own log file and checkpoint) shipping at once,
straight to the 3-node cluster and to two forward receivers.

Each sidecar is `logpipe tail --once` over 5k lines. Into the cluster: exactly 80k documents
(ids are unique across the fleet, none lost). Into the two receivers (load balanced): 80k
distinct `_id`s, nothing foreign. Every sidecar's memory stays bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import psutil
import pytest
from fluentd_receiver import FluentdReceiver

from elasticsearch import Elasticsearch
from logpipe.es.setup import load_assets, run_setup

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[1]
SIDECARS = 16
LINES = 5000
RSS_LIMIT_MB = 200
TIMEOUT_S = 240


def _run_fleet(tmp_path: Path, service: str, sink: str) -> dict[int, int]:
    """Start every sidecar at once, wait for all; returns sidecar -> peak RSS (bytes)."""
    procs: list[subprocess.Popen[bytes]] = []
    for n in range(SIDECARS):
        home = tmp_path / f"sidecar-{n:02d}"
        home.mkdir()
        with open(home / "app.log", "wb") as fh:
            for i in range(LINES):
                fh.write(orjson.dumps({"@timestamp": f"2026-11-24T11:{i // 1000:02d}:{(i // 10) % 60:02d}.{i:06d}Z",
                                       "level": "info", "service": service, "sidecar": n, "seq": i,
                                       "message": f"sidecar {n} handled request {i}"}) + b"\n")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "logpipe", "tail", "app.log", "--once", "--sink", sink,
             "--checkpoint", "checkpoints.json", "--no-scrub"],
            cwd=home, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    peaks = dict.fromkeys(range(SIDECARS), 0)
    handles = {n: psutil.Process(p.pid) for n, p in enumerate(procs)}
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while any(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, f"fleet not done after {TIMEOUT_S}s"
            for n, h in handles.items():
                try:
                    peaks[n] = max(peaks[n], h.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for n, p in enumerate(procs):
        err = p.stderr.read().decode(errors="replace") if p.stderr else ""
        assert p.returncode == 0, f"sidecar {n} failed: {err[-2000:]}"
        assert (tmp_path / f"sidecar-{n:02d}" / "checkpoints.json").exists(), f"sidecar {n} kept no checkpoint"
    return peaks


@pytest.mark.es
def test_sixteen_sidecars_into_the_cluster_make_exactly_one_document_per_line(es_cluster, tmp_path: Path) -> None:  # noqa: ANN001
    client = Elasticsearch(es_cluster.urls, request_timeout=30, max_retries=2, retry_on_timeout=True)
    run_setup(client, load_assets())
    service = f"fleet{uuid.uuid4().hex[:8]}"
    pattern = f"logpipe-{service}-*"
    try:
        peaks = _run_fleet(tmp_path, service, ",".join(es_cluster.urls))
        client.indices.refresh(index=pattern)
        assert client.count(index=pattern)["count"] == SIDECARS * LINES
        per_sidecar = client.search(index=pattern, size=0, aggs={"s": {"terms": {"field": "sidecar", "size": 50}}})
        assert {int(b["key"]): b["doc_count"] for b in per_sidecar["aggregations"]["s"]["buckets"]} == \
            dict.fromkeys(range(SIDECARS), LINES)
        assert max(peaks.values()) < RSS_LIMIT_MB * 2**20, {n: v >> 20 for n, v in peaks.items()}
    finally:
        client.options(ignore_status=404).indices.delete(index=pattern, allow_no_indices=True)
        client.close()


def test_sixteen_sidecars_into_two_receivers_deliver_every_id(tmp_path: Path) -> None:
    with FluentdReceiver() as a, FluentdReceiver() as b:
        sink = f"forward://127.0.0.1:{a.port},forward://127.0.0.1:{b.port}"
        peaks = _run_fleet(tmp_path, "fleet", sink)
        logs = [r for rx in (a, b) for r in rx.records() if "event.kind" not in r and "event" not in r]
        assert len({r["_id"] for r in logs}) == SIDECARS * LINES  # one id per line, fleet-wide
        assert {(r["sidecar"], r["seq"]) for r in logs} == {(n, i) for n in range(SIDECARS) for i in range(LINES)}
        assert a.count > 0 and b.count > 0  # both aggregators took a share
        assert max(peaks.values()) < RSS_LIMIT_MB * 2**20, {n: v >> 20 for n, v in peaks.items()}
