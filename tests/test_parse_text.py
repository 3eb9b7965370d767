"""Text formats: Python logging lines, access text, nginx/Apache, uvicorn, raw; time zones."""

from __future__ import annotations

import re

import pytest

from logpipe.parse import FORMATS, make_parser

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def one(fmt: str, text: str, **kw: str) -> dict:
    (rec,) = make_parser(fmt, **kw)([text])
    return rec


def test_formats_listed_and_unknown_rejected_by_name() -> None:
    assert set(FORMATS) == {"json", "python", "python_short", "access_text", "common", "combined", "uvicorn", "raw"}
    for fmt in FORMATS:
        make_parser(fmt)
    with pytest.raises(ValueError, match="'nope'"):
        make_parser("nope")
    with pytest.raises(ValueError, match="auto"):
        make_parser("auto")
    with pytest.raises(ValueError, match="Mars/Olympus"):
        make_parser("python", tz="Mars/Olympus")


def test_python_full_format() -> None:
    rec = one("python", "2026-11-24 06:50:49,123 - billing.api - WARNING - create_invoice:88 - slow db: 1.2s")
    assert rec == {"@timestamp": "2026-11-24T06:50:49.123000Z", "level": "warning", "logger": "billing.api",
                   "message": "slow db: 1.2s", "function": "create_invoice", "lineno": 88}


def test_python_full_format_module_function_and_dashes_in_message() -> None:
    rec = one("python", "2026-11-24 06:50:49,001 - __main__ - INFO - <module>:1 - a - b - c")
    assert rec["function"] == "<module>" and rec["message"] == "a - b - c" and rec["logger"] == "__main__"


def test_python_short_format_and_service_default() -> None:
    rec = one("python_short", "2026-11-24 06:50:49,123 - ERROR - payment failed", service="billing")
    assert rec == {"@timestamp": "2026-11-24T06:50:49.123000Z", "level": "error",
                   "message": "payment failed", "service": "billing"}


def test_python_short_with_access_message_gets_access_fields() -> None:
    rec = one("python_short", "2026-11-24 06:50:49,123 - INFO - 10.0.0.5 - GET /api/x?id=3 - Status: 404 - Time: 0.0421s")
    assert rec["method"] == "GET" and rec["path"] == "/api/x" and rec["status"] == 404
    assert rec["duration_ms"] == pytest.approx(42.1)
    assert rec["client_ip"] == "10.0.0.5"


def test_python_traceback_goes_to_exception_and_message_stays_first_line() -> None:
    text = ("2026-11-24 06:50:49,123 - app - ERROR - run:12 - job failed\n"
            "Traceback (most recent call last):\n"
            '  File "/srv/app/jobs.py", line 12, in run\n'
            "    do()\n"
            "app.errors.JobError: disk full: /var")
    rec = one("python", text)
    assert rec["message"] == "job failed"
    assert rec["level"] == "error"
    assert rec["exception"]["type"] == "app.errors.JobError"
    assert rec["exception"]["message"] == "disk full: /var"
    assert rec["exception"]["stack"].startswith("Traceback (most recent call last):")
    assert rec["exception"]["stack"].endswith("disk full: /var")


def test_chained_traceback_reports_the_last_exception() -> None:
    text = ("2026-11-24 06:50:49,123 - ERROR - boom\n"
            "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    d['k']\nKeyError: 'k'\n\n"
            "The above exception was the direct cause of the following exception:\n\n"
            "Traceback (most recent call last):\n  File \"a.py\", line 3, in g\n    f()\nRuntimeError: wrapped")
    rec = one("python_short", text)
    assert rec["message"] == "boom"
    assert rec["exception"]["type"] == "RuntimeError"
    assert rec["exception"]["message"] == "wrapped"
    assert "KeyError: 'k'" in rec["exception"]["stack"]


def test_multiline_message_without_traceback_is_kept_whole() -> None:
    rec = one("python_short", "2026-11-24 06:50:49,123 - INFO - line one\nline two")
    assert rec["message"] == "line one\nline two" and "exception" not in rec


def test_access_text() -> None:
    rec = one("access_text", "192.168.1.20 - POST /api/v1/orders?token=abc - Status: 201 - Time: 0.250s")
    assert rec["method"] == "POST" and rec["path"] == "/api/v1/orders" and rec["status"] == 201
    assert rec["duration_ms"] == 250.0 and rec["client_ip"] == "192.168.1.20"
    assert ISO.match(rec["@timestamp"])


COMMON = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
COMBINED = (COMMON + ' "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"')


@pytest.mark.parametrize("fmt", ["common", "combined"])
def test_common_line(fmt: str) -> None:
    rec = one(fmt, COMMON)
    assert rec["@timestamp"] == "2000-10-10T20:55:36.000000Z"
    assert (rec["method"], rec["path"], rec["status"], rec["bytes"], rec["client_ip"]) == (
        "GET", "/apache_pb.gif", 200, 2326, "127.0.0.1")
    assert rec["message"] == COMMON
    assert "duration_ms" not in rec and "user_agent" not in rec


