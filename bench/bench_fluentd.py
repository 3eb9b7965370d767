"""Sidecar -> Fluentd -> Elasticsearch versus sidecar -> Elasticsearch, same records, one run.

Each road ships the same JSON log file (200,000 lines by default; its own service name, so its
own index) with `logpipe tail --once`, and is timed from the sidecar's start until `_count` of
its index equals the lines written (polled after a refresh). The Fluentd road runs the committed
fluentd/fluent.conf (only bind, ports, paths and the Elasticsearch address overridden; started
before the clock starts). Reported per road: docs/s and CPU per document of each process (the
sidecar, Fluentd's supervisor and workers, Elasticsearch). Target: Fluentd road >= 0.5x direct.

    LOGPIPE_TEST_FLUENTD="fluentd" python bench/bench_fluentd.py [--docs 200000] [--es URL --es-pid PID]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fluentd_receiver import make_test_pki  # noqa: E402
from real_fluentd import (  # noqa: E402
    ENV_VAR,
    RealFluentd,
    delete_indices,
    es_count,
    fluentd_command,
    sidecar_config,
    sidecar_env,
    tail_command,
    write_lines,
)

KEY = "bench-fluentd-key"


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def road(name: str, es_url: str, sink_url: str, service: str, docs: int, workdir: Path,
         watched: dict[str, list[psutil.Process]], **sink: object) -> dict[str, object]:
    log = workdir / f"{service}.log"
    write_lines(log, service, docs)
    conf = sidecar_config(workdir / f"{service}.toml", sink_url, shared_key=KEY,
                          checkpoint=workdir / f"{service}.cp.json", **sink)
    pattern = f"logpipe-{service}-*"
    cpu0 = {k: _cpu(v) for k, v in watched.items()}
    side0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(tail_command(log, conf), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=sidecar_env(), cwd=workdir)
    count = 0
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        count = es_count(es_url, pattern)
        if count >= docs:
            break
        if proc.poll() not in (None, 0):
            raise RuntimeError(f"{name}: sidecar failed: {proc.stderr.read()[-2000:]}")
        time.sleep(0.25)
    elapsed = time.perf_counter() - t0
    if proc.wait(timeout=600) != 0:
        raise RuntimeError(f"{name}: sidecar failed: {proc.stderr.read()[-2000:]}")
    if count != docs:
        raise RuntimeError(f"{name}: {count} documents for {docs} lines")
    cpu = {"sidecar": _children_cpu() - side0}
    cpu.update({k: _cpu(v) - cpu0[k] for k, v in watched.items()})
    return {"road": name, "seconds": elapsed, "docs_s": docs / elapsed,
            "cpu_us_per_doc": {k: v / docs * 1e6 for k, v in cpu.items()}}


def es_process(explicit: int | None) -> psutil.Process | None:
    if explicit:
        return psutil.Process(explicit)
    out = subprocess.run(["bash", str(REPO / "scripts" / "elasticsearch.sh"), "pid"], capture_output=True, text=True)
    return psutil.Process(int(out.stdout)) if out.returncode == 0 and out.stdout.strip().isdigit() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--es", default=os.environ.get("LOGPIPE_TEST_ES_URL", "http://127.0.0.1:9200"))
    ap.add_argument("--es-pid", type=int, default=None, help="Elasticsearch pid for CPU accounting")
    args = ap.parse_args()
    if not fluentd_command():
        print(f"bench_fluentd: set {ENV_VAR} to a fluentd command", file=sys.stderr)
        return 2
    es_proc = es_process(args.es_pid)
    run = uuid.uuid4().hex[:8]
    direct, via = f"benchdirect{run}", f"benchfluentd{run}"
    with tempfile.TemporaryDirectory(prefix="bench-fluentd-") as tmp:
        work = Path(tmp)
        pki = make_test_pki(tmp)
        fd = RealFluentd(work / "fluentd", args.es, KEY, tls_cert=pki.cert_file, tls_key=pki.key_file).start()
        try:
            fluentd_procs = [psutil.Process(p) for p in fd.pids()]
            es_watch = {"elasticsearch": [es_proc]} if es_proc else {}
            rows = [
                road("sidecar -> ES", args.es, args.es, direct, args.docs, work, dict(es_watch)),
                road("sidecar -> Fluentd -> ES", args.es, f"forward://127.0.0.1:{fd.port}", via, args.docs, work,
                     {"fluentd": fluentd_procs, **es_watch}),
            ]
        finally:
            fd.stop()
            for service in (direct, via):
                delete_indices(args.es, f"logpipe-{service}-*")
    print(f"{args.docs:,} records per road (machine shared; one run)")
    for r in rows:
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in r["cpu_us_per_doc"].items())  # type: ignore[union-attr]
        print(f"  {r['road']:<26} {r['seconds']:7.1f} s  {r['docs_s']:9,.0f} docs/s   CPU us/doc: {cpu}")
    ratio = rows[1]["docs_s"] / rows[0]["docs_s"]  # type: ignore[operator]
    print(f"  through Fluentd / direct = {ratio:.2f}x (target >= 0.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
