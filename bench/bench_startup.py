"""Benchmark: start-up of `logpipe --version` and `logpipe tail --help` over a bare interpreter.

    python bench/bench_startup.py            # median of 10 runs each
    python bench/bench_startup.py --runs 20

Each run is a fresh `python -m logpipe ...` child; reported: median wall time of each
command, of `python -c pass`, and the difference (the target is at most 0.15 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 0.15


def median_wall(argv: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    py = sys.executable
    bare = median_wall([py, "-c", "pass"], args.runs, env)
    print(f"python -c pass: {bare:.3f} s (median of {args.runs})")
    worst = 0.0
    for cmd in (["--version"], ["tail", "--help"]):
        t = median_wall([py, "-m", "logpipe", *cmd], args.runs, env)
        worst = max(worst, t - bare)
        print(f"logpipe {' '.join(cmd)}: {t:.3f} s, {t - bare:+.3f} s over bare (target <= {TARGET_S} s)")
    return 0 if worst <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
