"""The demo service and its traffic generator: what the stack's dashboards and e2e test rely on.

Runs the real FastAPI app in-process (httpx's ASGI transport) with logging into a temp dir,
so it is fast; tests/test_stack_e2e.py drives the same code over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # demo/ lives at the repo root

from demo import traffic  # noqa: E402
from demo.app import Settings, create_app  # noqa: E402


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture()
def logged_run(tmp_path: Path) -> tuple[traffic.Summary, list[traffic.Planned], Path]:
    from logpipe import shutdown_logging

    settings = Settings(log_dir=str(tmp_path), seed=7, error_rate=0.0, slow_rate=0.0, slow_ms=0.0,
                        service="demo-test")
    app = create_app(settings)
    plan = traffic.build_plan(300, seed=3, run_id="t1", burst=40, burst_at=0.5, burst_status=503,
                              boom_rate=0.02)
    try:
        summary = asyncio.run(traffic.drive("http://demo", plan, concurrency=8,
                                            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False)))
    finally:
        shutdown_logging()
    return summary, plan, tmp_path


def test_plan_is_bounded_deterministic_and_has_one_contiguous_burst() -> None:
    a = traffic.build_plan(1000, seed=5, run_id="x", burst=100, burst_at=0.3)
    b = traffic.build_plan(1000, seed=5, run_id="x", burst=100, burst_at=0.3)
    assert a == b and len(a) == 1000
    burst_positions = [i for i, p in enumerate(a) if p.burst]
    assert burst_positions == list(range(300, 400))
    assert all(p.params == {"fail": "500"} for p in a if p.burst)
    assert len({p.request_id for p in a}) == 1000
    # A burst at the very end still fits inside the run instead of spilling past it.
    tail = traffic.build_plan(50, burst=20, burst_at=0.99)
    assert sum(p.burst for p in tail) == 20 and tail[-1].burst
    with pytest.raises(ValueError):
        traffic.build_plan(10, burst=11)


def test_every_request_gets_one_access_record_with_its_route(logged_run) -> None:
    summary, plan, log_dir = logged_run
    assert summary.sent == 300 and summary.transport_errors == 0
    access = _records(log_dir / "access.log")
    by_id = Counter(r["request_id"] for r in access)
    assert set(by_id) == {p.request_id for p in plan}, "X-Request-ID from the generator must be honoured"
    assert set(by_id.values()) == {1}
    sent_status = dict(summary.results)
    routes = set()
    for rec in access:
        assert rec["status"] == sent_status[rec["request_id"]]
        assert rec["service"] == "demo-test"
        routes.add(rec["route"])
    # Path parameters show up as templates, never as raw ids.
    assert "/api/v1/users/{user_id}" in routes
    assert "/api/v1/workspaces/{workspace_id}/invoices/{invoice_id}" in routes
    assert not any(any(ch.isdigit() for ch in r.split("/")[-1]) for r in routes)
    # Context bound in the handler reaches the access record (Kibana can split traffic by workspace).
    invoices = [r for r in access if r["route"].startswith("/api/v1/workspaces/")]
    assert invoices and all(r["workspace_id"] == r["path"].split("/")[4] for r in invoices)
    users = [r for r in access if r["route"] == "/api/v1/users/{user_id}"]
    assert all(r["user_id"] == r["path"].rsplit("/", 1)[1] for r in users)


def test_burst_and_failures_are_visible_in_status_and_error_log(logged_run) -> None:
    summary, plan, log_dir = logged_run
    status = dict(summary.results)
    burst_ids = {p.request_id for p in plan if p.burst}
    assert {status[i] for i in burst_ids} == {503}
    boom_ids = {p.request_id for p in plan if p.path == "/api/v1/boom"}
    assert boom_ids and {status[i] for i in boom_ids} == {500}
    other_5xx = [i for i, s in status.items() if s >= 500 and i not in burst_ids | boom_ids]
    assert other_5xx == [], "with error_rate=0 only forced failures may answer 5xx"
    assert 422 in summary.statuses  # bad invoice amounts

    errors = _records(log_dir / "error.log")
    exc_types = Counter(str((r.get("exception") or {}).get("type")).rsplit(".", 1)[-1] for r in errors)
    assert exc_types["UpstreamTimeout"] == len(burst_ids)
    assert exc_types["RuntimeError"] == len(boom_ids), "an unhandled exception is logged once"


def test_app_records_share_the_request_context(logged_run) -> None:
    summary, plan, log_dir = logged_run
    app = [r for r in _records(log_dir / "app.log") if r.get("logger") == "demo.api"]
    ok_users = [p.request_id for p in plan if p.path.startswith("/api/v1/users/") and not p.burst]
    fetched = {r["request_id"] for r in app if r["message"] == "user fetched"}
    assert set(ok_users) == fetched


def test_bad_request_bodies_are_a_422_not_a_crash(tmp_path: Path) -> None:
    from logpipe import shutdown_logging

    app = create_app(Settings(log_dir=str(tmp_path), error_rate=0.0, slow_rate=0.0, slow_ms=0.0))

    async def send() -> list[int]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            url = "/api/v1/workspaces/ws-1/invoices"
            bodies = [b"not json", b"[1, 2]", b'{"amount_cents": true}', b'{"amount_cents": "5"}', b""]
            codes = [(await client.post(url, content=b)).status_code for b in bodies]
            codes.append((await client.post(url, json={"amount_cents": 250})).status_code)
            return codes

    try:
        codes = asyncio.run(send())
    finally:
        shutdown_logging()
    assert codes == [422, 422, 422, 422, 422, 201]
    rejected = [r for r in _records(tmp_path / "app.log") if r["message"] == "invoice rejected"]
    assert len(rejected) == 5 and all(r["workspace_id"] == "ws-1" for r in rejected)
