"""Multi-line joining: tracebacks stay with their record, offsets cover whole events, caps hold."""

from __future__ import annotations

import pytest

from logpipe.config import MultilineConfig
from logpipe.parse import make_parser
from logpipe.parse.multiline import MultilineJoiner


def lines_of(text: str, base: int = 0) -> list[tuple[int, int, str]]:
    """(start, end, text) per line as the follower hands them over (end includes the newline)."""
    out, off = [], base
    for raw in text.encode().splitlines(keepends=True):
        out.append((off, off + len(raw), raw.decode().rstrip("\n")))
        off += len(raw)
    return out


def join_all(text: str, fmt: str = "python_short", **cfg: object) -> list[tuple[int, int, str, list[str]]]:
    j = MultilineJoiner(MultilineConfig(**cfg), fmt)  # type: ignore[arg-type]
    events = j.feed(lines_of(text))
    return events + j.flush()


TB = ("Traceback (most recent call last):\n"
      '  File "/srv/app.py", line 10, in handle\n'
      "    charge(card)\n"
      '  File "/srv/pay.py", line 3, in charge\n'
      '    raise pay.errors.CardDeclined("no funds")\n'
      "pay.errors.CardDeclined: no funds\n")
CHAINED = ("Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    d['k']\nKeyError: 'k'\n"
           "\nDuring handling of the above exception, another exception occurred:\n\n" + TB)


@pytest.mark.parametrize("fmt", ["raw", "uvicorn", "access_text"])
def test_traceback_joins_the_record_before_it(fmt: str) -> None:
    text = "first record\nsecond record failed\n" + TB + "third record\n"
    events = join_all(text, fmt)
    assert [e[2].split("\n")[0] for e in events] == ["first record", "second record failed", "third record"]
    assert events[1][2] == "second record failed\n" + TB.rstrip("\n")
    # offsets are contiguous and cover the file exactly
    assert events[0][0] == 0 and events[-1][1] == len(text.encode())
    for a, b in zip(events, events[1:], strict=False):
        assert a[1] == b[0]


def test_chained_traceback_is_one_event_and_parses() -> None:
    text = "2026-11-24 06:50:49,123 - ERROR - failed\n" + CHAINED + "2026-11-24 06:50:50,000 - INFO - ok\n"
    events = join_all(text, "python_short")
    assert len(events) == 2
    rec = make_parser("python_short")([events[0][2]])[0]
    assert rec["message"] == "failed"
    assert rec["exception"]["type"] == "pay.errors.CardDeclined"
    assert "During handling of the above exception" in rec["exception"]["stack"]


def test_chained_traceback_joins_without_timestamp_rule_too() -> None:
    events = join_all("boom\n" + CHAINED + "next\n", "raw")
    assert [e[2].split("\n")[0] for e in events] == ["boom", "next"]


def test_exception_group_lines_join() -> None:
    group = ("  + Exception Group Traceback (most recent call last):\n"
             '  |   File "x.py", line 2, in <module>\n'
             "  | ExceptionGroup: many (2 sub-exceptions)\n"
             "  +-+---------------- 1 ----------------\n"
             "    | ValueError: 1\n"
             "    +---------------- 2 ----------------\n"
             "    | TypeError: 2\n"
             "    +------------------------------------\n")
    events = join_all("ERROR:    task failed\n" + group + "INFO:     next\n", "uvicorn")
    assert len(events) == 2
    rec = make_parser("uvicorn")([events[0][2]])[0]
    assert rec["message"] == "task failed"
    assert rec["exception"]["type"] == "ExceptionGroup"


def test_bare_exception_name_line_ends_traceback() -> None:
    events = join_all("stopping\nTraceback (most recent call last):\n  File \"a\", line 1\nKeyboardInterrupt\nnext\n",
                      "raw")
    assert [e[2].split("\n")[-1] for e in events] == ["KeyboardInterrupt", "next"]


def test_a_word_colon_line_outside_a_traceback_starts_a_new_event() -> None:
    events = join_all("one\nNote: two\n", "raw")
    assert [e[2] for e in events] == ["one", "Note: two"]


def test_start_pattern_joins_every_non_matching_line() -> None:
    text = "[2026] a\ncontinued\nmore\n[2026] b\n"
    events = join_all(text, "raw", start_pattern=r"\[\d{4}\]")
    assert [e[2] for e in events] == ["[2026] a\ncontinued\nmore", "[2026] b"]


