"""Dashboard cost: CPU per line of `logpipe tail` with the dashboard polled vs without it.

    python bench/bench_dashboard.py                       # 20k lines/s, 6 s per run, 5 runs each
    python bench/bench_dashboard.py --seconds 4 --runs 3  # shorter, on a busy machine

Each run starts a sidecar (`--metrics-addr`, archive sink) on an empty JSON access log, then
writes lines into it at `--rate` for `--seconds`. Variant "base": metrics on, no dashboard.
Variant "dashboard": `--dashboard` plus `--clients` threads polling `/api/v1/summary` every second.
The sidecar's CPU time (user+system, from when it is ready until it has read every line) is
divided by the lines; variants are interleaved and the median of each is compared (CPU time,
not wall time: on a shared machine wall time mostly measures the neighbours).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from logpipe.metrics.synth import json_lines, traffic

REPO = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lines_read(base: str) -> int:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("logpipe_lines_read_total "):
                return int(float(line.split()[1]))
    return 0


def run(variant: str, lines: list[str], rate: int, seconds: float, clients: int) -> float:
    with tempfile.TemporaryDirectory(prefix="logpipe-bench-dash-") as tmp:
        log = Path(tmp) / "access.log"
        log.write_text("")
        port = _port()
        base = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "logpipe", "tail", str(log), "--format", "json", "--sink", f"file:{tmp}/out",
               "--metrics-addr", f"127.0.0.1:{port}", "--checkpoint", f"{tmp}/cp.json"]
        if variant == "dashboard":
            cmd.append("--dashboard")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    _lines_read(base)
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("sidecar did not start") from None
                    time.sleep(0.1)
            ps = psutil.Process(proc.pid)
            cpu0 = sum(ps.cpu_times()[:2])
            stop = threading.Event()
            pollers = []
            if variant == "dashboard":
                def poll() -> None:
                    while not stop.wait(1.0):
                        with urllib.request.urlopen(base + "/api/v1/summary", timeout=5) as resp:
                            json.loads(resp.read())
                pollers = [threading.Thread(target=poll, daemon=True) for _ in range(clients)]
                for t in pollers:
                    t.start()
            total = int(rate * seconds)
            step = rate // 10
            t0 = time.monotonic()
            with open(log, "a") as fh:
                for i in range(0, total, step):
                    chunk = [lines[(i + j) % len(lines)] for j in range(step)]
                    fh.write("\n".join(chunk) + "\n")
                    fh.flush()
                    pause = t0 + (i + step) / rate - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
            deadline = time.monotonic() + 120
            while _lines_read(base) < total:
                if time.monotonic() > deadline:
                    raise RuntimeError("sidecar did not catch up")
                time.sleep(0.1)
            cpu = sum(ps.cpu_times()[:2]) - cpu0
            stop.set()
            return cpu / total * 1e6
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--clients", type=int, default=5)
    a = ap.parse_args()
    lines = json_lines(traffic(50_000, seed=3, start=time.time()))
    results: dict[str, list[float]] = {"base": [], "dashboard": []}
    for i in range(a.runs):
        for variant in (("base", "dashboard") if i % 2 == 0 else ("dashboard", "base")):
            us = run(variant, lines, a.rate, a.seconds, a.clients)
            results[variant].append(us)
            print(f"run {i + 1} {variant:9s} {us:6.2f} µs CPU/line", flush=True)
    base = statistics.median(results["base"])
    dash = statistics.median(results["dashboard"])
    print(f"median base {base:.2f} µs/line, dashboard + {a.clients} clients {dash:.2f} µs/line: "
          f"{(dash / base - 1) * 100:+.1f} % CPU per line")


if __name__ == "__main__":
    main()
