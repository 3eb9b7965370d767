"""End to end: `logpipe tail` on a generated access log, /metrics scraped over loopback;
/healthz says 200 while delivering and 503 (with a reason) when the sink stops acking."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from logpipe.metrics.server import MetricsServer
from logpipe.metrics.synth import combined_lines, traffic
from logpipe.stages import FileStats, PipelineStats

N = 20_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _families(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        out.setdefault(fam.name, []).extend(fam.samples)
    return out


def _histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """What PromQL's histogram_quantile does: linear interpolation inside the bucket."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-12)
        prev_le, prev_count = le, count
    return prev_le


def test_tail_scrape_counters_and_histogram_quantile(tmp_path: Path) -> None:
    t = traffic(N, seed=5)
    log = tmp_path / "access.log"
    log.write_text("\n".join(combined_lines(t)) + "\n")
    port = _free_port()
    cfg = tmp_path / "logpipe.toml"
    cfg.write_text(f'[metrics]\naddr = "127.0.0.1:{port}"\ninterval_s = 1.0\n')
    out = tmp_path / "sink.ndjson"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(out, "wb") as sink_out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "logpipe", "tail", str(log), "--format", "combined", "--sink", "-",
             "--config", str(cfg), "--checkpoint", str(tmp_path / "cp.json")],
            stdout=sink_out, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
        )

    def scrape_until(lines: int) -> dict[str, list]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                _code, body = _get(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                time.sleep(0.2)
                continue
            fams = _families(body.decode())
            if sum(s.value for s in fams.get("logpipe_records_delivered", [])) >= lines:
                return fams
            time.sleep(0.2)
        raise AssertionError(f"tail did not deliver {lines} records within 60 s")

    try:
        fams = scrape_until(N)
        code, health = _get(f"http://127.0.0.1:{port}/healthz")
        assert code == 200 and json.loads(health)["status"] == "ok"
        time.sleep(1.2)  # an interval passes; the next delivered batch carries the metric records
        with open(log, "a") as fh:
            fh.write("\n".join(combined_lines(traffic(5, seed=6))) + "\n")
        scrape_until(N + 5)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    # metric records went into the same sink as the logs
    shipped = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    metric = [r for r in shipped if r.get("event.kind") == "metric"]
    overall = [r for r in metric if r["route"] == "*"]
    assert overall and sum(r["count"] for r in overall) >= N
    assert {"p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "error_rate", "window_s"} <= set(overall[0])
    assert len(shipped) - len([r for r in shipped if "event.kind" in r]) == N + 5

    # pipeline self-metrics
    assert sum(s.value for s in fams["logpipe_lines_read"]) == N
    assert sum(s.value for s in fams["logpipe_bytes_behind"]) == 0
    assert "logpipe_last_ack_age_seconds" in fams and "logpipe_sink_latency_seconds" in fams

    # request counter by route / method / status class equals what was written
    expected: dict[tuple[str, str, str], int] = {}
    for m, r, st in zip(t.methods, t.routes, t.status.tolist(), strict=True):
        key = (r, m, f"{st // 100}xx")
        expected[key] = expected.get(key, 0) + 1
    got = {(s.labels["route"], s.labels["method"], s.labels["status_class"]): int(s.value)
           for s in fams["logpipe_http_requests"] if s.name == "logpipe_http_requests_total"}
    assert got == expected

    # histogram_quantile over the summed buckets lands in the bucket of the exact p95
    summed: dict[float, float] = {}
    for s in fams["logpipe_http_request_duration_seconds"]:
        if s.name.endswith("_bucket"):
            le = float(s.labels["le"])
            summed[le] = summed.get(le, 0.0) + s.value
    buckets = sorted(summed.items())
    assert buckets[-1][1] == N
    exact_s = float(np.quantile(t.duration_ms / 1000.0, 0.95))
    est = _histogram_quantile(0.95, buckets)
    les = [le for le, _ in buckets]
    upper = next(le for le in les if le >= exact_s)
    lower = max([0.0] + [le for le in les if le < exact_s])
    assert lower <= est <= upper, (est, exact_s, lower, upper)
    assert abs(est - exact_s) <= (upper - lower)
    # the sketch-based gauge is much tighter (≤ 1%)
    p95 = next(s.value for s in fams["logpipe_http_request_duration_window_ms"]
               if s.labels == {"route": "*", "method": "*", "window": "5m", "quantile": "0.95"})
    exact_ms = float(np.quantile(t.duration_ms, 0.95, method="lower"))
    assert abs(p95 - exact_ms) <= 0.01 * exact_ms


def test_healthz_turns_503_with_a_reason_when_the_sink_stops_acking() -> None:
    from prometheus_client.registry import CollectorRegistry

    now = time.time()
    stats = PipelineStats(started_at=now - 600, last_ack_at=now - 1, delivered=10)
    stats.files["/var/log/app.log"] = FileStats(path="/var/log/app.log", size=5000, acked_offset=5000)
    server = MetricsServer("127.0.0.1:0", CollectorRegistry(), stats, max_ack_age_s=30).start()
    try:
        url = f"http://127.0.0.1:{server.port}/healthz"
        code, body = _get(url)
        assert code == 200 and json.loads(body)["status"] == "ok"

        stats.files["/var/log/app.log"].size = 9000  # new data, and the sink went quiet
        stats.last_ack_at = now - 120
        stats.sink_error = "connection refused"
        code, body = _get(url)
        doc = json.loads(body)
        assert code == 503
        assert doc["status"] == "unhealthy" and doc["bytes_behind"] == 4000
        assert "not acknowledged for 120s" in doc["reason"] and "connection refused" in doc["reason"]

        stats.last_ack_at = time.time()  # it recovered
        code, _ = _get(url)
        assert code == 200
        assert _get(f"http://127.0.0.1:{server.port}/nope")[0] == 404
    finally:
        server.stop()
