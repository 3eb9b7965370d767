"""Benchmark: `logpipe tail --once` as the CLI runs it (metrics tap included) on JSON and combined
access logs, to the `null:` and archive sinks, against a naive `for line in f: json.loads(line)`
loop and, with --fluent-bit, Fluent Bit on the same files in the same run.

    python bench/bench_tail.py                         # 1,000,000 lines per format
    python bench/bench_tail.py --lines 200000          # smaller, for a loaded machine
    python bench/bench_tail.py --fluent-bit /path/to/fluent-bit --reps 5

Every measurement is a fresh process (the command a user types); reported from its wait4()
rusage: wall time, lines/s, CPU (user+sys of the whole process and the children it waited for,
all threads, start-up included) With --reps N the cases run interleaved N times
and medians are shown. Fluent Bit runs with the configuration files in bench/fluent-bit/
(in_tail with exit_on_eof, the json or a regex parser, out_null or out_file); the lines its
file output holds are counted (a short count fails the run). Fluent Bit's wall time includes its
fixed one-second shutdown timer after end of file, which its own row on an empty file shows; so
lines/s are taken over "busy s", the time to the process's last CPU use (sampled from /proc),
for every row alike.
With --fluent-bit, a second table sets the issue's targets against the measured ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLUENT_BIT_CONF = HERE / "fluent-bit"

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


# -- measured commands -------------------------------------------------------------------------
def naive_loop(path: str) -> None:
    lines = 0
    with open(path) as fh:
        for line in fh:
            json.loads(line)
            lines += 1
    print(lines)


def _cpu_ticks(pid: int) -> int | None:
    """utime+stime of a running process, in clock ticks (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def _watch_busy(pid: int, t0: float, done: threading.Event, out: dict[str, float]) -> None:
    """Record when the process last used CPU: its end of work, before any idle shutdown wait
    (Fluent Bit sleeps on a fixed timer after end of file). Sampled every 5 ms."""
    last = -1
    while not done.is_set():
        ticks = _cpu_ticks(pid)
        if ticks is None:
            break
        if ticks != last:
            last, out["busy"] = ticks, time.perf_counter() - t0
        done.wait(0.005)


def measure(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict:
    """Run argv to completion: wall, wall to its last CPU use ("busy"), and CPU from its own
    wait4() rusage (which includes the children it waited for)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    outs: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda k=k, f=f: outs.__setitem__(k, f.read()))
               for k, f in (("out", proc.stdout), ("err", proc.stderr))]
    busy: dict[str, float] = {}
    done = threading.Event()
    watcher = threading.Thread(target=_watch_busy, args=(proc.pid, t0, done, busy))
    for t in (*readers, watcher):
        t.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in (*readers, watcher):
        t.join()
    return {"wall": wall, "busy": min(busy.get("busy", wall), wall), "cpu": ru.ru_utime + ru.ru_stime,
            "out": outs["out"].decode(errors="replace"), "err": outs["err"].decode(errors="replace"),
            "code": proc.returncode}


class Case:
    """One row: a command and how to count the lines it handled."""

    def __init__(self, name: str, fmt: str, argv: list[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None, lines: int = 0, output: Path | None = None) -> None:
        self.name, self.fmt, self.argv, self.env, self.cwd, self.lines = name, fmt, argv, env, cwd, lines
        self.output = output  # a file whose lines are the records delivered (checked against `lines`)
        self.runs: list[dict] = []

    def run(self) -> None:
        r = measure(self.argv, self.env, self.cwd)
        if r["code"] != 0:
            raise SystemExit(f"{self.name}: exit {r['code']}\n{r['err'][-2000:]}")
        r["lines"] = self.count(r)
        if self.output is not None:
            if r["lines"] != self.lines:
                raise SystemExit(f"{self.name}: {r['lines']:,} of {self.lines:,} lines in {self.output}")
            self.output.unlink()
        self.runs.append(r)

    def count(self, r: dict) -> int:
        if self.output is not None:
            return count_lines(self.output)
        m = re.search(r"logpipe tail: ([\d,]+) lines read", r["err"])
        if m:
            return int(m.group(1).replace(",", ""))
        if r["out"].strip().isdigit():
            return int(r["out"].strip())
        return self.lines

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)


def logpipe_case(name: str, fmt: str, path: Path, work: Path, sink: str, *flags: str,
                 env: dict[str, str] | None = None) -> Case:
    tag = f"{fmt}-{abs(hash((name, sink, flags))) % 10**8}"
    argv = [sys.executable, "-m", "logpipe", "tail", str(path), "--once", "--format", fmt, "--sink", sink,
            "--checkpoint", str(work / f"ck-{tag}.json"), "--reset-checkpoint", *flags]
    return Case(name, fmt, argv, cwd=work, env=dict(os.environ, **env) if env else None)


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def fluent_bit_case(name: str, fmt: str, binary: str, conf: str, path: Path, work: Path, n: int) -> Case:
    out = work / f"fb-out-{fmt}-{conf.removesuffix('.conf')}"
    out.mkdir(exist_ok=True)
    env = dict(os.environ, BENCH_INPUT=str(path), BENCH_OUT_DIR=str(out), BENCH_PARSERS=str(FLUENT_BIT_CONF / "parsers.conf"))
    written = out / "out.ndjson" if "file" in conf else None
    return Case(name, fmt, [binary, "-q", "-c", str(FLUENT_BIT_CONF / conf)], env=env, cwd=work, lines=n,
                output=written)


EMPTY_ROW = "Fluent Bit on an empty file (start-up + shutdown timer)"

#: The issue's targets: (what, logpipe row, Fluent Bit row, measure, bound, the better side).
TARGETS = [
    ("JSON → null, scrub on: CPU per line", ("json", "logpipe → null:, scrub on"),
     ("json", "Fluent Bit tail + json → null"), "cpu_per_line", 0.33, "≤"),
    ("JSON → null, scrub on: lines/s", ("json", "logpipe → null:, scrub on"),
     ("json", "Fluent Bit tail + json → null"), "lines_per_s", 3.0, "≥"),
    ("combined → null, scrub on: CPU per line", ("combined", "logpipe → null:, scrub on"),
     ("combined", "Fluent Bit tail + regex → null"), "cpu_per_line", 0.33, "≤"),
    ("JSON → archive vs Fluent Bit → file: lines/s", ("json", "logpipe → archive (gzip NDJSON)"),
     ("json", "Fluent Bit tail + json → file"), "lines_per_s", 2.0, "≥"),
    ("metrics tap: CPU with it / without it", ("json", "logpipe → null:, scrub on"),
     ("json", "logpipe → null:, scrub on, --no-metrics (tap off)"), "cpu_per_line", 1.10, "≤"),
]


def target_table(cases: list[Case]):  # noqa: ANN201 - a rich Table, imported lazily
    from rich.table import Table

    rows = {(c.fmt, c.name): c for c in cases if c.runs}

    def value(c: Case, measure: str) -> float:
        lines = max(c.median("lines"), 1)
        if measure == "cpu_per_line":
            return c.median("cpu") / lines * 1e6
        return lines / max(c.median("busy"), 1e-3)

    table = Table(title="issue 14's targets, ratios from this run (logpipe ÷ the comparison); lines/s over "
                        "the time to each process's last CPU use (\"busy s\"), which leaves out Fluent Bit's idle "
                        "shutdown timer: the stricter comparison for logpipe")
    for col in ("target", "logpipe", "comparison", "ratio", "bound", "met"):
        table.add_column(col, justify="left" if col == "target" else "right")
    for what, ours, theirs, measure, bound, side in TARGETS:
        if ours not in rows or theirs not in rows:
            continue
        a, b = value(rows[ours], measure), value(rows[theirs], measure)
        ratio = a / b
        met = ratio <= bound if side == "≤" else ratio >= bound
        unit = "µs/line" if measure == "cpu_per_line" else "lines/s"
        table.add_row(what, f"{a:,.2f} {unit}", f"{b:,.2f} {unit}", f"{ratio:.2f}×", f"{side} {bound:.2f}×",
                      "yes" if met else "NO")
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=1, help="interleaved repetitions; medians are shown")
    ap.add_argument("--fluent-bit", metavar="PATH", help="a fluent-bit binary to run on the same files")
    ap.add_argument("--only", choices=("json", "combined"), help="one format only")
    ap.add_argument("--cases", help="comma-separated substrings: run only the rows whose name has one")
    ap.add_argument("--naive-child", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.naive_child:
        naive_loop(args.naive_child)
        return

    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    with tempfile.TemporaryDirectory(prefix="bench-tail-") as tmp:
        work = Path(tmp)
        jpath, cpath = work / "access.json.log", work / "access.combined.log"
        console.print(f"generating {args.lines:,} lines per format ...")
        make_json(jpath, args.lines)
        make_combined(cpath, args.lines)
        cases: list[Case] = []
        if args.only != "combined":
            cases += [
                Case("naive readline + json.loads", "json", [sys.executable, __file__, "--naive-child", str(jpath)]),
                logpipe_case("logpipe → null:, scrub on", "json", jpath, work, "null:"),
                logpipe_case("logpipe → null:, scrub on, Python road (LOGPIPE_CORE=off)", "json", jpath, work,
                             "null:", env={"LOGPIPE_CORE": "off"}),
                logpipe_case("logpipe → null:, --no-scrub", "json", jpath, work, "null:", "--no-scrub"),
                logpipe_case("logpipe → null:, scrub on, --no-metrics (tap off)", "json", jpath, work, "null:",
                             "--no-metrics"),
                logpipe_case("logpipe → archive (gzip NDJSON)", "json", jpath, work, f"file:{work}/archive"),
            ]
        if args.only != "json":
            cases += [
                logpipe_case("logpipe → null:, scrub on", "combined", cpath, work, "null:"),
                logpipe_case("logpipe → null:, scrub on, Python road (LOGPIPE_CORE=off)", "combined", cpath, work,
                             "null:", env={"LOGPIPE_CORE": "off"}),
                logpipe_case("logpipe → null:, scrub on, --no-metrics (tap off)", "combined", cpath, work, "null:",
                             "--no-metrics"),
            ]
        if args.fluent_bit:
            fb = args.fluent_bit
            if args.only != "combined":
                cases += [fluent_bit_case("Fluent Bit tail + json → null", "json", fb, "json-null.conf", jpath, work,
                                          args.lines),
                          fluent_bit_case("Fluent Bit tail + json → file", "json", fb, "json-file.conf", jpath, work,
                                          args.lines)]
            if args.only != "json":
                cases.append(fluent_bit_case("Fluent Bit tail + regex → null", "combined", fb, "combined-null.conf",
                                             cpath, work, args.lines))
            empty = work / "empty.log"
            empty.touch()
            cases.append(fluent_bit_case(EMPTY_ROW, "json", fb,
                                         "json-null.conf", empty, work, 0))
        if args.cases:
            wanted = [w.strip() for w in args.cases.split(",")]
            cases = [c for c in cases if any(w in c.name for w in wanted)]
        for rep in range(args.reps):
            for case in cases:
                console.print(f"[{rep + 1}/{args.reps}] {case.fmt:8} {case.name}", highlight=False)
                case.run()

    table = Table(title=f"tail --once, {args.lines:,} lines per format, medians of {args.reps} interleaved run(s); "
                        "CPU = user+sys of the whole process (all threads, start-up, waited-for children)")
    for col in ("what", "format", "lines", "wall s", "busy s", "lines/s (busy)", "CPU s", "CPU µs/line"):
        table.add_column(col, justify="right" if col not in ("what", "format") else "left")
    for c in cases:
        lines = c.median("lines")
        table.add_row(c.name, c.fmt, f"{lines:,.0f}", f"{c.median('wall'):.2f}", f"{c.median('busy'):.2f}",
                      f"{lines / c.median('busy'):,.0f}",
                      f"{c.median('cpu'):.2f}", f"{c.median('cpu') / max(lines, 1) * 1e6:.2f}")
    console.print(table)
    if args.fluent_bit:
        console.print(target_table(cases))


if __name__ == "__main__":
    main()
