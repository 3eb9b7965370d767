"""Indexing throughput: `logpipe replay` and ElasticSink vs elasticsearch.helpers.bulk / parallel_bulk.

Each method indexes the same synthetic access records (deterministic, ~400 bytes of JSON,
with a deterministic `_id`, `create` actions) into its own fresh index under the logpipe
template, in the same run, against the local node (scripts/elasticsearch.sh). Two kinds of rows:

- [memory]: records generated in this process (no reading, no parsing) — helpers.bulk,
  helpers.parallel_bulk and logpipe's ElasticSink.send.
- [file]: the work of a backfill — open the same JSON log file, parse every line, give it an
  id from file and offset, index it. The helpers do what a user writing the backfill would
  (iterate lines, `json.loads`, `_id` from the byte offset, index from the day); `logpipe replay`
  runs its whole pipeline (parse, ids, scrub, acks, checkpoints) in a subprocess.

The target ratio is `logpipe replay` / the best [file] helper (same work); the ratio to the
best [memory] helper is printed too. Reported per row: docs/s, client CPU (this process and
its children) and server CPU (the Elasticsearch process, via psutil), per document.

    python bench/bench_es.py                    # 1,000,000 docs
    python bench/bench_es.py --docs 200000      # quicker
    python bench/bench_es.py --es http://host:9200 --es-pid 1234
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from elasticsearch import Elasticsearch, helpers

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from logpipe.commands.replay import REPLAY_BATCH_RECORDS  # noqa: E402
from logpipe.config import SinkConfig  # noqa: E402
from logpipe.es.setup import load_assets, run_setup  # noqa: E402
from logpipe.ship.elastic import ElasticSink  # noqa: E402

ROUTES = ["/api/v1/users/{id}", "/api/v1/workspaces/{id}/items", "/healthz", "/api/v1/search", "/login"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
STATUSES = [200] * 17 + [201, 404, 500]


def records(start: int, n: int) -> Iterator[dict[str, Any]]:
    """Deterministic access records shaped like the tailer's output."""
    for i in range(start, start + n):
        route = ROUTES[i % len(ROUTES)]
        status = STATUSES[i % len(STATUSES)]
        yield {
            "_id": f"bench-{i:012d}",
            "@timestamp": f"2026-11-24T{(i // 3600000) % 24:02d}:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}000Z",
            "level": "error" if status >= 500 else "info",
            "logger": "access",
            "message": f"{METHODS[i % 6]} {route.replace('{id}', str(i % 9973))} {status}",
            "service": "bench",
            "environment": "prod",
            "host": "web-1",
            # uuid4-like hex, as real request ids are (a zero-padded counter is a digit run that
            # every scrubber must inspect as a possible card number: not what services log).
            "request_id": hashlib.blake2b(i.to_bytes(8, "big"), digest_size=16).hexdigest(),
            "workspace_id": f"ws-{i % 97}",
            "method": METHODS[i % 6],
            "path": route.replace("{id}", str(i % 9973)),
            "route": route,
            "status": status,
            "duration_ms": (i % 5000) / 10.0,
            "client_ip": f"10.{i % 256}.{(i // 256) % 256}.{i % 200 + 1}",
            "bytes": i % 20000,
            "log_file": "/var/log/app/access.log",
            "log_offset": i * 330,
        }


def batches(total: int, size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, total, size):
        yield list(records(start, min(size, total - start)))


def run_sink(url: str, index: str, total: int, batch: int, concurrency: int) -> None:
    """What the pipeline does: `send(batch)` blocks until every record is acknowledged."""
    with tempfile.TemporaryDirectory() as tmp:
        sink = ElasticSink(SinkConfig(url=url, index=index, concurrency=concurrency,
                                      deadletter_path=str(Path(tmp) / "dl.ndjson")))
        acked = 0
        for recs in batches(total, batch):
            res = sink.send(recs)
            acked += res.delivered + res.duplicates + res.dead_lettered
        sink.close()
    assert acked == total, f"sink acknowledged {acked} of {total}"


def _actions(total: int, index: str) -> Iterator[dict[str, Any]]:
    for rec in records(0, total):
        doc_id = rec.pop("_id")
        yield {"_op_type": "create", "_index": index, "_id": doc_id, "_source": rec}


def run_bulk(url: str, actions: Iterable[dict[str, Any]], total: int, chunk: int) -> None:
    client = Elasticsearch(url, request_timeout=120)
    ok, errors = helpers.bulk(client, actions, chunk_size=chunk, stats_only=True, raise_on_error=False)
    client.close()
    assert ok == total, f"helpers.bulk: {ok} ok, {errors} errors"


