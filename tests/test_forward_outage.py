"""Fluentd down while the service keeps logging: `logpipe tail --sink forward://` must stop
reading ahead (bounded memory), then deliver every line once the server is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from fluentd_receiver import FluentdReceiver

LINES = 200_000
OUTAGE_S = 12.0


def _write(path: Path, start: int, count: int) -> None:
    pad = "x" * 120
    with path.open("a", encoding="utf-8") as fh:
        for lo in range(start, start + count, 5000):
            fh.write("".join(
                json.dumps({"@timestamp": f"2026-11-24T07:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 999999:06d}Z",
                            "level": "info", "message": f"line {i} {pad}", "service": "api", "n": i}) + "\n"
                for i in range(lo, min(lo + 5000, start + count))))


def _rss_mb(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


@pytest.mark.slow
def test_outage_keeps_memory_bounded_and_delivers_everything(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.touch()
    rx = FluentdReceiver().start()
    port = rx.port
    conf = tmp_path / "sidecar.toml"
    conf.write_text(f"""
[pipeline]
checkpoint_path = "{tmp_path / 'cp.json'}"
batch_max_records = 2000
inflight_max_batches = 4
inflight_max_bytes = 8388608

[sink]
url = "forward://127.0.0.1:{port}"
ack_timeout_s = 5.0
""", encoding="utf-8")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "logpipe", "tail", str(log), "--config", str(conf)],
                            stdout=subprocess.DEVNULL, env=env,
                            stderr=open(tmp_path / "stderr.txt", "w"))  # noqa: SIM115 - closed with the process
    ps = psutil.Process(proc.pid)
    try:
        _write(log, 0, 2000)
        assert rx.wait_for(2000, timeout=30), "sidecar never delivered the first lines"
        baseline = _rss_mb(ps)

        rx.stop()  # Fluentd goes away; the service keeps logging
        down_at = time.monotonic()
        peak = baseline
        written = 2000
        while time.monotonic() - down_at < OUTAGE_S:
            if written < LINES:
                step = min(20_000, LINES - written)
                _write(log, written, step)
                written += step
            peak = max(peak, _rss_mb(ps))
            time.sleep(0.2)
        assert written == LINES
        assert proc.poll() is None, "the sidecar died during the outage"

        rx.port = port
        rx.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len({r["n"] for r in rx.records()}) < LINES:
            peak = max(peak, _rss_mb(ps))
            time.sleep(0.5)
        received = rx.records()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        rx.stop()

    print(f"outage: RSS baseline {baseline:.0f} MB, peak {peak:.0f} MB, received {len(received)}")
    # The file is ~40 MB and 200,000 parsed records would take hundreds of MB: reading must
    # have paused at the in-flight window instead.
    assert peak - baseline < 120, f"RSS grew from {baseline:.0f} MB to {peak:.0f} MB during the outage"
    seen: dict[str, dict] = {}
    for r in received:
        twin = seen.setdefault(r["_id"], r)
        assert twin == r, "a duplicate differs from its twin"
    assert sorted(r["n"] for r in seen.values()) == list(range(LINES))