def test_combined_line_with_request_time() -> None:
    rec = one("combined", COMBINED + " 0.153")
    assert rec["user_agent"] == "Mozilla/4.08 [en] (Win98; I ;Nav)"
    assert rec["referrer"] == "http://www.example.com/start.html"
    assert rec["duration_ms"] == 153.0
    rec = one("combined", COMBINED + ' "10.0.0.1, 10.0.0.2" 1.5')
    assert rec["duration_ms"] == 1500.0


def test_combined_dash_bytes_escaped_quotes_and_odd_requests() -> None:
    rec = one("combined", '10.0.0.9 - - [24/Nov/2026:06:50:49 +0000] "GET /q?x=\\"y\\" HTTP/1.1" 304 - "-" "curl/8.0 \\"x\\""')
    assert rec["bytes"] == 0 and rec["status"] == 304 and rec["user_agent"] == 'curl/8.0 \\"x\\"'
    assert rec["method"] == "GET" and rec["path"] == "/q"
    assert "referrer" not in rec
    rec = one("combined", '10.0.0.9 - - [24/Nov/2026:06:50:49 +0000] "\\x16\\x03\\x01\\x02" 400 150 "-" "-"')
    assert rec["status"] == 400 and "method" not in rec and "user_agent" not in rec and "tags" not in rec


def test_uvicorn_access_and_other_lines() -> None:
    parse = make_parser("uvicorn", service="api")
    a, b, c = parse(['INFO:     127.0.0.1:54321 - "GET /items/5?q=x HTTP/1.1" 200 OK',
                     'INFO:     ::1:40000 - "POST /login HTTP/1.1" 401 Unauthorized',
                     "WARNING:  Invalid HTTP request received."])
    assert (a["level"], a["method"], a["path"], a["status"], a["client_ip"], a["service"]) == (
        "info", "GET", "/items/5", 200, "127.0.0.1", "api")
    assert b["client_ip"] == "::1" and b["status"] == 401
    assert c == {"@timestamp": c["@timestamp"], "level": "warning", "message": "Invalid HTTP request received.",
                 "service": "api"}


def test_uvicorn_error_with_traceback() -> None:
    rec = one("uvicorn", "ERROR:    Exception in ASGI application\nTraceback (most recent call last):\n"
                         '  File "x.py", line 1, in app\nZeroDivisionError: division by zero')
    assert rec["message"] == "Exception in ASGI application"
    assert rec["exception"]["type"] == "ZeroDivisionError"


def test_raw_keeps_text() -> None:
    assert one("raw", "anything at all", service="s")["message"] == "anything at all"
    assert "tags" not in one("raw", "x")


@pytest.mark.parametrize("fmt", ["python", "python_short", "access_text", "common", "combined", "uvicorn"])
def test_non_matching_text_is_a_parse_failure(fmt: str) -> None:
    rec = one(fmt, "this line fits no format", service="svc")
    assert rec["message"] == "this line fits no format"
    assert rec["tags"] == ["_parse_failure"] and rec["service"] == "svc"
    assert ISO.match(rec["@timestamp"])


# -- time zones ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("tz", "local", "utc"),
    [
        ("UTC", "2026-11-24 06:50:49,123", "2026-11-24T06:50:49.123000Z"),
        ("Europe/Berlin", "2026-11-24 06:50:49,123", "2026-11-24T05:50:49.123000Z"),  # CET, +01
        ("Europe/Berlin", "2026-07-24 06:50:49,123", "2026-07-24T04:50:49.123000Z"),  # CEST, +02
        ("America/New_York", "2026-12-31 22:00:00,000", "2027-01-01T03:00:00.000000Z"),  # crosses a year
        ("Asia/Kolkata", "2026-11-24 06:50:49,999", "2026-11-24T01:20:49.999000Z"),  # +05:30
    ],
)
def test_naive_python_times_are_in_configured_zone(tz: str, local: str, utc: str) -> None:
    assert one("python_short", f"{local} - INFO - x", tz=tz)["@timestamp"] == utc


def test_explicit_offsets_win_over_configured_zone() -> None:
    rec = one("python_short", "2026-11-24T06:50:49.5+02:00 - INFO - x", tz="America/New_York")
    assert rec["@timestamp"] == "2026-11-24T04:50:49.500000Z"
    rec = one("combined", COMMON, tz="Asia/Tokyo")
    assert rec["@timestamp"] == "2000-10-10T20:55:36.000000Z"


def test_nginx_offsets_both_signs() -> None:
    line = '1.2.3.4 - - [01/Jan/2026:00:30:00 +0530] "GET / HTTP/1.1" 200 1'
    assert one("common", line)["@timestamp"] == "2025-12-31T19:00:00.000000Z"
    line = '1.2.3.4 - - [31/Dec/2025:23:30:00 -0100] "GET / HTTP/1.1" 200 1'
    assert one("common", line)["@timestamp"] == "2026-01-01T00:30:00.000000Z"


