"""A bounded traffic generator for the demo service (httpx, asyncio, N requests, C at a time).

    python -m demo.traffic --url http://127.0.0.1:8000 --requests 20000 --concurrency 32 \
        --burst 1500 --burst-at 0.6 --ids-out sent.ndjson

Every request carries its own `X-Request-ID` (`<run-id>-<n>`), so a test can look each one
up in Elasticsearch afterwards. A 5xx burst is a run of consecutive requests with
`?fail=<status>`: with C workers pulling the plan in order, they land close together in time,
which is what an error-rate alert should notice. Prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Planned:
    """One request to send."""

    method: str
    path: str
    request_id: str
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    burst: bool = False


@dataclass
class Summary:
    """What happened: statuses by code, transport errors, and every request id sent."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)  # exception name: what went wrong
    elapsed_s: float = 0.0
    results: list[tuple[str, int]] = field(default_factory=list)  # (request_id, status or 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "transport_errors": self.transport_errors,
            "error_kinds": dict(self.error_kinds),
            "elapsed_s": round(self.elapsed_s, 3),
            "requests_per_s": round(self.sent / self.elapsed_s, 1) if self.elapsed_s else 0.0,
        }


def build_plan(
    n: int,
    *,
    seed: int = 1,
    run_id: str | None = None,
    burst: int = 0,
    burst_at: float = 0.5,
    burst_status: int = 500,
    boom_rate: float = 0.0,
    bad_input_rate: float = 0.05,
) -> list[Planned]:
    """A deterministic mix over the demo's routes; `burst` requests forced to fail with `burst_status`.

    The burst replaces normal requests starting at position `burst_at * n`, so the plan has exactly
    `n` requests. `boom_rate` adds unhandled-exception requests (500 with a stack in error.log).
    """
    if burst > n:
        raise ValueError(f"burst ({burst}) larger than the number of requests ({n})")
    rng = random.Random(seed)
    run_id = run_id or uuid.uuid4().hex[:12]
    burst_start = min(int(burst_at * n), n - burst) if burst else n
    plan: list[Planned] = []
    for i in range(n):
        rid = f"{run_id}-{i:06d}"
        if burst_start <= i < burst_start + burst:
            uid = rng.randint(1, 5000)
            plan.append(Planned("GET", f"/api/v1/users/{uid}", rid, {"fail": str(burst_status)}, burst=True))
            continue
        ws = f"ws-{rng.randint(1, 40)}"
        roll = rng.random()
        if boom_rate and roll < boom_rate:
            plan.append(Planned("GET", "/api/v1/boom", rid))
        elif roll < 0.45:
            plan.append(Planned("GET", f"/api/v1/users/{rng.randint(1, 5000)}", rid))
        elif roll < 0.70:
            plan.append(Planned("GET", f"/api/v1/workspaces/{ws}/invoices/{rng.randint(1, 99999)}", rid))
        elif roll < 0.85:
            amount = -1 if rng.random() < bad_input_rate else rng.randint(100, 50_000)
            plan.append(Planned("POST", f"/api/v1/workspaces/{ws}/invoices", rid, body={"amount_cents": amount}))
        else:
            words = ("latency", "invoice", "refund", "workspace", "user", "error")
            plan.append(Planned("GET", "/api/v1/search", rid, {"q": " ".join(rng.sample(words, 2))}))
    return plan


async def drive(
    base_url: str,
    plan: Sequence[Planned],
    *,
    concurrency: int = 16,
    rate: float = 0.0,
    timeout_s: float = 15.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Summary:
    """Send `plan` in order with `concurrency` workers; `rate` > 0 caps requests per second.

    `transport` lets a test drive an ASGI app in-process (httpx.ASGITransport).
    """
    summary = Summary()
    queue_pos = 0
    start = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal queue_pos
        while queue_pos < len(plan):
            i = queue_pos
            queue_pos += 1  # single-threaded event loop: no lock needed between awaits
            if rate > 0:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            item = plan[i]
            try:
                resp = await client.request(
                    item.method, item.path, params=item.params or None, json=item.body,
                    headers={"X-Request-ID": item.request_id},
                )
                status = resp.status_code
                summary.statuses[status] += 1
            except httpx.HTTPError as exc:
                status = 0
                summary.transport_errors += 1
                summary.error_kinds[f"{type(exc).__name__}: {exc}"[:200]] += 1
            summary.sent += 1
            summary.results.append((item.request_id, status))

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout_s, transport=transport) as client:
        await asyncio.gather(*(worker(client) for _ in range(max(1, concurrency))))
    summary.elapsed_s = time.monotonic() - start
    return summary


def wait_ready(base_url: str, timeout_s: float = 30.0) -> None:
    """Poll /healthz until the service answers (bounded), so a fresh container is not hammered."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"demo service at {base_url} not ready after {timeout_s:.0f}s")
        time.sleep(0.2)


def parser() -> argparse.ArgumentParser:
    """The command line (also used by the compose test to check docker-compose.yml's arguments)."""
    ap = argparse.ArgumentParser(prog="python -m demo.traffic", description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="demo service base URL")
    ap.add_argument("-n", "--requests", type=int, default=1000, help="how many requests (bounded)")
    ap.add_argument("-c", "--concurrency", type=int, default=16)
    ap.add_argument("--rate", type=float, default=0.0, help="requests/s cap; 0 = as fast as possible")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-id", default=None, help="request id prefix (default: random)")
    ap.add_argument("--burst", type=int, default=0, help="consecutive requests forced to fail")
    ap.add_argument("--burst-at", type=float, default=0.5, help="where the burst starts (fraction of the run)")
    ap.add_argument("--burst-status", type=int, default=500)
    ap.add_argument("--boom-rate", type=float, default=0.002, help="share of unhandled-exception requests")
    ap.add_argument("--ids-out", default=None, help="write one JSON line per request: request_id, status")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds to wait for /healthz first")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)

    if args.wait > 0:
        wait_ready(args.url, args.wait)
    plan = build_plan(
        args.requests, seed=args.seed, run_id=args.run_id, burst=args.burst, burst_at=args.burst_at,
        burst_status=args.burst_status, boom_rate=args.boom_rate,
    )
    summary = asyncio.run(drive(args.url, plan, concurrency=args.concurrency, rate=args.rate))
    if args.ids_out:
        with open(args.ids_out, "w", encoding="utf-8") as fh:
            for rid, status in summary.results:
                fh.write(json.dumps({"request_id": rid, "status": status}) + "\n")
    print(json.dumps(summary.as_dict()))
    return 1 if summary.transport_errors else 0


if __name__ == "__main__":
    sys.exit(main())
