"""Synthetic access traffic with known answers, for tests, benchmarks and demos.

Why here: the accuracy tests, the end-to-end scrape test and bench_metrics.py must agree
on what was generated; the generator returns the exact durations/statuses it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson

ROUTES = (
    ("GET", "/api/users/{n}", "/api/users/{id}"),
    ("GET", "/api/orders/{u}", "/api/orders/{uuid}"),
    ("POST", "/api/orders", "/api/orders"),
    ("GET", "/static/app.js", "/static/app.js"),
    ("GET", "/health", "/health"),
    ("DELETE", "/api/users/{n}/sessions/{h}", "/api/users/{id}/sessions/{hash}"),
)


@dataclass
class Traffic:
    """What was generated: per line the method, concrete path, expected route, status and ms."""

    methods: list[str]
    paths: list[str]
    routes: list[str]
    status: np.ndarray
    duration_ms: np.ndarray
    epoch: np.ndarray
    request_ids: list[str]


def traffic(n: int, *, seed: int = 7, start: float = 1_763_942_400.0, rps: float = 200.0,
            error_share: float = 0.03) -> Traffic:
    """n requests over n/rps seconds, log-normal latency (median ≈ 40 ms) with a slow tail."""
    rng = np.random.default_rng(seed)
    which = rng.choice(len(ROUTES), size=n, p=[0.35, 0.2, 0.1, 0.2, 0.1, 0.05])
    dur = rng.lognormal(np.log(40.0), 0.8, n)
    slow = rng.random(n) < 0.01
    dur[slow] *= 20
    dur = np.round(dur, 3)
    status = np.where(rng.random(n) < error_share, 500, 200)
    status = np.where((status == 200) & (rng.random(n) < 0.05), 404, status)
    epoch = start + np.sort(rng.random(n)) * (n / rps)
    ids = rng.integers(1, 10**6, n)
    methods, paths, routes, rids = [], [], [], []
    for i in range(n):
        m, tmpl, route = ROUTES[int(which[i])]
        num = int(ids[i])
        p = (tmpl.replace("{n}", str(num))
             .replace("{u}", f"{num:08x}-1234-4abc-8def-{num:012x}")
             .replace("{h}", f"{num:08x}" + "9f3ab2c4" * 4))
        if i % 7 == 0:
            p += f"?page={i % 5}"
        methods.append(m)
        paths.append(p)
        routes.append(route)
        rids.append(f"req-{i:08d}")
    return Traffic(methods, paths, routes, status, dur, epoch, rids)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clf_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def combined_lines(t: Traffic) -> list[str]:
    """nginx combined format with `$request_time` (seconds) appended."""
    out = []
    for i in range(len(t.paths)):
        out.append(
            f'10.0.{i % 250}.{i % 200} - - [{_clf_time(float(t.epoch[i]))}] "{t.methods[i]} {t.paths[i]} HTTP/1.1" '
            f'{int(t.status[i])} {512 + i % 1000} "-" "bench/1.0" {t.duration_ms[i] / 1000.0:.3f}'
        )
    return out


def json_lines(t: Traffic, service: str = "shop") -> list[str]:
    """JSON access records as logpipe's emitter writes them."""
    out = []
    for i in range(len(t.paths)):
        ts = _iso(float(t.epoch[i]))
        out.append(orjson.dumps({
            "@timestamp": ts, "level": "info", "logger": "access", "message": "request",
            "service": service, "request_id": t.request_ids[i], "method": t.methods[i],
            "path": t.paths[i], "status": int(t.status[i]), "duration_ms": float(t.duration_ms[i]),
        }).decode())
    return out


def records(t: Traffic) -> list[dict]:
    """Already-parsed access records (what the pipeline hands the tap)."""
    return [
        {"@timestamp": _iso(float(t.epoch[i])), "method": t.methods[i], "path": t.paths[i], "status": int(t.status[i]),
         "duration_ms": float(t.duration_ms[i]), "request_id": t.request_ids[i]}
        for i in range(len(t.paths))
    ]
