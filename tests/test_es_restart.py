"""Restarting Elasticsearch in the middle of sending loses nothing and duplicates nothing.

Uses a private node (port 9211) so the shared node other tests use is never restarted.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from elasticsearch import Elasticsearch
from logpipe.config import SinkConfig
from logpipe.es.setup import load_assets, run_setup
from logpipe.ship.base import SendResult
from logpipe.ship.elastic import ElasticSink

pytestmark = [pytest.mark.es, pytest.mark.slow]
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "elasticsearch.sh"
PORT = "9211"


def _script(*args: str) -> str:
    env = {**os.environ, "LOGPIPE_ES_PORT": PORT}
    proc = subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0:
        pytest.fail(f"elasticsearch.sh {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout.strip()


def test_restart_mid_send_loses_nothing(tmp_path: Path) -> None:
    url = _script("start").splitlines()[-1]
    client = Elasticsearch(url, request_timeout=30)
    try:
        run_setup(client, load_assets())
        client.options(ignore_status=404).indices.delete(index="logpipe-restart-*", allow_no_indices=True)
        sink = ElasticSink(SinkConfig(url=url, deadletter_path=str(tmp_path / "dl.ndjson"), concurrency=2))
        sink.backoff_max_s = 1.0
        batches, per_batch = 40, 500
        total = SendResult()
        done = threading.Event()
        sent = [0]

        def sender() -> None:
            for b in range(batches):
                recs: list[dict[str, Any]] = [
                    {"_id": f"r{b}-{i}", "@timestamp": "2026-11-24T10:00:00.000000Z", "service": "restart",
                     "message": f"batch {b} line {i}", "log_offset": b * per_batch + i} for i in range(per_batch)]
                total.merge(sink.send(recs))
                sent[0] += 1
                time.sleep(0.05)
            done.set()

        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while sent[0] < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        _script("stop")
        stopped_at = sent[0]
        time.sleep(1.0)
        assert sent[0] <= stopped_at + 1  # the sender is blocked (backpressure), not dropping
        _script("start")
        thread.join(timeout=180)
        sink.close()
        assert done.is_set(), "sender did not finish after the restart"
        assert total.retries > 0
        assert total.delivered + total.duplicates == batches * per_batch
        assert total.dead_lettered == 0
        client.indices.refresh(index="logpipe-restart-*")
        assert client.count(index="logpipe-restart-*")["count"] == batches * per_batch
    finally:
        try:
            client.options(ignore_status=404).indices.delete(index="logpipe-restart-*", allow_no_indices=True)
        except Exception:
            pass
        client.close()
        _script("stop")
