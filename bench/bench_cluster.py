"""Per-component cost for the sizing guide (docs/sizing.md): CPU seconds per line, not just lines/s.

On a shared machine wall-clock rates depend on the neighbours; CPU time per line depends much
less on them, and it is what sizing needs (cores = lines/s x CPU s/line). Each row runs
`logpipe replay` of the same file (JSON access lines of ~300 bytes) in a subprocess and reads
that process's CPU from `os.wait4`; receiver and Elasticsearch CPU come from psutil.

- sidecar -> stdout (/dev/null): read, parse, id, scrub, encode -- the sidecar's own work
- sidecar -> forward receiver: plus msgpack packing and acks; receiver = tests/fluentd_receiver.py
  (Python, in this process), a stand-in for an aggregator, *not* Fluentd
- sidecar -> Elasticsearch: each `--es` target (one URL, or a comma-separated cluster); ES CPU is
  summed over the processes listening on the target's ports (run as root or as their user)

    python bench/bench_cluster.py --lines 200000 --es http://127.0.0.1:9200 \
        --es http://127.0.0.1:9401,http://127.0.0.1:9402,http://127.0.0.1:9403
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fluentd_receiver import FluentdReceiver  # noqa: E402

BASE = [0.0, 0.0]  # wall and CPU seconds of a replay process that ships one line (start-up)
CACHE = Path(os.environ.get("LOGPIPE_CACHE", Path.home() / ".cache" / "logpipe")) / "es"


def write_lines(path: Path, n: int, service: str) -> int:
    routes = ["/api/v1/users/{id}", "/api/v1/workspaces/{id}/items", "/healthz", "/api/v1/search"]
    with open(path, "wb") as fh:
        for i in range(n):
            fh.write(orjson.dumps({
                "@timestamp": f"2026-11-24T12:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}000Z",
                "level": "info", "logger": "access", "message": f"GET /api/v1/users/{i % 9973} 200",
                "service": service, "method": "GET", "path": f"/api/v1/users/{i % 9973}",
                "route": routes[i % 4], "status": 200 if i % 20 else 500, "duration_ms": (i % 250) / 3,
                "request_id": f"req-{i:08d}", "client_ip": "10.0.0.1"}) + b"\n")
    return path.stat().st_size


def replay(path: Path, sink: str, cwd: Path) -> tuple[float, float]:
    """Run `logpipe replay` once; (wall seconds, CPU seconds of that process)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "logpipe", "replay", str(path), "--sink", sink, "--no-progress"],
                            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"replay to {sink} failed: {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def listening_pids(urls: str) -> list[int]:
    """The processes listening on the ports of `urls` (the Elasticsearch nodes of a target)."""
    from urllib.parse import urlsplit

    ports = {urlsplit(u).port or 9200 for u in urls.split(",")}
    return sorted({c.pid for c in psutil.net_connections(kind="tcp")
                   if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in ports and c.pid})


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def row(name: str, lines: int, wall: float, cpu: float, other: str = "") -> None:
    wall, cpu = max(0.001, wall - BASE[0]), max(0.001, cpu - BASE[1])
    print(f"| {name} | {lines:,} | {wall:.1f} | {lines / wall:,.0f} | {cpu / lines * 1e6:.1f} | "
          f"{lines / cpu:,.0f} | {other} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--es", action="append", default=[], help="Elasticsearch URL(s); repeat for several targets")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        service = f"bench{uuid.uuid4().hex[:6]}"
        size = write_lines(work / "app.log", args.lines, service)
        print(f"{args.lines:,} lines, {size / args.lines:.0f} B/line; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores")
        write_lines(work / "one.log", 1, service)
        base_wall, base_cpu = replay(work / "one.log", "-", work)
        BASE[:] = [base_wall, base_cpu]
        print(f"start-up of a replay process (1 line): {base_wall:.2f} s wall, {base_cpu:.2f} s CPU "
              "(subtracted from every row below)")
        print("| path | lines | wall s | lines/s (wall) | sidecar CPU µs/line | lines per sidecar CPU-s | other |")
        print("|---|---|---|---|---|---|---|")
        wall, cpu = replay(work / "app.log", "-", work)
        row("sidecar -> stdout", args.lines, wall, cpu)
        with FluentdReceiver(store=False) as rx:
            me = psutil.Process()
            before = me.cpu_times()
            wall, cpu = replay(work / "app.log", f"forward://127.0.0.1:{rx.port}", work)
            after = me.cpu_times()
            rx_cpu = (after.user - before.user) + (after.system - before.system)
            assert rx.count >= args.lines, f"receiver got {rx.count}"
            row("sidecar -> forward receiver", args.lines, wall, cpu,
                f"receiver (Python test receiver) {rx_cpu / args.lines * 1e6:.1f} µs/record")
        for target in args.es:
            es_pids = listening_pids(target)
            es_before = cpu_of(es_pids)
            wall, cpu = replay(work / "app.log", target, work)
            es_cpu = cpu_of(es_pids) - es_before
            nodes = len(target.split(","))
            row(f"sidecar -> Elasticsearch ({nodes} node{'s' if nodes > 1 else ''})", args.lines, wall, cpu,
                f"Elasticsearch {es_cpu / args.lines * 1e6:.1f} µs/doc (all nodes, incl. replicas)")
            from elasticsearch import Elasticsearch

            client = Elasticsearch(target.split(","), request_timeout=60)
            client.options(ignore_status=404).indices.delete(index=f"logpipe-{service}-*", allow_no_indices=True)
            client.close()


if __name__ == "__main__":
    main()
