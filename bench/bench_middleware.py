"""What a service pays per request for its access log: logpipe's middleware against hand-written ones.

Variants, each a real server process: `plain` (no logging middleware), `logpipe`
(setup_logging + LoggingMiddleware / WSGILoggingMiddleware), `pjl` (mw_baseline_pjl.py:
python-json-logger's JsonFormatter -> FileHandler) and `structlog` (mw_baseline_structlog.py).
ASGI: Starlette under uvicorn (asyncio loop, h11). WSGI: Flask under gunicorn, one gthread
worker with 16 threads. Every server is pinned with `taskset -c 0`; the load generators run on
core 1 (`taskset -c 1 wrk -t1 -c16`, and this process pins itself to core 1).

Per server start, in one interleaved round (variant order rotates each round):
  1. `wrk` at full load on `/hello`, then on `/work` (2 ms of CPU, calibrated busy loop):
     requests/s = completed / (wrk's time + the time the writer needs to drain afterwards);
  2. latency at a fixed rate, 70 % of plain's median maximum so far: wrk2 is not in Debian, so
     this file has its own open-loop generator (asyncio, 16 keep-alive connections, latency
     counted from each request's scheduled send time, so a stalled server is not under-reported).
After every run the access log must hold exactly one complete JSON record per request the
endpoints handled (wrk abandons up to one request per connection when it stops; those are
handled and logged but not counted by wrk, possibly in the next run's window), each fixed-rate
request's id exactly once, and 0 dropped_records.

"added µs/request" = 1e6/rps(variant) - 1e6/rps(plain) on the hello endpoint: with the server on
one core, that is the time the middleware and its writer thread add per request. On a shared
host other tenants' load lands in that number too, so the server's own CPU time per request
(all threads, read from /proc through psutil, the writer's drain included) is reported beside
it ("CPU µs/req", "added CPU").

    python bench/bench_middleware.py                      # 5 rounds x 20 s per run (about 45 min)
    python bench/bench_middleware.py --quick              # 2 rounds x 3 s, for development
    python bench/bench_middleware.py --kinds asgi --variants plain,logpipe,pjl --duration 10 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VARIANTS = ("plain", "logpipe", "pjl", "structlog")
KINDS = ("asgi", "wsgi")
CONNECTIONS = 16
SERVER_CORE, LOAD_CORE = "0", "1"
REQUIRED = ("request_id", "method", "path", "status", "duration_ms")
SPIN = 0  # busy-loop iterations for 2 ms of CPU, calibrated once here and given to every server


# ------------------------------------------------------------------------------------- servers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One pinned server process for a (kind, variant), with its own log directory."""

    def __init__(self, kind: str, variant: str) -> None:
        self.kind, self.variant = kind, variant
        self.port = _free_port()
        self.handled_before = 0
        self.logdir = Path(tempfile.mkdtemp(prefix=f"bench-mw-{kind}-{variant}-"))
        env = dict(os.environ, BENCH_VARIANT=variant, BENCH_SPIN=str(SPIN), BENCH_LOGDIR=str(self.logdir),
                   PYTHONPATH=os.pathsep.join([str(ROOT), str(BENCH), os.environ.get("PYTHONPATH", "")]))
        if kind == "asgi":
            cmd = [sys.executable, "-m", "uvicorn", "mw_apps:asgi_app", "--factory", "--host", "127.0.0.1",
                   "--port", str(self.port), "--no-access-log", "--log-level", "warning", "--loop", "asyncio",
                   "--http", "h11", "--lifespan", "off"]
        else:
            cmd = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads", "16",
                   "-b", f"127.0.0.1:{self.port}", "--log-level", "warning", "mw_apps:wsgi_app()"]
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, *cmd], env=env, cwd=BENCH,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()
        self.ps = psutil.Process(self.proc.pid)

    def cpu_s(self) -> float:
        """CPU seconds used so far by the server (and gunicorn's worker): all its threads."""
        total = 0.0
        for p in [self.ps, *self.ps.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
        return total

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind}/{self.variant} server exited: {self.proc.stderr.read().decode()}")
            try:
                self.control()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind}/{self.variant} server not ready after {timeout}s")

    def control(self) -> dict[str, float]:
        """Drain the writer; how many requests were handled, records dropped, drain time."""
        with urllib.request.urlopen(self.url + "/__bench", timeout=120) as resp:
            return json.loads(resp.read())

    def records(self) -> list[dict[str, object]]:
        path = self.logdir / "access.log"
        if not path.exists():
            return []
        out = []
        for raw in path.read_bytes().splitlines():
            rec = json.loads(raw)  # a torn or partial line fails here
            missing = [k for k in REQUIRED if k not in rec]
            if missing:
                raise AssertionError(f"{self.kind}/{self.variant}: incomplete access record, no {missing}: {raw!r}")
            out.append(rec)
        return out

    def dropped_in_logs(self) -> int:
        n = 0
        for name in ("app.log", "error.log"):
            path = self.logdir / name
            if path.exists():
                n += sum(1 for line in path.read_bytes().splitlines() if b"dropped_records" in line)
        return n

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.logdir, ignore_errors=True)


