"""Metrics benchmark: the tap's cost inside the pipeline, and `logpipe report` vs a naive baseline.

    python bench/bench_metrics.py                 # 1,000,000 records / lines
    python bench/bench_metrics.py --lines 200000  # smaller run on a busy machine

Part 1 (tap): `logpipe tail --once` (run_tail: archive sink, default scrubbing) on JSON
access lines, metrics off vs metrics on: the tap's share of tail time (target ≤ 15 %). Plus per-record costs of the alternatives the design notes measured:
`ddsketch` add per record and prometheus-client `Histogram.observe` per record, against our
batch sketch insert and the whole tap.observe on pre-parsed records.

Part 2 (report): combined-format lines; `build_report` against a baseline that parses with the
same parser, keeps every duration in per-route Python lists and calls numpy.percentile per
route. Each variant runs in its own process so peak RSS is comparable; variants are
interleaved and repeated, and compared by CPU time (wall time on a shared machine mostly
measures the neighbours).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

BATCH = 2000


def _write_inputs(n: int, tmp: Path) -> tuple[Path, Path]:
    from logpipe.metrics.synth import combined_lines, json_lines, traffic

    t = traffic(n, seed=1)
    jpath, cpath = tmp / "access.json.log", tmp / "access.combined.log"
    jpath.write_text("\n".join(json_lines(t)) + "\n")
    (tmp / "tiny.json.log").write_text("\n".join(json_lines(t)[:10]) + "\n")  # startup cost only
    cpath.write_text("\n".join(combined_lines(t)) + "\n")
    return jpath, cpath


# -- variants (each runs in a child process: `--variant NAME FILE`) ---------------------------
def v_tail(path: str, with_tap: bool) -> dict:
    """`logpipe tail --once` as the CLI runs it (archive sink, default scrubbing), tap on or off."""
    import contextlib
    import io

    from logpipe.commands.tail import run_tail

    work = Path(tempfile.mkdtemp(prefix="tail-tap-" if with_tap else "tail-notap-", dir=Path(path).parent))
    cfg = work / "logpipe.toml"
    # metrics off entirely: no interval records, no alerts, no endpoint -> start_metrics returns None
    cfg.write_text("[metrics]\ninterval_s = 0.0\n[alerts]\nenabled = false\n" if not with_tap else
                   "[metrics]\ninterval_s = 60.0\naddr = '127.0.0.1:0'\n")
    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stderr(io.StringIO()):
        code = run_tail((path,), sink_url=f"file:{work / 'archive'}", fmt="json", config_file=str(cfg),
                        once=True, checkpoint=str(work / "cp.json"))
    assert code == 0
    return {"seconds": time.process_time() - c0, "wall": time.perf_counter() - t0}


def v_report(path: str) -> dict:
    from logpipe.metrics.report import build_report

    t0, c0 = time.perf_counter(), time.process_time()
    doc = build_report([path], fmt="combined")
    return {"seconds": time.process_time() - c0, "wall": time.perf_counter() - t0,
            "n": doc["overall"]["count"], "p95": doc["overall"]["p95_ms"],
            "routes": len(doc["routes"])}


def v_baseline(path: str) -> dict:
    """Lines -> same parser -> per-route Python lists -> numpy.percentile per route."""
    from logpipe.metrics.routes import normalise_path
    from logpipe.parse import make_parser

    t0, c0 = time.perf_counter(), time.process_time()
    parse = make_parser("combined")
    per_route: dict[tuple[str, str], list[float]] = {}
    cache: dict[str, str] = {}
    everything: list[float] = []
    texts: list[str] = []

    def flush() -> None:
        for r in parse(texts):
            m = r.get("method")
            d = r.get("duration_ms")
            if m is None or d is None:
                continue
            p = r.get("path", "")
            route = cache.get(p)
            if route is None:
                route = cache[p] = normalise_path(p)
            per_route.setdefault((m, route), []).append(d)
            everything.append(d)
        texts.clear()

    with open(path, encoding="utf-8", errors="replace", newline="\n") as fh:  # what a user would write
        for line in fh:
            texts.append(line.rstrip("\n"))
            if len(texts) >= 4096:
                flush()
    flush()
    out = {k: np.percentile(np.array(v), [50, 90, 95, 99]) for k, v in per_route.items()}
    p95 = float(np.percentile(np.array(everything), 95))
    return {"seconds": time.process_time() - c0, "wall": time.perf_counter() - t0, "n": len(everything),
            "p95": p95, "routes": len(out)}


def v_micro(path: str) -> dict:
    """Per-record costs on pre-parsed records (no parsing in the timed part)."""
    import orjson
    from ddsketch import DDSketch
    from prometheus_client import CollectorRegistry, Histogram

    from logpipe.metrics.sketch import LogSketch
    from logpipe.metrics.tap import LogMetricsTap

    with open(path, "rb") as fh:
        records = [orjson.loads(line) for line in fh]
    n = len(records)
    durs = np.array([r["duration_ms"] for r in records])
    batches = [records[i:i + BATCH] for i in range(0, n, BATCH)]
    dbatches = [durs[i:i + BATCH] for i in range(0, n, BATCH)]
    res = {}

    tap = LogMetricsTap(interval_s=60)
    t0 = time.process_time()
    for b in batches:
        tap.observe(b)
    res["tap.observe (whole tap, per batch)"] = time.process_time() - t0

    sk = LogSketch()
    t0 = time.process_time()
    for b in dbatches:
        sk.add_batch(b)
    res["LogSketch.add_batch (numpy, per batch)"] = time.process_time() - t0

    dd = DDSketch(relative_accuracy=0.005)
    t0 = time.process_time()
    for b in dbatches:
        for v in b.tolist():
            dd.add(v)
    res["ddsketch DDSketch.add (per record)"] = time.process_time() - t0

    hist = Histogram("bench_seconds", "bench", ["route"], registry=CollectorRegistry())
    child = hist.labels(route="/x")
    t0 = time.process_time()
    for b in dbatches:
        for v in b.tolist():
            child.observe(v / 1000.0)
    res["prometheus Histogram.observe (per record)"] = time.process_time() - t0

    q = [0.5, 0.95, 0.99]
    exact = np.quantile(durs, q, method="lower")
    res["_err_logsketch"] = max(abs(a - b) / b for a, b in zip(sk.quantiles(q), exact, strict=True))
    res["_err_ddsketch"] = max(abs(dd.get_quantile_value(x) - b) / b for x, b in zip(q, exact, strict=True))
    res["_bytes_logsketch"] = sk.bucket_count * 8
    res["n"] = n
    return res


VARIANTS = {
    "tail": lambda p: v_tail(p, False),
    "tail+tap": lambda p: v_tail(p, True),
    "report": v_report,
    "baseline": v_baseline,
    "micro": v_micro,
}


def _peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss survives exec on Linux, so it would include the parent)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_once(name: str, path: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--variant", name, path], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best(runs: list[dict]) -> dict:
    """Best of several fresh processes by CPU time (the machine is shared: wall time mostly
    measures the neighbours; the minimum CPU time is the signal)."""
    if "seconds" in runs[0]:
        best = dict(min(runs, key=lambda r: r["seconds"]))
    else:  # per-measurement minimum (micro timings)
        best = {k: min(r[k] for r in runs) for k in runs[0]}
    best["max_rss_mb"] = max(r["max_rss_mb"] for r in runs)
    return best


def _interleaved(jobs: dict[str, tuple[str, str]], repeat: int) -> dict[str, dict]:
    """Run every variant once per round, `repeat` rounds (A B C A B C ...), so load spikes on
    a shared machine hit all variants alike."""
    runs: dict[str, list[dict]] = {k: [] for k in jobs}
    for _ in range(repeat):
        for key, (variant, path) in jobs.items():
            runs[key].append(_run_once(variant, path))
    return {k: _best(v) for k, v in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per variant; the best is shown")
    ap.add_argument("--variant", nargs=2, metavar=("NAME", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        name, path = args.variant
        res = VARIANTS[name](path)
        res["max_rss_mb"] = _peak_rss_mb()
        print(json.dumps(res))
        return

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        jpath, cpath = _write_inputs(args.lines, Path(tmp))
        console.print(f"{args.lines:,} access records/lines generated; best of {args.repeat} runs each")
        tiny = str(Path(tmp) / "tiny.json.log")
        res = _interleaved({
            "tail": ("tail", str(jpath)), "tail+tap": ("tail+tap", str(jpath)), "micro": ("micro", str(jpath)),
            "tail0": ("tail", tiny), "tail0+tap": ("tail+tap", tiny),
            "report": ("report", str(cpath)), "baseline": ("baseline", str(cpath)),
        }, args.repeat)
        base, with_tap, micro, rep, naive = (res[k] for k in ("tail", "tail+tap", "micro", "report", "baseline"))
        start0, start_tap = res["tail0"]["seconds"], res["tail0+tap"]["seconds"]

    n = args.lines
    t1 = Table(title=f"1. logpipe tail --once on {n:,} JSON access lines (archive sink, scrubbing on)")
    for col in ("run", "CPU s", "wall s", "lines/s (CPU)", "µs/record", "peak RSS MB"):
        t1.add_column(col, justify="right" if col != "run" else "left")
    for name, r in (("tail --once, metrics off", base), ("tail --once, metrics tap + /metrics", with_tap)):
        t1.add_row(name, f"{r['seconds']:.2f}", f"{r['wall']:.2f}", f"{n / r['seconds']:,.0f}",
                   f"{r['seconds'] / n * 1e6:.2f}",
                   f"{r['max_rss_mb']:.0f}")
    overhead = with_tap["seconds"] / base["seconds"] - 1
    marginal = (with_tap["seconds"] - start_tap) / (base["seconds"] - start0) - 1
    t1.add_row("startup (10 lines), metrics off / on", f"{start0:.2f} / {start_tap:.2f}", "", "", "", "")
    t1.caption = (f"tap adds {overhead:+.1%} to tail --once time; {marginal:+.1%} per record once the one-off "
                  f"startup (numpy, prometheus-client imports, HTTP server) is taken out (target ≤ +15%)")
    console.print(t1)

    t2 = Table(title=f"2. per-record cost on {micro['n']:,} pre-parsed records (batches of {BATCH})")
    for col in ("what", "CPU s", "µs/record", "vs LogSketch batch"):
        t2.add_column(col, justify="right" if col != "what" else "left")
    ref = micro["LogSketch.add_batch (numpy, per batch)"]
    for k, v in micro.items():
        if k.startswith("_") or k in ("n", "max_rss_mb"):
            continue
        t2.add_row(k, f"{v:.3f}", f"{v / micro['n'] * 1e6:.3f}", f"{v / ref:.1f}x")
    t2.caption = (f"max relative error p50/p95/p99: LogSketch {micro['_err_logsketch']:.3%}, "
                  f"ddsketch {micro['_err_ddsketch']:.3%}; LogSketch state {micro['_bytes_logsketch']:,} bytes")
    console.print(t2)

    t3 = Table(title=f"3. logpipe report vs lists + numpy.percentile ({n:,} combined lines)")
    for col in ("run", "CPU s", "wall s", "lines/s (CPU)", "peak RSS MB", "overall p95 ms", "routes"):
        t3.add_column(col, justify="right" if col != "run" else "left")
    for name, r in (("logpipe report (source + parser + tap)", rep), ("baseline: lists + numpy.percentile", naive)):
        t3.add_row(name, f"{r['seconds']:.2f}", f"{r['wall']:.2f}", f"{n / r['seconds']:,.0f}", f"{r['max_rss_mb']:.0f}",
                   f"{r['p95']:.1f}", str(r["routes"]))
    t3.caption = (f"report/baseline CPU time ratio {rep['seconds'] / naive['seconds']:.2f}; "
                  f"peak RSS ratio {rep['max_rss_mb'] / naive['max_rss_mb']:.2f}")
    console.print(t3)


if __name__ == "__main__":
    main()
