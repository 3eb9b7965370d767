"""`logpipe replay` into a 3-node cluster while one node is killed (kill -9) and restarted.

Every line must end in the indices exactly once, the sidecar's memory must stay bounded and
its summary must say how many bulk requests went to another node. LOGPIPE_CLUSTER_LINES
(default 100k) sizes the run: the 500k-line run is the opt-in benchmark,
`LOGPIPE_CLUSTER_LINES=500000 pytest -s --timeout 1800 tests/test_es_cluster.py -k kill`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import psutil
import pytest
from elastic_transport import TransportError

from elasticsearch import ApiError, Elasticsearch
from logpipe.es.setup import load_assets, run_setup

pytestmark = [pytest.mark.es, pytest.mark.cluster, pytest.mark.timeout(900)]  # incl. starting the cluster
REPO = Path(__file__).resolve().parents[1]
LINES = int(os.environ.get("LOGPIPE_CLUSTER_LINES", "100000"))
RSS_LIMIT_MB = 300  # the replay's in-flight window is bounded; the file is ~25 MB per 100k lines


def _write_lines(path: Path, service: str, count: int) -> None:
    with open(path, "wb") as fh:
        for i in range(count):
            fh.write(orjson.dumps({
                "@timestamp": f"2026-11-24T10:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}000Z",
                "level": "info", "service": service, "message": f"GET /items/{i % 977} 200",
                "route": "/items/{id}", "status": 200, "seq": i}) + b"\n")


def _indexed(client: Elasticsearch, pattern: str, refresh: bool = True) -> int:
    if refresh:
        client.options(ignore_status=404).indices.refresh(index=pattern, allow_no_indices=True)
    return int(client.count(index=pattern, allow_no_indices=True)["count"])


def _wait_for(what: str, check, timeout_s: float, proc: subprocess.Popen | None = None) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"replay exited ({proc.returncode}) before {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def test_replay_while_a_node_is_killed_and_restarted_lands_every_line_once(es_cluster, tmp_path: Path) -> None:  # noqa: ANN001
    urls = es_cluster.urls
    client = Elasticsearch(urls, request_timeout=30, max_retries=2, retry_on_timeout=True)
    run_setup(client, load_assets())
    service = f"kill{uuid.uuid4().hex[:8]}"
    pattern = f"logpipe-{service}-*"
    source = tmp_path / "app.log"
    _write_lines(source, service, LINES)
    rate = max(3000, LINES // 30)  # the run lasts ~30 s: long enough to kill and restart mid-stream
    proc = subprocess.Popen(
        [sys.executable, "-m", "logpipe", "replay", str(source), "--sink", ",".join(urls), "--no-progress",
         "--rate", str(rate)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak_rss = [0]

    def progressed(n: int):  # noqa: ANN202
        def check() -> bool:
            try:
                peak_rss[0] = max(peak_rss[0], ps.memory_info().rss)
            except psutil.NoSuchProcess:
                pass
            try:
                return _indexed(client, pattern, refresh=False) >= n  # searchable within refresh_interval
            except (ApiError, TransportError):  # 503 while the new index's shards start; the killed node
                return False
        return check

    started = time.monotonic()
    restart: subprocess.Popen | None = None
    try:
        _wait_for(f"{LINES // 10} lines indexed", progressed(LINES // 10), 120, proc)
        es_cluster.kill(2)
        killed_at = time.monotonic()
        restart = es_cluster.start_in_background()  # node-2 only; the replay goes on meanwhile
        while proc.poll() is None:
            progressed(0)()
            time.sleep(0.5)
            assert time.monotonic() - started < 600, "replay did not finish"
        finished_at = time.monotonic()
        out, err = proc.communicate()
        es_cluster.wait(restart)  # green again: node-2 back with its replicas
        restart = None
    finally:
        if proc.poll() is None:
            proc.kill()
        if restart is not None and restart.poll() is None:
            restart.kill()
    summary = err.decode(errors="replace")
    assert proc.returncode == 0, summary[-3000:]
    count = _indexed(client, pattern)
    seq_sum = client.search(index=pattern, size=0, aggs={"s": {"sum": {"field": "seq"}}})["aggregations"]["s"]["value"]
    client.options(ignore_status=404).indices.delete(index=pattern, allow_no_indices=True)
    client.close()
    rerouted = re.search(r"([\d,]+) requests retried on other nodes", summary)
    print(f"\ncluster replay: {LINES:,} lines at --rate {rate} in {finished_at - started:.1f}s; node-2 killed at "
          f"{killed_at - started:.1f}s, cluster green again at {time.monotonic() - started:.1f}s; peak RSS "
          f"{peak_rss[0] / 2**20:.0f} MB; {rerouted.group(0) if rerouted else 'no reroute line'}")
    assert count == LINES, f"{count} documents for {LINES} lines"
    assert seq_sum == LINES * (LINES - 1) / 2  # with count == LINES: each line once, none twice
    assert rerouted is not None and int(rerouted.group(1).replace(",", "")) >= 1, summary[-2000:]
    assert 0 < peak_rss[0] < RSS_LIMIT_MB * 2**20


def test_es_setup_sizes_the_template_for_the_cluster(es_cluster) -> None:  # noqa: ANN001
    from click.testing import CliRunner

    from logpipe.cli import cli

    urls = ",".join(es_cluster.urls)
    client = Elasticsearch(es_cluster.urls, request_timeout=30)
    runner = CliRunner()
    try:
        res = runner.invoke(cli, ["es", "setup", "--es", urls, "--shards", "2", "--replicas", "2"])
        assert res.exit_code == 0, res.output
        settings = client.indices.get_index_template(name="logpipe")["index_templates"][0]["index_template"][
            "template"]["settings"]["index"]
        assert settings["number_of_shards"] == "2" and settings["number_of_replicas"] == "2"
        assert "auto_expand_replicas" not in settings
        res = runner.invoke(cli, ["es", "setup", "--es", urls])  # defaults: one shard, 0-1 replicas
        assert res.exit_code == 0 and "updated" in res.output, res.output
        settings = client.indices.get_index_template(name="logpipe")["index_templates"][0]["index_template"][
            "template"]["settings"]["index"]
        assert settings["number_of_shards"] == "1" and settings["auto_expand_replicas"] == "0-1"
    finally:
        client.close()
