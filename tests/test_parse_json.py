"""JSON lines: logpipe's own records pass untouched, foreign JSON is normalised, bad JSON is kept."""

from __future__ import annotations

import re

import orjson
import pytest

from logpipe.parse import make_parser

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def parse(lines: list[str], **kw: str) -> list[dict]:
    return make_parser("json", **kw)(lines)


def test_logpipe_record_passes_through_unchanged() -> None:
    rec = {"@timestamp": "2026-11-24T06:50:49.123456Z", "level": "info", "logger": "app", "message": "hi",
           "service": "billing", "request_id": "r-1", "nested": {"a": [1, 2]}}
    (out,) = parse([orjson.dumps(rec).decode()], service="other")
    assert out == rec
    assert list(out) == list(rec)


def test_default_service_added_only_when_absent() -> None:
    out = parse(['{"@timestamp":"2026-11-24T06:50:49.123456Z","level":"info","message":"m"}',
                 '{"@timestamp":"2026-11-24T06:50:49.123456Z","message":"m","service":"mine"}'],
                service="nginx")
    assert [r["service"] for r in out] == ["nginx", "mine"]


@pytest.mark.parametrize(
    ("line", "ts", "level", "message"),
    [
        ('{"time": "2026-11-24T06:50:49.5+01:00", "lvl": "WARN", "msg": "a"}',
         "2026-11-24T05:50:49.500000Z", "warning", "a"),
        ('{"timestamp": "2026-11-24 06:50:49,123", "levelname": "ERROR", "message": "b"}',
         "2026-11-24T06:50:49.123000Z", "error", "b"),
        ('{"ts": 1764000000.25, "severity": "Info", "msg": "c"}',
         "2025-11-24T16:00:00.250000Z", "info", "c"),
        ('{"ts": 1764000000250, "level": 30, "msg": "pino ms"}',
         "2025-11-24T16:00:00.250000Z", "info", "pino ms"),
        ('{"asctime": "2026-11-24 06:50:49", "levelname": "CRITICAL", "event": "structlog style"}',
         "2026-11-24T06:50:49.000000Z", "critical", "structlog style"),
        ('{"@timestamp": "2026-11-24T06:50:49Z", "level": "DEBUG", "message": "d"}',
         "2026-11-24T06:50:49.000000Z", "debug", "d"),
        ('{"@timestamp": "2026-11-24T06:50:49.123456789-05:00", "level": "info", "message": "ns"}',
         "2026-11-24T11:50:49.123456Z", "info", "ns"),
    ],
)
def test_foreign_json_normalised(line: str, ts: str, level: str, message: str) -> None:
    (out,) = parse([line])
    assert out["@timestamp"] == ts
    assert out["level"] == level
    assert out["message"] == message
    assert "tags" not in out
    for alt in ("time", "lvl", "msg", "ts", "levelname", "severity", "asctime", "timestamp", "event"):
        assert alt not in out


def test_foreign_json_keeps_other_fields_and_puts_timestamp_first() -> None:
    (out,) = parse(['{"k": 1, "time": "2026-11-24T06:50:49Z", "msg": "x", "nested": {"a": null}}'])
    assert list(out)[0] == "@timestamp"
    assert out["k"] == 1 and out["nested"] == {"a": None}


def test_naive_json_time_uses_configured_zone() -> None:
    (out,) = parse(['{"time": "2026-07-01 12:00:00.000", "msg": "summer"}'], tz="Europe/Berlin")
    assert out["@timestamp"] == "2026-07-01T10:00:00.000000Z"


def test_missing_or_bad_timestamp_becomes_now_and_raw_value_is_kept() -> None:
    out = parse(['{"message": "no time"}', '{"@timestamp": "yesterday-ish", "message": "bad"}'])
    assert all(ISO.match(r["@timestamp"]) for r in out)
    assert out[1]["timestamp_raw"] == "yesterday-ish"


def test_string_traceback_becomes_exception_object() -> None:
    tb = 'Traceback (most recent call last):\n  File "a.py", line 1, in <module>\nKeyError: \'k\''
    (out,) = parse([orjson.dumps({"time": "2026-11-24T06:50:49Z", "msg": "x", "exc_info": tb}).decode()])
    assert out["exception"] == {"type": "KeyError", "message": "'k'", "stack": tb}
    assert "exc_info" not in out


@pytest.mark.parametrize("bad", ['{"a": 1', "[1, 2]", '"just a string"', "42", "null", "", "not json",
                                 '{"a": 1} trailing', "{\"a\": \"\x00\"}", "\x00\x00\x00"])
def test_bad_json_is_a_tagged_raw_record(bad: str) -> None:
    (out,) = parse([bad], service="svc")
    assert out["message"] == bad
    assert out["tags"] == ["_parse_failure"]
    assert out["service"] == "svc"
    assert ISO.match(out["@timestamp"])


def test_bom_and_crlf_are_tolerated() -> None:
    (out,) = parse(['\ufeff{"@timestamp": "2026-11-24T06:50:49.123456Z", "message": "bom"}\r'])
    assert out["message"] == "bom" and "tags" not in out


def test_batch_keeps_order_and_count_with_mixed_input() -> None:
    lines = [f'{{"message": "{i}"}}' if i % 3 else f"broken {i}" for i in range(30)]
    out = parse(lines)
    assert len(out) == 30
    assert [r["message"] for r in out] == [str(i) if i % 3 else f"broken {i}" for i in range(30)]


def test_unicode_and_replacement_chars_survive() -> None:
    (out,) = parse(['{"message": "caf\u00e9 \ufffd\ufffd \U0001f600", "level": "info", '
                    '"@timestamp": "2026-11-24T06:50:49.123456Z"}'])
    assert out["message"] == "caf\u00e9 \ufffd\ufffd \U0001f600"


def test_non_list_tags_become_a_list() -> None:
    out = parse(['{"@timestamp": "2026-11-24T06:50:49.123456Z", "message": "m", "tags": "billing"}',
                 '{"@timestamp": "2026-11-24T06:50:49.123456Z", "message": "m", "tags": ["a", "b"]}'])
    assert [r["tags"] for r in out] == [["billing"], ["a", "b"]]


def test_docker_json_file_lines() -> None:
    (out,) = parse(['{"log":"listening on :8080\\n","stream":"stderr","time":"2026-11-24T06:50:49.123456789Z"}'])
    assert out["message"] == "listening on :8080\n" and out["stream"] == "stderr"
    assert out["@timestamp"] == "2026-11-24T06:50:49.123456Z"
