"""Cost of the tailer's PII guard per raw line: per-line vs batch, vs a naive two-`re.sub` scrub.

    python bench/bench_scrub.py [--lines 20000] [--batch 1000]

Lines are logpipe JSON access records (~300-500 bytes) generated in memory. Workloads: all clean,
1% dirty (a secret somewhere in the message), all dirty. Methods: `Scrubber.suspicious_bytes`
per line, `Scrubber.suspicious_many` per batch (both are only the guard: a flagged line then
goes through `scrub_record`), guard + `scrub_record` of the flagged lines' parse, and the
naive alternative: two `re.sub` calls (emails, then card-like digit runs) on
every line (the usual first attempt). Times are CPU seconds, best of five, so a loaded machine distorts them less.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable

import orjson
from rich.console import Console
from rich.table import Table

from logpipe.scrub import Scrubber

UAS = ["Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0", "curl/8.4.0", "python-httpx/0.25.1",
       "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1"]
SECRETS = ["contact alice@example.com", "card 4111 1111 1111 1111", "Authorization: Bearer abcDEF123456ghiJKL",
           "GET /login?password=plainPW456", "aws AKIAIOSFODNN7EXAMPLE",
           "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6y"]

# The naive scrubber many services start with: one re.sub for emails, one for card-like digit runs,
# on every line (it covers only two of the rules, and has no Luhn check, so it is a lower bound).
NAIVE_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+\.[\w.\-]+")
NAIVE_CARD = re.compile(r"\b(?:\d[ \-]?){13,19}\b")


def naive_scrub(line: str) -> str:
    return NAIVE_CARD.sub("[REDACTED:card]", NAIVE_EMAIL.sub("[REDACTED:email]", line))


def make_lines(n: int, dirty_share: float, short: bool = False, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    uas = UAS[1:3] if short else UAS
    out = []
    for i in range(n):
        path = f"/api/v1/items/{rnd.randrange(10**5)}"
        msg = f"GET {path} 200"
        if rnd.random() < dirty_share:
            msg += " " + rnd.choice(SECRETS)
        rec = {"@timestamp": f"2026-11-24T07:{i // 60 % 60:02d}:{i % 60:02d}.{rnd.randrange(10**6):06d}Z",
               "level": "info", "logger": "logpipe.access", "message": msg, "service": "billing-api",
               "environment": "prod", "version": "1.4.2", "host": "web-1", "pid": 4242,
               "request_id": rnd.randbytes(4 if short else 8).hex(), "user_id": f"u-{i % 97}", "workspace_id": "ws-42",
               "method": "GET", "path": path, "route": "/api/v1/items/{id}", "status": 200,
               "duration_ms": round(rnd.random() * 100, 1), "client_ip": f"10.1.2.{i % 250}",
               "user_agent": rnd.choice(uas), "bytes": rnd.randrange(10**5)}
        out.append(orjson.dumps(rec))
    return out


def cpu_best(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    sc = Scrubber()
    n, size = args.lines, args.batch
    sc.suspicious_many(make_lines(size, 0.0))  # warm up: numpy import, prefilter table, scratch arrays

    def per_line(lines: list[bytes]) -> None:
        check = sc.suspicious_bytes
        for line in lines:
            check(line)

    def batched(lines: list[bytes]) -> None:
        for i in range(0, len(lines), size):
            sc.suspicious_many(lines[i : i + size])

    def guard_and_scrub(lines: list[bytes]) -> None:
        for i in range(0, len(lines), size):
            chunk = lines[i : i + size]
            for j in sc.suspicious_indices(chunk):
                sc.scrub_record(orjson.loads(chunk[j]))

    def naive(lines: list[str]) -> None:
        for line in lines:
            naive_scrub(line)

    table = Table(title=f"PII guard, {n:,} lines, batches of {size}")
    for col in ("workload", "bytes/line", "method", "µs/line", "vs naive 2×re.sub", "vs per-line guard"):
        table.add_column(col, justify="right" if col not in ("workload", "method") else "left")
    for workload, share, short in (("clean, short", 0.0, True), ("clean", 0.0, False), ("1% dirty", 0.01, False),
                                   ("all dirty", 1.0, False)):
        lines = make_lines(n, share, short)
        texts = [x.decode() for x in lines]
        avg = sum(map(len, lines)) / n
        t_naive = cpu_best(lambda texts=texts: naive(texts)) / n * 1e6
        t_line = cpu_best(lambda lines=lines: per_line(lines)) / n * 1e6
        rows = [("suspicious_bytes (per line)", t_line), ("suspicious_many (batch)", None),
                ("suspicious_indices + scrub_record", None), ("naive: 2× re.sub per line", t_naive)]
        rows[1] = (rows[1][0], cpu_best(lambda lines=lines: batched(lines)) / n * 1e6)
        rows[2] = (rows[2][0], cpu_best(lambda lines=lines: guard_and_scrub(lines)) / n * 1e6)
        for method, us in rows:
            assert us is not None
            table.add_row(workload, f"{avg:.0f}", method, f"{us:.2f}", f"{t_naive / us:.1f}×", f"{t_line / us:.1f}×")
        table.add_section()
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