# ------------------------------------------------------------------------------------- wrk
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class WrkResult:
    completed: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int


def run_wrk(url: str, duration: float) -> WrkResult:
    out = subprocess.run(["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(duration))}s",
                          "--latency", url], capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if not m:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    seconds = float(m.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return WrkResult(int(m.group(1)), seconds, _ms(pct["50"]), _ms(pct["99"]), errors)


# ------------------------------------------------------------------------------------- fixed rate
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; reads responses framed by Content-Length."""

    def __init__(self, on_response) -> None:  # type: ignore[no-untyped-def]
        self.on_response = on_response
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            m = _CONTENT_LENGTH.search(buf, 0, end + 2)
            size = end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) < size:
                break
            ok = buf.startswith(b"HTTP/1.1 200")
            buf = buf[size:]
            self.on_response(self, ok)
        self.buf = buf


async def fixed_rate(port: int, path: str, rate: float, duration: float, tag: str) -> dict[str, object]:
    """Open-loop load: request i is due at t0 + i/rate; latency runs from that moment to the response.

    `gen_lag_p99_ms` says how late this generator itself was in sending (a busy load core): when it
    is not small next to p99, the latencies describe the generator as much as the server."""
    loop = asyncio.get_running_loop()
    total = max(1, int(rate * duration))
    idle: collections.deque[_Conn] = collections.deque()
    waiting: collections.deque[int] = collections.deque()
    in_flight: dict[_Conn, int] = {}
    latencies: list[float] = []
    lags: list[float] = []
    ok_ids: list[int] = []
    errors = 0
    done = loop.create_future()
    t0 = 0.0
    prefix = f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench-fixed-rate/1\r\nX-Request-ID: {tag}-".encode()

    def send(conn: _Conn, i: int) -> None:
        in_flight[conn] = i
        conn.transport.write(prefix + b"%d\r\n\r\n" % i)  # type: ignore[union-attr]

    def on_response(conn: _Conn, ok: bool) -> None:
        nonlocal errors
        i = in_flight.pop(conn)
        latencies.append(loop.time() - (t0 + i / rate))
        if ok:
            ok_ids.append(i)
        else:
            errors += 1
        if waiting:
            send(conn, waiting.popleft())
        else:
            idle.append(conn)
        if len(latencies) == total and not done.done():
            done.set_result(None)

    for _ in range(CONNECTIONS):
        _, conn = await loop.create_connection(lambda: _Conn(on_response), "127.0.0.1", port)
        idle.append(conn)
    t0 = loop.time() + 0.01
    i = 0
    while i < total:
        due = t0 + i / rate
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)
            now = loop.time()
        while i < total and t0 + i / rate <= now:
            lags.append(now - (t0 + i / rate))
            if idle:
                send(idle.popleft(), i)
            else:
                waiting.append(i)
            i += 1
    try:
        await asyncio.wait_for(done, timeout=120)
    except TimeoutError:  # reported as errors below: the run's latencies are incomplete
        errors += total - len(latencies)
    for conn in list(idle) + list(in_flight):
        conn.transport.close()  # type: ignore[union-attr]
    elapsed = loop.time() - t0
    latencies.sort()
    lags.sort()
    latencies = latencies or [float("nan")]

    def p(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(len(xs) * q))] * 1000

    return {"completed": len(latencies), "ok_ids": [f"{tag}-{n}" for n in ok_ids], "errors": errors,
            "p50_ms": p(latencies, 0.5), "p99_ms": p(latencies, 0.99), "gen_lag_p99_ms": p(lags, 0.99),
            "achieved_rps": len(latencies) / elapsed}


# ------------------------------------------------------------------------------------- one session
@dataclass
class Sample:
    hello_rps: float = 0.0
    work_rps: float = 0.0
    hello_cpu_us: float = 0.0  # server CPU per request (all threads, drain included): robust to a busy host
    work_cpu_us: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    wrk_p99_ms: float = 0.0
    rate: float = 0.0
    gen_lag_p99_ms: float = 0.0
    checks: list[str] = field(default_factory=list)


def _check(server: Server, wrk_completed: int | None, expect_ids: list[str] | None, sample: Sample) -> float:
    """One complete record per handled request, 0 dropped; returns the drain time (s)."""
    ctl = server.control()
    handled, dropped = int(ctl["handled"]), int(ctl["dropped_records"])
    problems = []
    if dropped or server.dropped_in_logs():
        problems.append(f"dropped_records={dropped}")
    if server.variant != "plain":
        recs = [r for r in server.records() if r.get("path") != "/__bench"]
        if len(recs) != handled:
            problems.append(f"{len(recs)} access records for {handled} handled requests")
        if expect_ids is not None:
            tag = expect_ids[0].rsplit("-", 1)[0] + "-" if expect_ids else "?"
            mine = collections.Counter(r["request_id"] for r in recs if str(r["request_id"]).startswith(tag))
            if mine != collections.Counter(expect_ids):
                problems.append("fixed-rate request ids not logged exactly once")
    # wrk abandons up to one request per connection when it stops; one the server had not started
    # yet when the previous run was counted lands in this run's count: so up to 2 x CONNECTIONS.
    if wrk_completed is not None and not (0 <= handled - server.handled_before - wrk_completed <= 2 * CONNECTIONS):
        problems.append(f"wrk completed {wrk_completed}, server handled {handled - server.handled_before}")
    server.handled_before = handled
    if problems:
        sample.checks.append("; ".join(problems))
    return float(ctl["flush_s"])


def session(kind: str, variant: str, duration: float, rate_for: Callable[[float], float], tag: str) -> Sample:
    """Full-load runs, then the fixed-rate run at `rate_for(this session's hello req/s)`."""
    sample = Sample()
    server = Server(kind, variant)
    try:
        run_wrk(server.url + "/hello", max(1.0, duration / 10))  # warm-up
        server.handled_before = int(server.control()["handled"])
        for endpoint in ("hello", "work"):
            cpu0, before = server.cpu_s(), server.handled_before
            res = run_wrk(f"{server.url}/{endpoint}", duration)
            if res.errors:
                sample.checks.append(f"wrk errors on /{endpoint}: {res.errors}")
            drain = _check(server, res.completed, None, sample)
            cpu_us = (server.cpu_s() - cpu0) * 1e6 / max(1, server.handled_before - before)
            rps = res.completed / (res.seconds + drain)
            if endpoint == "hello":
                sample.hello_rps, sample.wrk_p99_ms, sample.hello_cpu_us = rps, res.p99_ms, cpu_us
            else:
                sample.work_rps, sample.work_cpu_us = rps, cpu_us
        sample.rate = rate_for(sample.hello_rps)
        fr = asyncio.run(fixed_rate(server.port, "/hello", sample.rate, duration, tag))
        if fr["errors"]:
            sample.checks.append(f"fixed-rate errors: {fr['errors']}")
        _check(server, None, fr["ok_ids"], sample)  # type: ignore[arg-type]
        sample.p50_ms, sample.p99_ms = float(fr["p50_ms"]), float(fr["p99_ms"])  # type: ignore[arg-type]
        sample.gen_lag_p99_ms = float(fr["gen_lag_p99_ms"])  # type: ignore[arg-type]
    finally:
        server.stop()
    return sample


# ------------------------------------------------------------------------------------- report
def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def report(kind: str, samples: dict[str, list[Sample]], rates: list[float]) -> list[str]:
    keys = ("hello_rps", "work_rps", "p50_ms", "p99_ms", "wrk_p99_ms", "hello_cpu_us", "work_cpu_us",
            "gen_lag_p99_ms")
    med = {v: {k: _median([getattr(s, k) for s in ss]) for k in keys} for v, ss in samples.items()}
    plain = med.get("plain")
    lines = [f"\n{kind.upper()}  (fixed rate for p50/p99: {_median(rates):.0f} req/s = 70% of plain's median max)",
             f"{'variant':<10} {'hello req/s':>11} {'added µs/req':>12} {'CPU µs/req':>10} {'added CPU':>9} "
             f"{'2ms req/s':>10} {'vs plain':>9} {'p50 ms':>7} {'p99 ms':>7} {'gen lag':>7} {'wrk p99':>8}  records"]
    added: dict[str, float] = {}
    added_cpu: dict[str, float] = {}
    for v, m in med.items():
        add = (1e6 / m["hello_rps"] - 1e6 / plain["hello_rps"]) if plain else float("nan")
        added[v] = add
        vs = (m["work_rps"] / plain["work_rps"] - 1) * 100 if plain else float("nan")
        bad = [c for s in samples[v] for c in s.checks]
        added_cpu[v] = m["hello_cpu_us"] - plain["hello_cpu_us"] if plain else float("nan")
        lines.append(f"{v:<10} {m['hello_rps']:>11.0f} {add:>12.1f} {m['hello_cpu_us']:>10.1f} {added_cpu[v]:>9.1f} "
                     f"{m['work_rps']:>10.1f} {vs:>+8.1f}% "
                     f"{m['p50_ms']:>7.2f} {m['p99_ms']:>7.2f} {m['gen_lag_p99_ms']:>7.2f} {m['wrk_p99_ms']:>8.2f}  "
                     f"{'ok' if not bad else 'FAILED: ' + ' | '.join(bad)}")
    if plain and "logpipe" in med and "pjl" in med:
        lp, pj = med["logpipe"], med["pjl"]
        ratio = added["logpipe"] / added["pjl"] if added["pjl"] > 0 else float("nan")
        work = (lp["work_rps"] / plain["work_rps"] - 1) * 100
        p99 = (lp["p99_ms"] / pj["p99_ms"] - 1) * 100
        cpu_ratio = added_cpu["logpipe"] / added_cpu["pjl"] if added_cpu["pjl"] > 0 else float("nan")
        lines.append(f"targets: added cost {ratio:.2f}x pjl's (<= 0.5) {'MET' if ratio <= 0.5 else 'MISSED'} "
                     f"[by server CPU time: {cpu_ratio:.2f}x]; "
                     f"2 ms endpoint {work:+.1f}% vs plain (>= -2%) {'MET' if work >= -2 else 'MISSED'}; "
                     f"p99 {p99:+.1f}% vs pjl (<= +5%) {'MET' if p99 <= 5 else 'MISSED'}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    ap.add_argument("--quick", action="store_true", help="2 rounds of 3 s runs (development only)")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", type=Path, help="also write every sample here")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration = 2, 3.0
    if shutil.which("wrk") is None:
        sys.exit("wrk not found (apt-get install -y wrk)")
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    global SPIN
    sys.path.insert(0, str(BENCH))
    import mw_apps

    SPIN = mw_apps.SPIN
    kinds = [k for k in args.kinds.split(",") if k]
    variants = [v for v in args.variants.split(",") if v]
    if "plain" not in variants:
        variants.insert(0, "plain")
    print(f"server: taskset -c {SERVER_CORE}; wrk -t1 -c{CONNECTIONS} and fixed-rate generator on core {LOAD_CORE}; "
          f"{args.rounds} rounds x {args.duration:g} s per run; medians; 2 ms = {SPIN} loop turns", flush=True)
    samples = {k: {v: [] for v in variants} for k in kinds}
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    for rnd in range(args.rounds):
        for kind in kinds:
            # plain first (its maximum sets the fixed rate for the round), then the others, rotating
            others = [v for v in variants if v != "plain"]
            others = others[rnd % len(others):] + others[: rnd % len(others)] if others else []
            for variant in ["plain", *others]:
                maxima = [x.hello_rps for x in samples[kind]["plain"]]
                if variant == "plain":
                    def rate_for(own: float, maxima: list[float] = maxima) -> float:
                        return 0.7 * _median([*maxima, own])
                else:
                    def rate_for(own: float, fixed: float = rates[kind][-1]) -> float:
                        return fixed
                last = session(kind, variant, args.duration, rate_for, f"fr{rnd}{kind}{variant}")
                samples[kind][variant].append(last)
                if variant == "plain":
                    rates[kind].append(last.rate)
                print(f"round {rnd + 1} {kind:<4} {variant:<9} hello {last.hello_rps:7.0f}/s  "
                      f"2ms {last.work_rps:6.1f}/s  at {last.rate:.0f}/s: p50 {last.p50_ms:6.2f}  "
                      f"p99 {last.p99_ms:6.2f} ms (generator lag p99 {last.gen_lag_p99_ms:.2f})  "
                      f"CPU {last.hello_cpu_us:.0f} µs/req  {'ok' if not last.checks else last.checks}", flush=True)
    for kind in kinds:
        for line in report(kind, samples[kind], rates[kind]):
            print(line)
    if args.json:
        args.json.write_text(json.dumps({k: {v: [s.__dict__ for s in ss] for v, ss in kv.items()}
                                         for k, kv in samples.items()}, indent=1))


if __name__ == "__main__":
    main()
