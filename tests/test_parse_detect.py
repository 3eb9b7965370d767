"""Format autodetection from a file's first lines (majority vote, raw when nothing fits)."""

from __future__ import annotations

import pytest

from logpipe.parse import detect_format, make_parser

SAMPLES = {
    "json": ['{"@timestamp": "2026-11-24T06:50:49.123456Z", "level": "info", "message": "a"}',
             '{"time": 1764000000, "msg": "b"}'],
    "python": ["2026-11-24 06:50:49,123 - app.db - INFO - connect:10 - connected",
               "2026-11-24 06:50:49,200 - app.api - ERROR - handle:42 - failed"],
    "python_short": ["2026-11-24 06:50:49,123 - INFO - started", "2026-11-24 06:50:49,124 - WARNING - slow"],
    "access_text": ["10.0.0.1 - GET /a - Status: 200 - Time: 0.010s", "10.0.0.2 - POST /b - Status: 500 - Time: 1.2s"],
    "common": ['127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326',
               '127.0.0.1 - bob [10/Oct/2000:13:55:37 -0700] "POST /x HTTP/1.0" 201 -'],
    "combined": ['127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326 "-" "curl/8"',
                 '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /y HTTP/1.0" 200 1 "http://a/" "UA" 0.002'],
    "uvicorn": ["INFO:     Started server process [4242]", "INFO:     Waiting for application startup.",
                'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK'],
    "raw": ["hello world", "some free text", "no structure here"],
}


@pytest.mark.parametrize("fmt", list(SAMPLES))
def test_each_format_is_detected(fmt: str) -> None:
    assert detect_format(SAMPLES[fmt] * 5) == fmt


@pytest.mark.parametrize("fmt", list(SAMPLES))
def test_detected_format_parses_its_own_sample_without_failures(fmt: str) -> None:
    records = make_parser(detect_format(SAMPLES[fmt]))(SAMPLES[fmt])
    assert not any("_parse_failure" in r.get("tags", []) for r in records)


def test_tracebacks_and_blank_lines_do_not_vote() -> None:
    lines = ["2026-11-24 06:50:49,123 - ERROR - failed", "Traceback (most recent call last):",
             '  File "a.py", line 1, in f', "    f()", "ValueError: x", "", "",
             "2026-11-24 06:50:50,000 - INFO - ok"]
    assert detect_format(lines) == "python_short"


def test_majority_wins_over_stray_lines() -> None:
    lines = SAMPLES["combined"] * 4 + ["garbage line", SAMPLES["json"][0]]
    assert detect_format(lines) == "combined"


def test_one_fitting_line_among_free_text_is_raw() -> None:
    lines = SAMPLES["raw"] * 3 + [SAMPLES["python_short"][0]]
    assert detect_format(lines) == "raw"


def test_combined_file_with_some_common_lines_is_combined() -> None:
    assert detect_format(SAMPLES["common"] * 3 + SAMPLES["combined"][:1]) == "combined"


def test_python_short_file_with_access_messages_is_python_short() -> None:
    lines = ["2026-11-24 06:50:49,123 - INFO - 10.0.0.1 - GET /a - Status: 200 - Time: 0.010s"] * 3 + [
        "2026-11-24 06:50:49,124 - INFO - started"]
    fmt = detect_format(lines)
    assert fmt == "python_short"
    rec = make_parser(fmt)(lines[:1])[0]
    assert rec["status"] == 200 and rec["path"] == "/a"


@pytest.mark.parametrize("lines", [[], [""], ["", "  "], ["\x00\x00\x00"], ["\ufffd\ufffd binary \x01\x02"]])
def test_empty_or_binary_samples_are_raw(lines: list[str]) -> None:
    assert detect_format(lines) == "raw"


def test_truncated_json_first_line_still_counts_as_json() -> None:
    lines = ['{"@timestamp": "2026-11-24T06:50:49.123456Z", "message": "cut of', *SAMPLES["json"]]
    assert detect_format(lines) == "json"


def test_trailing_newlines_and_crlf_in_sample() -> None:
    assert detect_format([line + "\r\n" for line in SAMPLES["python"]]) == "python"


def test_logging_cookbook_format_is_python() -> None:
    lines = ["2026-11-24 06:50:49,123 - simple_example - INFO - info message",
             "2026-11-24 06:50:49,124 - simple_example - WARNING - warn message"]
    assert detect_format(lines) == "python"


def test_access_text_file_with_a_stray_python_line_stays_access_text() -> None:
    lines = SAMPLES["access_text"] * 5 + SAMPLES["python_short"][:1]
    fmt = detect_format(lines)
    assert fmt == "access_text"
    assert not any("tags" in r for r in make_parser(fmt)(SAMPLES["access_text"]))