def run_parallel_bulk(url: str, actions: Iterable[dict[str, Any]], total: int, chunk: int, threads: int) -> None:
    client = Elasticsearch(url, request_timeout=120)
    ok = 0
    for success, _info in helpers.parallel_bulk(client, actions, chunk_size=chunk, thread_count=threads,
                                                raise_on_error=False):
        ok += success
    client.close()
    assert ok == total, f"parallel_bulk: {ok} of {total}"


def _file_actions(path: Path, index_prefix: str) -> Iterator[dict[str, Any]]:
    """What a user's backfill does: read the log file, json.loads each line, id from the offset."""
    name = str(path)
    tag = hashlib.blake2b(name.encode(), digest_size=8).hexdigest()
    offset = 0
    with open(path, "rb") as fh:
        for line in fh:
            start = offset
            offset += len(line)
            if not line.strip():
                continue
            doc = json.loads(line)
            doc["log_file"] = name
            doc["log_offset"] = start
            ts = doc["@timestamp"]
            yield {"_op_type": "create", "_index": f"{index_prefix}-{ts[:4]}.{ts[5:7]}.{ts[8:10]}",
                   "_id": f"{tag}{start:012x}", "_source": doc}


def write_replay_input(path: Path, total: int, service: str) -> None:
    """The same records as log lines (JSON, as a service writes them) for `logpipe replay`."""
    import orjson

    with open(path, "wb") as fh:
        for recs in batches(total, 10_000):
            out = bytearray()
            for rec in recs:
                del rec["_id"], rec["log_file"], rec["log_offset"]  # the tailer adds its own
                rec["service"] = service
                out += orjson.dumps(rec)
                out += b"\n"
            fh.write(out)


def run_replay(url: str, path: Path, workdir: Path, *extra: str) -> None:
    """The whole pipeline: read, parse, enrich (ids), scrub, batch, ElasticSink, checkpoints."""
    for stale in workdir.glob(".logpipe*"):  # a fresh checkpoint per run
        import shutil

        shutil.rmtree(stale, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "logpipe", "replay", str(path), "--sink", url, "--no-progress",
                           *extra], cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"logpipe replay failed: {proc.stderr[-2000:]}")


def es_pid(explicit: int | None) -> int | None:
    if explicit:
        return explicit
    out = subprocess.run(["bash", str(REPO / "scripts" / "elasticsearch.sh"), "pid"], capture_output=True, text=True)
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip().isdigit() else None


