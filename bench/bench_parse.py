"""Parser throughput per format vs. the naive loops (json.loads, one re.match per line).

    python bench/bench_parse.py [--lines 200000] [--batch 2000]

Lines are generated in memory (no I/O), so this measures parsing alone (rates are lines per
CPU second, best of two runs, so that other jobs on a shared machine distort them less): make_parser's batch
function for every format, plus the multiline joiner on a Python text log.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time

from rich.console import Console
from rich.table import Table

from logpipe.config import MultilineConfig
from logpipe.parse import make_parser
from logpipe.parse.clf import CLF_RE
from logpipe.parse.multiline import MultilineJoiner
from logpipe.parse.textfmt import ACCESS_TEXT_RE, PYTHON_RE, PYTHON_SHORT_RE, UVICORN_RE

PATHS = ["/api/v1/invoices/991", "/api/v1/users/7/profile", "/healthz", "/static/app.js?v=3", "/login"]
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def _lines(fmt: str, n: int) -> list[str]:
    rnd = random.Random(1)
    out = []
    for i in range(n):
        sec = i // 50
        hh, mm, ss = (sec // 3600) % 24, (sec // 60) % 60, sec % 60
        path = rnd.choice(PATHS)
        status = rnd.choice((200, 200, 200, 201, 404, 500))
        dur = rnd.random() * 0.3
        if fmt == "json":
            out.append(json.dumps({
                "@timestamp": f"2026-11-24T{hh:02d}:{mm:02d}:{ss:02d}.{i % 1000000:06d}Z", "level": "info",
                "logger": "app.access", "message": f"GET {path} {status}", "service": "billing-api",
                "environment": "prod", "host": "web-1", "pid": 4242, "request_id": f"r-{i}",
                "user_id": "u-7", "workspace_id": "ws-42", "method": "GET", "path": path,
                "status": status, "duration_ms": round(dur * 1000, 3), "client_ip": "10.1.2.3",
                "bytes": 1234}, separators=(",", ":")))
        elif fmt == "json_foreign":
            out.append(json.dumps({"time": f"2026-11-24 {hh:02d}:{mm:02d}:{ss:02d},{i % 1000:03d}",
                                   "levelname": "INFO", "msg": f"GET {path} {status}", "request_id": f"r-{i}",
                                   "status": status}))
        elif fmt == "python":
            out.append(f"2026-11-24 {hh:02d}:{mm:02d}:{ss:02d},{i % 1000:03d} - app.billing - INFO - "
                       f"create_invoice:{i % 500} - invoice created id={i} amount=1250 workspace=ws-42")
        elif fmt == "python_short":
            out.append(f"2026-11-24 {hh:02d}:{mm:02d}:{ss:02d},{i % 1000:03d} - INFO - "
                       f"invoice created id={i} amount=1250 workspace=ws-42 user=u-7")
        elif fmt == "access_text":
            out.append(f"10.1.{i % 256}.3 - GET {path} - Status: {status} - Time: {dur:.4f}s")
        elif fmt == "combined":
            out.append(f'10.1.{i % 256}.3 - - [24/Nov/2026:{hh:02d}:{mm:02d}:{ss:02d} +0000] "GET {path} HTTP/1.1" '
                       f'{status} {rnd.randint(100, 9999)} "https://example.com/" "{UA}" {dur:.3f}')
        elif fmt == "uvicorn":
            out.append(f'INFO:     10.1.{i % 256}.3:{40000 + i % 20000} - "GET {path} HTTP/1.1" {status} OK')
        else:
            out.append(f"plain text line number {i} with some words in it")
    return out


def _rate(fn, lines: list[str], batch: int) -> float:
    """Lines per CPU second (process time: fair on a machine shared with other jobs), best of 2."""
    best = 0.0
    for _ in range(2):
        t0 = time.process_time()
        for i in range(0, len(lines), batch):
            fn(lines[i:i + batch])
        best = max(best, len(lines) / max(1e-9, time.process_time() - t0))
    return best


def _naive_json(batch: list[str]) -> None:
    for line in batch:
        json.loads(line)


def _plain_re(pattern: re.Pattern[str]):
    def run(batch: list[str]) -> None:
        for line in batch:
            pattern.match(line)
    return run


def _grouped_re(pattern: re.Pattern[str]):
    def run(batch: list[str]) -> list[dict[str, str | None]]:
        out = []
        for line in batch:
            m = pattern.match(line)
            out.append(m.groupdict() if m else {"message": line})
        return out
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    n, batch = args.lines, args.batch

    regexes = {"python": PYTHON_RE, "python_short": PYTHON_SHORT_RE, "access_text": ACCESS_TEXT_RE,
               "combined": CLF_RE, "uvicorn": UVICORN_RE}

    table = Table(title=f"parse throughput, {n:,} lines, batches of {batch} (one core)")
    table.add_column("format")
    table.add_column("logpipe lines/CPU-s", justify="right")
    table.add_column("json.loads loop", justify="right")
    table.add_column("re.match loop", justify="right")
    table.add_column("re.match+groupdict", justify="right")
    table.add_column("ratio vs naive", justify="right")
    for fmt in ("json", "json_foreign", "python", "python_short", "access_text", "combined", "uvicorn", "raw"):
        lines = _lines(fmt, n)
        parser = make_parser("json" if fmt.startswith("json") else fmt, service="svc")
        ours = _rate(parser, lines, batch)
        row = [fmt, f"{ours:,.0f}", "", "", "", ""]
        if fmt.startswith("json"):
            base = _rate(_naive_json, lines, batch)
            row[2], row[5] = f"{base:,.0f}", f"{ours / base:.2f}×"
        elif fmt in regexes:
            plain = _rate(_plain_re(regexes[fmt]), lines, batch)
            grouped = _rate(_grouped_re(regexes[fmt]), lines, batch)
            row[3], row[4] = f"{plain:,.0f}", f"{grouped:,.0f}"
            row[5] = f"{ours / plain:.2f}× / {ours / grouped:.2f}×"
        table.add_row(*row)

    # Multiline joiner on Python text with a traceback every 100 lines.
    text_lines = _lines("python", n)
    tb = ["Traceback (most recent call last):", '  File "app.py", line 10, in create', "    charge()",
          "ValueError: card declined"]
    src: list[tuple[int, int, str]] = []
    off = 0
    for i, line in enumerate(text_lines):
        for t in [line, *(tb if i % 100 == 99 else [])]:
            src.append((off, off + len(t) + 1, t))
            off += len(t) + 1
    joiner = MultilineJoiner(MultilineConfig(), "python")
    t0 = time.process_time()
    for i in range(0, len(src), batch):
        joiner.feed(src[i:i + batch])
    joiner.flush()
    table.add_row("multiline join (python)", f"{len(src) / (time.process_time() - t0):,.0f}", "", "", "", "")
    # JSON as the pipeline runs it: joiner (pass-through) then parser, on (start, end, text) lines.
    lines = _lines("json", n)
    offs = [(i * 300, i * 300 + 300, t) for i, t in enumerate(lines)]
    parser = make_parser("json", service="svc")
    jj = MultilineJoiner(MultilineConfig(), "json")
    t0 = time.process_time()
    for i in range(0, n, batch):
        parser([e[2] for e in jj.feed(offs[i:i + batch])])
    table.add_row("json join+parse", f"{n / (time.process_time() - t0):,.0f}", "", "", "", "")
    Console(width=150).print(table)
    print("ratio vs naive: json = logpipe / json.loads loop; text = logpipe / re.match loop, logpipe / groupdict loop")


if __name__ == "__main__":
    main()
