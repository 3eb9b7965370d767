"""Bad input is data: no parser or joiner input ever raises, and nothing is lost."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.config import MultilineConfig
from logpipe.parse import FORMATS, make_parser
from logpipe.parse.multiline import MultilineJoiner

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

NASTY = [
    "", " ", "\x00", "a\x00b", "\ufffd" * 50, "\ud800 lone surrogate", "{" * 5000, "[" * 100000,
    '{"a": ' * 2000, "x" * 1_100_000, '{"message": "' + "y" * 1_100_000 + '"}',
    "2026-11-24 06:50:49,123 - INFO - " + "\x00" * 10, "9999-99-99 99:99:99,999 - INFO - x",
    "0000-01-01 00:00:00,000 - INFO - year zero", '1.1.1.1 - - [99/Foo/2000:99:99:99 +9999] "GET / HTTP/1.1" 200 1',
    '1.1.1.1 - - [01/Jan/0001:00:00:00 -2359] "GET / HTTP/1.1" 200 99999999999999999999999',
    '{"time": 1e308, "msg": "huge epoch"}', '{"ts": -1e20, "msg": "neg"}', '{"time": NaN}',
    '{"@timestamp": 5, "level": ["x"], "message": {"a": 1}}', '{"level": true, "time": false}',
    '{"exception": "Traceback (most recent call last):"}', '{"exc_info": 5}',
    "INFO:     - \"GET / HTTP/1.1\" 200 OK", "10.0.0.1 - GET /a - Status: 200 - Time: 1e400s",
    "Traceback (most recent call last):\n", "x\nTraceback (most recent call last):\n  |  +-+-+\n",
    "2026-11-24 06:50:49,123 - a - INFO - f:1 - m\nTraceback (most recent call last):\n",
    b'\xff\xfe{"message": "\xc3\x28 bad utf-8"}'.decode("utf-8", "replace"),
    b"2026-11-24 06:50:49,123 - INFO - \xed\xa0\x80 surrogate bytes".decode("utf-8", "replace"),
]


def _check(records: list[dict], texts: list[str]) -> None:
    assert len(records) == len(texts)
    for rec in records:
        assert isinstance(rec, dict)
        assert ISO.match(rec["@timestamp"]), rec["@timestamp"]
        assert "message" in rec


def test_nasty_inputs_never_raise_in_any_format() -> None:
    for fmt in FORMATS:
        parse = make_parser(fmt, tz="America/New_York", service="svc")
        records = parse(NASTY)
        _check(records, NASTY)
        for text, rec in zip(NASTY, records, strict=True):
            if "_parse_failure" in rec.get("tags", []):
                assert rec["message"] == text  # the raw text is shipped, not dropped


def test_huge_line_is_parsed_as_one_record() -> None:
    big = '{"@timestamp": "2026-11-24T06:50:49.123456Z", "message": "' + "z" * 5_000_000 + '"}'
    (rec,) = make_parser("json")([big])
    assert len(rec["message"]) == 5_000_000


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=20), st.sampled_from(FORMATS))
def test_any_text_any_format_gives_one_record_each(texts: list[str], fmt: str) -> None:
    _check(make_parser(fmt, service="s")(texts), texts)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
tricky_keys = st.sampled_from(["@timestamp", "time", "ts", "timestamp", "asctime", "level", "lvl", "severity",
                               "levelname", "msg", "message", "event", "exception", "exc_info", "log", "service"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(tricky_keys | st.text(max_size=8), json_values, max_size=8))
def test_any_json_object_normalises(obj: dict) -> None:
    import orjson

    try:
        line = orjson.dumps(obj).decode()
    except TypeError:
        return
    (rec,) = make_parser("json", tz="Asia/Kolkata")([line])
    assert ISO.match(rec["@timestamp"])
    assert "tags" not in rec or "_parse_failure" not in rec["tags"] or rec["message"] == line


line_text = st.sampled_from([
    "2026-11-24 06:50:49,123 - INFO - a", "Traceback (most recent call last):", '  File "a", line 1',
    "    code()", "ValueError: v", "KeyboardInterrupt", "", "During handling of the above exception, another",
    "plain", "  | ExceptionGroup: g", "[2026] start", "\x00", "\ufffd",
]) | st.text(max_size=40).map(lambda s: s.replace("\n", " ").replace("\r", " "))


@settings(max_examples=200, deadline=None)
@given(st.lists(line_text, max_size=40), st.sampled_from(FORMATS), st.integers(1, 6),
       st.sampled_from(["", r"\[\d+\]"]), st.lists(st.integers(0, 40), max_size=4))
def test_joiner_never_loses_or_reorders_lines(lines: list[str], fmt: str, max_lines: int, pattern: str,
                                              cuts: list[int]) -> None:
    src, off = [], 0
    for t in lines:
        n = len(t.encode()) + 1
        src.append((off, off + n, t))
        off += n
    j = MultilineJoiner(MultilineConfig(start_pattern=pattern, max_lines=max_lines, max_bytes=200), fmt)
    events = []
    prev = 0
    for cut in [*sorted(cuts), len(src)]:
        events += j.feed(src[prev:max(prev, cut)])
        prev = max(prev, cut)
    events += j.flush()
    # Offsets tile the input exactly, in order.
    pos = 0
    for start, end, _text, _tags in events:
        assert start == pos and end > start
        pos = end
    assert pos == off
    # Every non-blank line's text appears in its event, in order.
    joined = "\n".join(e[2] for e in events)
    at = 0
    for t in lines:
        if t.strip():
            at = joined.index(t, at)