def measure(name: str, kind: str, fn: Callable[[], None], server: psutil.Process | None) -> dict[str, Any]:
    me = psutil.Process()
    c0, s0 = me.cpu_times(), server.cpu_times() if server else None
    t0 = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t0
    c1, s1 = me.cpu_times(), server.cpu_times() if server else None
    client_cpu = sum(c1[:4]) - sum(c0[:4])  # user, system, children_user, children_system
    server_cpu = (s1.user + s1.system) - (s0.user + s0.system) if server and s0 and s1 else float("nan")
    return {"name": name, "kind": kind, "seconds": elapsed, "client_cpu": client_cpu, "server_cpu": server_cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--es", default="", help="Elasticsearch URL (default: start scripts/elasticsearch.sh)")
    ap.add_argument("--es-pid", type=int, default=None, help="server pid for CPU accounting")
    ap.add_argument("--batch", type=int, default=2000, help="records per send() in the [memory] ElasticSink row")
    ap.add_argument("--no-replay", action="store_true", help="skip the [file] rows")
    ap.add_argument("--concurrency", type=int, default=SinkConfig().concurrency,
                    help="ElasticSink concurrent bulk requests; also parallel_bulk's thread_count")
    ap.add_argument("--chunk", type=int, default=REPLAY_BATCH_RECORDS // (2 * SinkConfig().concurrency),
                    help="helpers' chunk_size (default: the docs per bulk request of `logpipe replay`, "
                         "so both sides send the same requests; the helpers' own default is 500)")
    args = ap.parse_args()

    url = args.es or subprocess.run(["bash", str(REPO / "scripts" / "elasticsearch.sh"), "start"], check=True,
                                    capture_output=True, text=True).stdout.strip().splitlines()[-1]
    pid = es_pid(args.es_pid)
    server = psutil.Process(pid) if pid else None
    client = Elasticsearch(url, request_timeout=120)
    run_setup(client, load_assets())
    stamp = time.strftime("%H%M%S")
    idx = {k: f"logpipe-bench{stamp}-{k}" for k in ("sink", "bulk", "parallel")}
    tmp = Path(tempfile.mkdtemp(prefix="bench_es_"))
    replay_input = tmp / "access.log"
    if not args.no_replay:
        for k in ("replay", "noscrub", "filebulk", "fileparallel"):
            idx[k] = f"logpipe-bench{stamp}-{k}"
        write_replay_input(replay_input, args.docs, f"bench{stamp}-replay")
        write_replay_input(tmp / "noscrub.log", args.docs, f"bench{stamp}-noscrub")
    gen_t0 = time.process_time()
    for _ in records(0, min(args.docs, 200_000)):
        pass
    gen_cost = (time.process_time() - gen_t0) / min(args.docs, 200_000)

    # warm up the server (JIT, index creation paths) so the first method is not penalised
    run_bulk(url, _actions(min(args.docs, 20_000), f"logpipe-bench{stamp}-warmup"), min(args.docs, 20_000), 500)
    client.indices.delete(index=f"logpipe-bench{stamp}-warmup")

    n, chunk, conc = args.docs, args.chunk, args.concurrency
    rows: list[tuple[str, str, str, Callable[[], None]]] = [
        (f"helpers.bulk (chunk {chunk})", "memory", "bulk", lambda: run_bulk(url, _actions(n, idx["bulk"]), n, chunk)),
        (f"helpers.parallel_bulk (chunk {chunk}, {conc} threads)", "memory", "parallel",
         lambda: run_parallel_bulk(url, _actions(n, idx["parallel"]), n, chunk, conc)),
        (f"logpipe ElasticSink.send({args.batch}), x{conc}", "memory", "sink",
         lambda: run_sink(url, idx["sink"] + "-%Y.%m.%d", n, args.batch, conc)),
    ]
    if not args.no_replay:
        rows += [
            (f"helpers.bulk: read file, json.loads, _id (chunk {chunk})", "file", "filebulk",
             lambda: run_bulk(url, _file_actions(replay_input, idx["filebulk"]), n, chunk)),
            (f"helpers.parallel_bulk: read file, json.loads, _id (chunk {chunk}, {conc} threads)", "file",
             "fileparallel", lambda: run_parallel_bulk(url, _file_actions(replay_input, idx["fileparallel"]), n, chunk, conc)),
            ("logpipe replay (whole pipeline: parse, ids, scrub, acks, checkpoints)", "replay", "replay",
             lambda: run_replay(url, replay_input, tmp)),
            ("logpipe replay --no-scrub", "replay", "noscrub",
             lambda: run_replay(url, tmp / "noscrub.log", tmp, "--no-scrub")),
        ]
    results = []
    for name, kind, key, fn in rows:
        results.append(measure(name, kind, fn, server))
        # Verify, then drop the index before the next row: its refreshes and segment merges
        # would otherwise run on the shared server while the later rows are measured.
        client.indices.refresh(index=f"{idx[key]}*")
        count = client.count(index=f"{idx[key]}*")["count"]
        assert count == args.docs, f"{key}: {count} documents, expected {args.docs}"
        client.indices.delete(index=f"{idx[key]}*")
        time.sleep(2)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    client.close()

    def best(kind: str) -> float:
        rates = [n / r["seconds"] for r in results if r["kind"] == kind and r["name"].startswith("helpers")]
        return max(rates) if rates else float("nan")

    best_memory, best_file = best("memory"), best("file")
    table = Table(title=f"Indexing {n:,} access records into {url} (same run, fresh indices, logpipe template)")
    for col in ("", "method", "seconds", "docs/s", "vs best [file] helper", "vs best [memory] helper",
                "client CPU s", "server CPU s", "client µs/doc", "server µs/doc"):
        table.add_column(col, justify="left" if col in ("", "method") else "right")
    for r in results:
        rate = n / r["seconds"]
        vs_memory = f"{rate / best_memory:.2f}x"
        table.add_row("[memory]" if r["kind"] == "memory" else "[file]", r["name"], f"{r['seconds']:.1f}",
                      f"{rate:,.0f}", f"{rate / best_file:.2f}x" if r["kind"] != "memory" else "",
                      vs_memory, f"{r['client_cpu']:.1f}", f"{r['server_cpu']:.1f}",
                      f"{r['client_cpu'] / n * 1e6:.1f}", f"{r['server_cpu'] / n * 1e6:.1f}")
    console = Console(width=200, markup=False)
    console.print(table)
    replays = [r for r in results if r["kind"] == "replay"]
    if replays:
        main_row = replays[0]
        console.print(f"TARGET (same work): logpipe replay / best [file] helper = "
                      f"{n / main_row['seconds'] / best_file:.2f}x (goal >= 1.0x); "
                      f"vs best [memory] helper = {n / main_row['seconds'] / best_memory:.2f}x.")
    console.print(f"[memory] rows include generating the records in-process (≈{gen_cost * 1e6:.1f} µs/doc of client "
                  "CPU); [file] rows read and parse the same JSON log file (logpipe replay: in a subprocess, its CPU "
                  "counted as children, including ~0.3 s of start-up). Server CPU is the "
                  "whole Elasticsearch process: anything else indexing meanwhile shows up there. "
                  "All counts verified in Elasticsearch after the run.")


if __name__ == "__main__":
    main()