def test_time_cache_does_not_mix_fractions_within_a_second() -> None:
    parse = make_parser("python_short", tz="Europe/Berlin")
    out = parse([f"2026-11-24 06:50:49,{ms:03d} - INFO - x" for ms in (1, 500, 999)])
    assert [r["@timestamp"] for r in out] == ["2026-11-24T05:50:49.001000Z", "2026-11-24T05:50:49.500000Z",
                                              "2026-11-24T05:50:49.999000Z"]


def test_impossible_date_falls_back_to_now_not_an_error() -> None:
    rec = one("python_short", "2026-02-30 06:50:49,123 - INFO - feb 30")
    assert rec["message"] == "feb 30" and ISO.match(rec["@timestamp"])
    assert not rec["@timestamp"].startswith("2026-02-30")


def test_python_cookbook_format_without_function() -> None:
    rec = one("python", "2026-11-24 06:50:49,123 - simple_example - WARN - warn message")
    assert rec == {"@timestamp": "2026-11-24T06:50:49.123000Z", "level": "warning", "logger": "simple_example",
                   "message": "warn message"}


def test_python_short_line_is_not_mistaken_for_logger_name() -> None:
    for fmt in ("python", "python_short"):  # in a "python" file it is recognised as python_short
        rec = one(fmt, "2026-11-24 06:50:49,123 - WARNING - DB - slow")
        assert rec == {"@timestamp": "2026-11-24T06:50:49.123000Z", "level": "warning", "message": "DB - slow"}


def test_lines_of_another_known_format_get_a_second_chance() -> None:
    parse = make_parser("python_short", service="api")
    out = parse(["2026-11-24 06:50:49,123 - INFO - app line",
                 'INFO:     10.0.0.1:5000 - "GET /health HTTP/1.1" 200 OK',
                 '{"@timestamp": "2026-11-24T06:50:49.123456Z", "level": "info", "message": "json line"}',
                 "free text that fits nothing"])
    assert [r.get("status") for r in out] == [None, 200, None, None]
    assert out[2]["message"] == "json line" and "tags" not in out[2]
    assert out[3]["tags"] == ["_parse_failure"]
    assert all(r["service"] == "api" for r in out)


def test_json_records_already_tagged_parse_failure_are_kept_as_they_are() -> None:
    line = '{"@timestamp": "2026-11-24T06:50:49.123456Z", "message": "INFO:     x", "tags": ["_parse_failure"]}'
    out = make_parser("json")([line, "not json"])
    assert out[0]["message"] == "INFO:     x" and out[0]["tags"] == ["_parse_failure"]
    assert out[1]["tags"] == ["_parse_failure"]


def test_uvicorn_access_message_inside_python_format() -> None:
    rec = one("python", '2026-11-24 06:50:49,123 - uvicorn.access - INFO - 10.1.1.1:5555 - "GET /v1/x?a=1 HTTP/1.1" 503')
    assert (rec["logger"], rec["method"], rec["path"], rec["status"], rec["client_ip"]) == (
        "uvicorn.access", "GET", "/v1/x", 503, "10.1.1.1")


def test_multiline_exception_message_and_group_after_chain() -> None:
    text = ("2026-11-24 06:50:49,123 - ERROR - bad config\n"
            "Traceback (most recent call last):\n  File \"c.py\", line 1, in load\n"
            "ValueError: line one\nline two of the message\n\n"
            "During handling of the above exception, another exception occurred:\n\n"
            "  + Exception Group Traceback (most recent call last):\n"
            "  |   File \"c.py\", line 9, in main\n"
            "  | ExceptionGroup: startup failed (1 sub-exception)\n"
            "  +-+---------------- 1 ----------------\n"
            "    | OSError: disk\n"
            "    +------------------------------------")
    rec = one("python_short", text)
    assert rec["message"] == "bad config"
    assert (rec["exception"]["type"], rec["exception"]["message"]) == ("ExceptionGroup", "startup failed (1 sub-exception)")
    rec = one("python_short", text.split("\n\nDuring")[0])
    assert (rec["exception"]["type"], rec["exception"]["message"]) == ("ValueError", "line one\nline two of the message")


def test_dst_gap_and_overlap_hours_convert_without_error() -> None:
    parse = make_parser("python_short", tz="Europe/Berlin")
    gap, overlap = parse(["2026-03-29 02:30:00,000 - INFO - does not exist locally",
                          "2026-10-25 02:30:00,000 - INFO - happens twice locally"])
    assert gap["@timestamp"] == "2026-03-29T01:30:00.000000Z"  # read with the pre-transition offset
    assert overlap["@timestamp"] == "2026-10-25T00:30:00.000000Z"  # first occurrence


def test_padded_levelname() -> None:
    rec = one("python_short", "2026-11-24 06:50:49,123 - INFO     - padded with %(levelname)-8s")
    assert rec["level"] == "info" and rec["message"] == "padded with %(levelname)-8s"
    rec = one("python", "2026-11-24 06:50:49,123 - app - WARNING  - f:1 - m")
    assert rec["level"] == "warning" and rec["function"] == "f"
