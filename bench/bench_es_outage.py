"""Benchmark: memory of the Elasticsearch sink during an outage (issue 13 item 9).

    python bench/bench_es_outage.py                  # 300 failed bulk attempts of 2,000 records
    python bench/bench_es_outage.py --attempts 1000

A loopback server accepts each bulk request and closes the connection; the sink retries
with the cycle collector made rare (so garbage only it can free would show in RSS) until
it has failed `--attempts` times. Reported: RSS before and after, and how many objects only
the cycle collector could still free (0 means failed attempts leave nothing behind).
"""

from __future__ import annotations

import argparse
import gc
import logging
import socket
import threading

from logpipe.config import SinkConfig
from logpipe.ship.elastic import ElasticSink


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def closing_server() -> int:
    srv = socket.create_server(("127.0.0.1", 0))

    def loop() -> None:
        while True:
            conn, _ = srv.accept()
            conn.recv(1 << 20)
            conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attempts", type=int, default=300)
    ap.add_argument("--records", type=int, default=2000)
    args = ap.parse_args()
    gc.collect()
    gc.set_threshold(50_000, 50, 100)
    logging.disable(logging.WARNING)
    sink = ElasticSink(SinkConfig(url=f"http://127.0.0.1:{closing_server()}", concurrency=1))
    sink.backoff_base_s = sink.backoff_max_s = 0.0005
    records = [{"@timestamp": "2026-11-24T07:15:27.000000Z", "service": "bench", "message": "x" * 500,
                "_id": f"id-{i}"} for i in range(args.records)]
    attempts = 0
    bulk = sink.client.bulk

    def counted(**kw: object) -> object:
        nonlocal attempts
        attempts += 1
        if attempts >= args.attempts:
            sink.stop_event.set()
        return bulk(**kw)

    sink.client.bulk = counted  # type: ignore[method-assign]
    before = rss_mib()
    try:
        sink.send(records)
    except Exception:  # SinkStopped once the attempts are used up
        pass
    after = rss_mib()
    print(f"{attempts} failed bulk attempts of {args.records} records: RSS {before:.0f} -> {after:.0f} MiB; "
          f"objects left for the cycle collector: {gc.collect()}")


if __name__ == "__main__":
    main()
