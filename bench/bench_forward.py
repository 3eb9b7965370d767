"""Records/s delivered to a forward-protocol server: logpipe's ForwardSink (PackedForward,
acks) against fluent-logger's FluentSender.emit loop, on the same records, same run.

The receiver (tests/fluentd_receiver.py) runs in its own process, counting events, so its
decoding does not share the clients' GIL. Batch 10,000 records per send(); ForwardSink cuts
them into chunks of at most 2,000 records per tag (its default) with acks pipelined. The dict
road packs records with ormsgpack, the core road (`send_ndjson`) natively. ForwardSink's rate counts only acknowledged
records (send() returns after the acks); fluent-logger cannot ask for acks, so its clock
stops when the receiver has counted every record it sent.

    python bench/bench_forward.py --records 200000 --batch 10000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fluent.sender import FluentSender
from rich.console import Console
from rich.table import Table

from logpipe.config import SinkConfig
from logpipe.ship.forward import ForwardSink

ROOT = Path(__file__).resolve().parents[1]


class Receiver:
    """tests/fluentd_receiver.py in a subprocess, driven over stdin/stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "fluentd_receiver.py"), "--count-only"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()  # type: ignore[union-attr]
        if not line or line[0] != "READY":
            raise RuntimeError(f"receiver did not start: {line}")
        self.port = int(line[1])

    def count(self) -> int:
        self.proc.stdin.write("count\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return int(self.proc.stdout.readline())  # type: ignore[union-attr]

    def wait_for(self, n: int, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"receiver got {self.count()} of {n}")
            time.sleep(0.005)

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def make_records(n: int) -> list[dict[str, Any]]:
    """~300-byte records shaped like the tailer's output."""
    services = ("api", "worker", "billing")
    return [{
        "@timestamp": f"2026-11-24T07:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1_000_000:06d}Z",
        "level": "error" if i % 50 == 0 else "info",
        "logger": "app.handlers",
        "message": f"request handled id={i} path=/api/v1/items/{i % 997} in {i % 300} ms",
        "service": services[i % 3],
        "environment": "production",
        "host": "web-7f9c",
        "request_id": f"{i:032x}",
        "workspace_id": f"ws-{i % 40}",
        "log_file": "/var/log/app/app.log",
        "log_offset": i * 300,
        "_id": f"{i:040x}",
    } for i in range(n)]


def bench_forward_sink(rx: Receiver, records: list[dict[str, Any]], batch: int,
                       compress: str, ndjson: bool = False) -> tuple[float, float]:
    """(wall seconds, client CPU seconds): CPU is the steadier number on a shared machine.
    `ndjson`: the core road — the batches arrive as the NDJSON the native core rendered while
    parsing (made here before the clock) and go through `send_ndjson` (native PackedForward)."""
    from logpipe.ship.stdout import encode_ndjson

    sink = ForwardSink(SinkConfig(url=f"forward://127.0.0.1:{rx.port}", compress=compress))
    sink.json_clean_input = True  # as the pipeline sets it: records of plain JSON types
    batches = [records[i:i + batch] for i in range(0, len(records), batch)]
    blobs = [encode_ndjson(b)[0] for b in batches] if ndjson else []
    base = rx.count()
    cpu = time.process_time()
    start = time.perf_counter()
    for i, part in enumerate(batches):  # each call returns once every chunk is acked
        if ndjson:
            sink.send_ndjson(blobs[i], len(part))
        else:
            sink.send(part)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    sink.close()
    assert rx.count() - base == len(records), "receiver count mismatch"
    return elapsed, cpu


def bench_fluent_logger(rx: Receiver, records: list[dict[str, Any]]) -> tuple[float, float]:
    sender = FluentSender("logpipe", host="127.0.0.1", port=rx.port, nanosecond_precision=True,
                          bufmax=64 * 1024 * 1024)
    base = rx.count()
    cpu = time.process_time()
    start = time.perf_counter()
    emit = sender.emit_with_time
    now = time.time()
    for rec in records:
        emit(rec["service"], now, rec)
    sender.close()
    cpu = time.process_time() - cpu
    rx.wait_for(base + len(records))
    return time.perf_counter() - start, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=10_000, help="records per ForwardSink.send()")
    ap.add_argument("--fluent-logger-records", type=int, default=0,
                    help="records for the (slow) fluent-logger loop; default: same as --records")
    ap.add_argument("--compress", choices=["", "gzip"], default="")
    ap.add_argument("--repeat", type=int, default=3, help="runs per client, best one reported "
                    "(the machine is shared: the best run is the least disturbed)")
    args = ap.parse_args()
    records = make_records(args.records)
    fl_records = records[:args.fluent_logger_records or args.records]
    rx = Receiver()
    try:
        bench_forward_sink(rx, records[: min(len(records), 20_000)], args.batch, args.compress)  # warm-up
        t_sink = t_fl = cpu_sink = cpu_fl = t_nd = cpu_nd = float("inf")
        for _ in range(max(1, args.repeat)):  # interleaved, so both see the same machine load
            wall, cpu = bench_forward_sink(rx, records, args.batch, args.compress)
            t_sink, cpu_sink = min(t_sink, wall), min(cpu_sink, cpu)
            wall, cpu = bench_forward_sink(rx, records, args.batch, args.compress, ndjson=True)
            t_nd, cpu_nd = min(t_nd, wall), min(cpu_nd, cpu)
            wall, cpu = bench_fluent_logger(rx, fl_records)
            t_fl, cpu_fl = min(t_fl, wall), min(cpu_fl, cpu)
    finally:
        rx.close()
    rate_sink = len(records) / t_sink
    rate_fl = len(fl_records) / t_fl
    table = Table(title=f"forward protocol delivery to a local receiver "
                        f"({len(records):,} records, best of {max(1, args.repeat)})")
    for col in ("client", "mode", "records", "batch", "seconds", "client CPU µs/rec", "records/s",
                "vs fluent-logger"):
        table.add_column(col, justify="right" if col not in ("client", "mode") else "left")
    mode = "CompressedPackedForward" if args.compress else "PackedForward"
    table.add_row("logpipe ForwardSink", f"{mode} + ack (dict road)", f"{len(records):,}", f"{args.batch:,}",
                  f"{t_sink:.2f}", f"{cpu_sink / len(records) * 1e6:.2f}", f"{rate_sink:,.0f}",
                  f"{rate_sink / rate_fl:.1f}x")
    rate_nd = len(records) / t_nd
    table.add_row("logpipe ForwardSink.send_ndjson", f"{mode} + ack (native, core road)", f"{len(records):,}",
                  f"{args.batch:,}", f"{t_nd:.2f}", f"{cpu_nd / len(records) * 1e6:.2f}", f"{rate_nd:,.0f}",
                  f"{rate_nd / rate_fl:.1f}x")
    table.add_row("fluent-logger FluentSender.emit", "Message, no ack", f"{len(fl_records):,}", "1",
                  f"{t_fl:.2f}", f"{cpu_fl / len(fl_records) * 1e6:.2f}", f"{rate_fl:,.0f}", "1.0x")
    Console(width=170).print(table)
    ok = rate_sink >= 100_000 and rate_sink >= 10 * rate_fl
    print(f"target (>= 100,000 rec/s and >= 10x fluent-logger): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
