"""ECS JSON input maps back to logpipe names: reading `fields.to_ecs` output returns the record."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe import fields as F
from logpipe.parse import make_parser

RECORD = {
    "@timestamp": "2026-11-24T06:50:49.123456Z", "level": "error", "logger": "billing.api",
    "message": "payment failed", "service": "billing", "environment": "prod", "version": "1.4.2",
    "host": "web-1", "pid": 4242, "request_id": "r-1", "user_id": "u-7", "workspace_id": "ws-42",
    "method": "POST", "path": "/pay", "route": "/pay", "status": 502, "duration_ms": 1234.5,
    "client_ip": "10.0.0.1", "user_agent": "curl/8", "bytes": 12,
    "exception": {"type": "TimeoutError", "message": "upstream", "stack": "Traceback ..."},
    "invoice_id": 991, "tags": ["x"], "_id": "abc", "cart": {"items": 3},
}


def test_to_ecs_output_reads_back_as_the_record() -> None:
    (out,) = make_parser("json")([orjson.dumps(F.to_ecs(RECORD)).decode()])
    assert out == RECORD


def test_ecs_logging_style_document() -> None:
    doc = {"@timestamp": "2026-11-24T06:50:49.123Z", "log.level": "warn", "message": "slow",
           "ecs.version": "1.6.0", "log": {"logger": "app.db", "origin": {"function": "q"}},
           "service": {"name": "api"}, "host": {"hostname": "h1", "ip": ["10.0.0.2"]},
           "process": {"pid": 7, "thread": {"id": 1}}}
    (out,) = make_parser("json", service="fallback")([orjson.dumps(doc).decode()])
    assert out["@timestamp"] == "2026-11-24T06:50:49.123000Z"
    assert (out["level"], out["logger"], out["service"], out["host"], out["pid"]) == (
        "warning", "app.db", "api", "h1", 7)
    assert out["host.ip"] == ["10.0.0.2"]  # nothing is dropped
    assert out["log"] == {"origin": {"function": "q"}} and out["process"] == {"thread": {"id": 1}}
    assert "ecs" not in out and "ecs.version" not in out


scalars = st.one_of(st.integers(-10**6, 10**6), st.text(max_size=10), st.booleans())
names = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True).filter(
    lambda k: k not in F.ECS_MAP and k not in ("ecs", "labels", "tags"))


@settings(max_examples=100, deadline=None)
@given(st.fixed_dictionaries({}, optional={k: st.text(min_size=1, max_size=8) for k in (
    "logger", "service", "environment", "version", "host", "request_id", "user_id", "workspace_id",
    "method", "path", "route", "client_ip", "user_agent", "trace_id", "span_id")}),
    st.dictionaries(names, scalars, max_size=4), st.sampled_from(["debug", "info", "error"]))
def test_round_trip_property(known: dict, extra: dict, level: str) -> None:
    record = {"@timestamp": "2026-11-24T06:50:49.123456Z", "level": level, "message": "m", **known, **extra}
    (out,) = make_parser("json")([orjson.dumps(F.to_ecs(record)).decode()])
    assert out == record