def test_invalid_start_pattern_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"\(unclosed"):
        MultilineJoiner(MultilineConfig(start_pattern="(unclosed"), "raw")


def test_json_is_never_joined_and_returned_immediately() -> None:
    j = MultilineJoiner(MultilineConfig(), "json")
    src = lines_of('{"a":1}\n  {"b":2}\nTraceback (most recent call last):\n')
    assert j.feed(src) == [(s, e, t, []) for s, e, t in src]
    assert j.pending_start is None and j.flush() == []


def test_nginx_lines_pass_straight_through() -> None:
    j = MultilineJoiner(MultilineConfig(), "combined")
    assert len(j.feed(lines_of("a\n b\n"))) == 2


def test_max_lines_cap_tags_and_splits() -> None:
    body = "".join(f"  line {i}\n" for i in range(9))
    events = join_all("head\n" + body, "raw", max_lines=4)
    assert [len(e[2].split("\n")) for e in events] == [4, 4, 2]
    assert events[0][3] == ["_multiline_capped"] and events[1][3] == ["_multiline_capped"]
    assert events[2][3] == []
    assert sum(len(e[2].split("\n")) for e in events) == 10


def test_max_bytes_cap() -> None:
    body = "".join(f"  {'x' * 97}\n" for i in range(10))  # 100-byte lines
    events = join_all("head\n" + body, "raw", max_bytes=350)
    assert all(e[1] - e[0] <= 350 for e in events)
    assert events[0][3] == ["_multiline_capped"]
    assert events[0][0] == 0 and events[-1][1] == 5 + 1000


def test_pending_and_quiet_timeout_bookkeeping(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("logpipe.parse.multiline.time.monotonic", lambda: clock[0])
    j = MultilineJoiner(MultilineConfig(), "python_short")
    assert j.pending_start is None and j.idle_for(clock[0]) == 0.0
    out = j.feed(lines_of("2026-11-24 06:50:49,123 - INFO - a\n", base=500))
    assert out == [] and j.pending_start == 500
    clock[0] = 101.5
    assert j.idle_for(clock[0]) == pytest.approx(1.5)
    j.feed([])  # an empty feed does not reset the quiet timer
    assert j.idle_for(102.0) == pytest.approx(2.0)
    (ev,) = j.flush()
    assert ev[:2] == (500, 500 + 35) and j.pending_start is None and j.flush() == []


def test_events_split_across_feeds_join_the_same() -> None:
    text = "2026-11-24 06:50:49,123 - ERROR - x\n" + TB + "2026-11-24 06:50:50,000 - INFO - y\n"
    src = lines_of(text)
    whole = join_all(text)
    for cut in range(len(src) + 1):
        j = MultilineJoiner(MultilineConfig(), "python_short")
        got = j.feed(src[:cut]) + j.feed(src[cut:]) + j.flush()
        assert got == whole


def test_trailing_blank_lines_stay_in_offsets_not_text() -> None:
    events = join_all("a\nTraceback (most recent call last):\n  File \"x\"\nE: e\n\n\nb\n", "raw")
    assert events[0][2].endswith("E: e") and events[0][1] == events[1][0]


def test_python_format_joins_untimestamped_message_lines() -> None:
    events = join_all("2026-11-24 06:50:49,123 - INFO - rows:\nid=1\nid=2\n2026-11-24 06:50:50,000 - INFO - done\n")
    assert [e[2] for e in events] == ["2026-11-24 06:50:49,123 - INFO - rows:\nid=1\nid=2",
                                      "2026-11-24 06:50:50,000 - INFO - done"]


def test_crlf_file_joins_and_parses_cleanly() -> None:
    text = ("2026-11-24 06:50:49,123 - ERROR - failed\r\nTraceback (most recent call last):\r\n"
            '  File "a.py", line 1, in f\r\nValueError: x\r\n2026-11-24 06:50:50,000 - INFO - ok\r\n')
    events = join_all(text, "python_short")
    assert len(events) == 2 and "\r" not in events[0][2]
    a, b = make_parser("python_short")([e[2] for e in events])
    assert a["message"] == "failed" and a["exception"]["message"] == "x" and b["message"] == "ok"


def test_python_format_does_not_swallow_other_writers_records() -> None:
    text = ("2026-11-24 06:50:49,123 - INFO - app started\n"
            'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK\n'
            "WARNING:root:basicConfig line\n"
            '{"message": "json from a library"}\n'
            "2026-11-24 06:50:50,000 - INFO - next\n")
    assert len(join_all(text, "python_short")) == 5
