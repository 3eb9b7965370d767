"""Benchmark: `logpipe tail --once` on JSON and combined access logs, to a null sink and to the
archive sink, against a naive `for line in f: json.loads(line)` loop on the same file.

    python bench/bench_tail.py                 # 1,000,000 lines per format
    python bench/bench_tail.py --lines 200000  # smaller, for a loaded machine

Each measurement runs in a fresh child process; reported: wall time, lines/s, CPU seconds
(user+sys, all threads) and peak RSS of that child.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUTES = ["/api/users/{}", "/api/items/{}", "/health", "/api/orders/{}/lines", "/static/app.js", "/login"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "curl/8.4.0",
          "python-httpx/0.27.0"]


def make_json(path: Path, n: int) -> None:
    import orjson

    rnd = random.Random(1)
    with open(path, "wb") as fh:
        buf = []
        for i in range(n):
            route = rnd.choice(ROUTES)
            rec = {
                "@timestamp": f"2026-11-24T07:{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1_000_000:06d}Z",
                "level": "info", "logger": "app.access", "message": "request handled", "service": "shop",
                "environment": "prod", "version": "1.4.2", "host": "web-1", "pid": 4242,
                "request_id": f"{rnd.getrandbits(128):032x}", "method": rnd.choice(["GET", "GET", "POST"]),
                "path": route.format(rnd.randint(1, 9999)), "route": route.replace("{}", "{id}"),
                "status": rnd.choice([200, 200, 200, 201, 404, 500]), "duration_ms": round(rnd.expovariate(1 / 40), 3),
                "client_ip": f"10.0.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
                "user_agent": rnd.choice(AGENTS), "bytes": rnd.randint(100, 90_000),
            }
            buf.append(orjson.dumps(rec))
            if len(buf) >= 10_000:
                fh.write(b"\n".join(buf) + b"\n")
                buf = []
        if buf:
            fh.write(b"\n".join(buf) + b"\n")


def make_combined(path: Path, n: int) -> None:
    rnd = random.Random(2)
    with open(path, "w") as fh:
        buf = []
        for i in range(n):
            route = rnd.choice(ROUTES).format(rnd.randint(1, 9999))
            buf.append(
                f'10.0.{rnd.randint(0, 255)}.{rnd.randint(1, 254)} - - [24/Nov/2026:07:{i // 60_000 % 60:02d}:'
                f'{i // 1000 % 60:02d} +0000] "{rnd.choice(["GET", "POST"])} {route} HTTP/1.1" '
                f'{rnd.choice([200, 200, 404, 500])} {rnd.randint(100, 90_000)} "https://shop.example/" '
                f'"{rnd.choice(AGENTS)}" {rnd.expovariate(1 / 0.04):.3f}\n'
            )
            if len(buf) >= 10_000:
                fh.write("".join(buf))
                buf = []
        fh.write("".join(buf))


# -- child side ------------------------------------------------------------------------------
def child(mode: str, path: str, fmt: str, workdir: str) -> None:
    t0 = time.perf_counter()
    lines = 0
    if mode == "naive":
        with open(path) as fh:
            for line in fh:
                json.loads(line)
                lines += 1
    else:
        from logpipe.config import Config, InputConfig, SinkConfig
        from logpipe.enrich import Enricher, load_scrubber
        from logpipe.memtune import quiet_gc, tune_malloc
        from logpipe.pipeline import NullSink, Pipeline
        from logpipe.ship.archive import ArchiveSink
        from logpipe.stages import PipelineStats
        from logpipe.tail.checkpoint import CheckpointStore
        from logpipe.tail.source import TailFront

        tune_malloc()  # as `logpipe tail` does (run_tail)
        quiet_gc()  # as the `logpipe tail` command does

        cfg = Config()
        cfg.inputs = [InputConfig(paths=[path], format=fmt)]
        cfg.pipeline.checkpoint_path = os.path.join(workdir, f"ck-{mode}-{fmt}.json")
        cfg.scrub.enabled = mode != "null-noscrub"
        stats = PipelineStats()
        store = CheckpointStore(cfg.pipeline.checkpoint_path, reset=True)
        sink = NullSink() if mode.startswith("null") else ArchiveSink(SinkConfig(url=f"file:{workdir}/archive-{fmt}"))
        front = TailFront(cfg, stats, store=store, once=True)
        pipe = Pipeline(cfg, front, sink, stats=stats, enricher=Enricher("bench", load_scrubber(cfg.scrub), cfg.scrub))
        if pipe.run() != 0:
            raise SystemExit(f"pipeline failed: {pipe.error}")
        store.close()
        lines = stats.delivered
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)  # the scrub helper, once it has exited
    cpu = ru.ru_utime + ru.ru_stime + ch.ru_utime + ch.ru_stime
    print(json.dumps({"lines": lines, "wall": wall, "cpu": cpu, "rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss would include the parent's peak inherited at fork)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(mode: str, path: Path, fmt: str, workdir: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path), fmt, str(workdir)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--child", nargs=4, metavar=("MODE", "PATH", "FORMAT", "WORKDIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    with tempfile.TemporaryDirectory(prefix="bench-tail-") as tmp:
        work = Path(tmp)
        jpath, cpath = work / "access.json.log", work / "access.combined.log"
        console.print(f"generating {args.lines:,} JSON and {args.lines:,} combined lines ...")
        make_json(jpath, args.lines)
        make_combined(cpath, args.lines)
        rows = []
        naive = run_child("naive", jpath, "json", work)
        rows.append(("naive readline + json.loads", "json", naive))
        for fmt, path in (("json", jpath), ("combined", cpath)):
            for mode in ("null", "archive", "null-noscrub"):
                label = "null sink, scrub off" if mode == "null-noscrub" else f"{mode} sink"
                rows.append((f"logpipe tail --once → {label}", fmt, run_child(mode, path, fmt, work)))

    table = Table(title=f"tail --once, {args.lines:,} lines per format (1 run each; CPU s = all threads "
                        "and the scrub helper process)")
    for col in ("what", "format", "lines", "wall s", "lines/s", "CPU s", "peak RSS MiB", "vs naive"):
        table.add_column(col, justify="right" if col not in ("what", "format") else "left")
    base = naive["lines"] / naive["wall"]
    for name, fmt, r in rows:
        rate = r["lines"] / r["wall"]
        table.add_row(name, fmt, f"{r['lines']:,}", f"{r['wall']:.2f}", f"{rate:,.0f}", f"{r['cpu']:.2f}",
                      f"{r['rss_mb']:.0f}", f"{rate / base:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
