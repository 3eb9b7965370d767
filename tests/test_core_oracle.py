"""The native core (logpipe._core via logpipe.coreroute) against the Python road (tests/core_oracle.py):
same records in the same order, same `_id`s, same scrubbed text, same tags, same tap views, over
generated and adversarial JSON lines; and the core's splitter against logpipe.tail.lines."""

from __future__ import annotations

import json
import os
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe import _core
from logpipe.scrub import Scrubber
from logpipe.tail.lines import LineSplitter
from tests.core_oracle import FP, HOST, PATH, core_road, python_road, python_tap, split, tap_view

FROZEN = "2026-01-01T00:00:00.000000Z"
TS = ["2026-11-24T07:00:00.000001Z", "2026-11-24T07:00:00.00001Z", "2026-11-24T07:00:00.000001+00:00",
      "2026-11-24T07:00:00.00000éZ", "2026-11-24 07:00:00", 1764000000, None]
LEVELS = ["info", "error", "INFO", "Warn", "débug", "", "x1", "info\n", 3, None]
SECRETS = ["bob@example.com", "4111 1111 1111 1111", "4111111111111111", "4111111111111112", "Bearer abcdefgh12345678",
           "https://u:pw@h.example/x", "AKIAIOSFODNN7EXAMPLE", "password=hunter2", "eyJhbGciOi.eyJzdWIiOi.sig",
           "-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----", "a72f66004c0015082b2654420cbbeab0",
           "10.1.2.3", "ok", "tab\there", 'quote"d', "back\\slash", "ünïcødé ☃", "\u212aelvin", "ſecret"]
KEYS = ["host", "log_file", "log_offset", "_id", "service", "tags", "password", "token", "client_ip", "exception",
        "event.kind", "method", "status", "duration_ms", "path", "route", "user", "nested", "n", "api-key", "K"]

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=30)
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from(SECRETS), text)
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.sampled_from(KEYS) | text, inner, max_size=3)),
                     max_leaves=6)


@st.composite
def record_line(draw: st.DrawFn) -> str:
    rec: dict = {}
    for key, choices in (("@timestamp", TS), ("level", LEVELS), ("message", [*SECRETS, 7, None])):
        if draw(st.integers(0, 9)) > 0:
            rec[key] = draw(st.sampled_from(choices) | (text if key == "message" else st.nothing()))
    for _ in range(draw(st.integers(0, 4))):
        rec[draw(st.sampled_from(KEYS) | text)] = draw(value)
    if "tags" in rec and draw(st.booleans()):
        rec["tags"] = draw(st.lists(st.sampled_from(["a", "b", "_parse_failure"]), max_size=3))
    keys = list(rec)
    if draw(st.booleans()):
        keys = draw(st.permutations(keys))
    style = draw(st.sampled_from(["orjson", "ascii", "spaced"]))
    if style == "orjson":  # compact, non-ASCII as is (ints past 64 bits: json writes them the same way)
        return json.dumps({k: rec[k] for k in keys}, ensure_ascii=False, separators=(",", ":"))
    if style == "ascii":  # \\u escapes everywhere non-ASCII
        return json.dumps({k: rec[k] for k in keys})
    return json.dumps({k: rec[k] for k in keys}, ensure_ascii=False, separators=(" , ", " : "))


ADVERSARIAL = [
    "", "   ", "\t", "\x1c", "\u3000", "{}", "[]", "null", "{", "}", "not json", "\ufeff{\"message\": \"bom\"}",
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","a":1,"a":2}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","n":1e5}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","n":123456789012345678901}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","n":-0.0,"m":0.1}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m"} trailing',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m",}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","d":' + "[" * 80 + "]" * 80 + "}",
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","o":{"k":1,"k":2}}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"p\\u0061ssword=x"}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"id 1234\\n4111111111111111"}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","log_offset":5,"_id":"keep"}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","log_offset":5,"_id":""}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","host":"x","host2":"y"}',
    '  {"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m"}\t',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","exception":{"type":"E"}}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","status":"200","duration_ms":true}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","status":{"a":1}}',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"m","path":"/a\\"b\\\\c\\/d\\te"}',
]

SCRUBBERS = {
    "redact": lambda: Scrubber(),
    "pseudonym+ip+key": lambda: Scrubber(mode="pseudonym", key=b"k3y", mask_client_ip=True,
                                          extra_keys=["employee_number"], allow_keys=["token"]),
    "off": lambda: None,
}


def assert_same(lines: list[str], scrubber_name: str, service: str = "", tags: tuple[str, ...] = ()) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    block = split(data)
    with mock.patch("logpipe.parse.jsonfmt.now_iso", return_value=FROZEN):
        want = python_road(block, SCRUBBERS[scrubber_name](), service, tags)
        got, tap = core_road(_core, block, SCRUBBERS[scrubber_name](), service, tags)
    assert [list(r.items()) for r in got] == [list(r.items()) for r in want]
    assert tap_view(tap) == tap_view(python_tap(want))


@pytest.mark.parametrize("scrubber_name", list(SCRUBBERS))
def test_adversarial_lines_match_the_python_road(scrubber_name: str) -> None:
    good = '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"ok","host":"web-1","status":200}'
    assert_same([good, *ADVERSARIAL, good], scrubber_name, service="shop", tags=("k8s", "k8s", "x"))


@settings(max_examples=int(os.environ.get("LOGPIPE_CORE_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(record_line() | st.sampled_from(ADVERSARIAL) | text, min_size=1, max_size=12),
       scrubber_name=st.sampled_from(list(SCRUBBERS)), service=st.sampled_from(["", "shop"]),
       tags=st.sampled_from([(), ("k8s",), ("a", "a")]))
def test_generated_lines_match_the_python_road(lines: list[str], scrubber_name: str, service: str,
                                               tags: tuple[str, ...]) -> None:
    assert_same(lines, scrubber_name, service, tags)


def test_ids_are_pinned_over_a_fixed_corpus() -> None:
    """`_id` = fingerprint + 12 hex digits of the line's first byte: archives and indices written
    before the core must see the same ids after it."""
    lines = [f'{{"@timestamp":"2026-11-24T07:00:0{i}.000000Z","level":"info","message":"m{i}"}}' for i in range(3)]
    block = split("".join(line + "\n" for line in lines).encode())
    got, _ = core_road(_core, block, None)
    assert [r["_id"] for r in got] == [FP + "000000000000", FP + "00000000004b", FP + "000000000096"]
    assert [(r["host"], r["log_file"], r["log_offset"]) for r in got] == [(HOST, PATH, 0), (HOST, PATH, 75),
                                                                          (HOST, PATH, 150)]
    assert [r["_id"] for r in python_road(block, None)] == [r["_id"] for r in got]


def test_scrub_screen_sends_findings_to_the_scrubber() -> None:
    line = '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"mail bob@example.com card 4111111111111111"}'
    got, _ = core_road(_core, split((line + "\n").encode()), Scrubber())
    assert got[0]["message"] == "mail [REDACTED:email] card [REDACTED:card]"


@settings(max_examples=int(os.environ.get("LOGPIPE_CORE_EXAMPLES", "300")), deadline=None)
@given(parts=st.lists(st.sampled_from(["4111", "1111", "4111111111111111", " ", "-", "_", "x", "ab", "\\n", "bea",
                                       "rer ", "tok", "en=", "@", "bob", "://", "u:p@", "é", "0", "12345", '"', "{"])
                      | st.integers(0, 10**20).map(str), max_size=40),
       pad=st.integers(0, 9))
def test_scrub_screen_flags_every_line_the_scrubber_flags(parts: list[str], pad: int) -> None:
    """The screen is a superset of the scrubber's exact check, at every alignment of digit runs
    and trigrams (it skips digit-free 8-byte words): what it passes, the scrubber would leave."""
    scrubber = Scrubber()
    line = ("x" * pad + "".join(parts)).encode()
    asked: list[bytes] = []

    def confirm(lines: list[bytes]) -> list[bool]:
        asked.extend(lines)
        return [scrubber.suspicious_bytes(x) for x in lines]

    whole = b'{"message":' + json.dumps(line.decode()).encode() + b"}"
    _core.JsonCore(HOST, PATH, FP, "", [], scrubber.screen_tables(), False).process(whole, 0, confirm)
    if scrubber.suspicious_bytes(whole):
        assert asked == [whole]


# -- the splitter ---------------------------------------------------------------------------------
def python_lines(block) -> list[tuple]:
    return [(s, e, t, block.tags.get(s, [])) for s, e, t in zip(block.starts, block.ends, block.texts, strict=True)]


@settings(max_examples=int(os.environ.get("LOGPIPE_CORE_EXAMPLES", "300")), deadline=None)
@given(data=st.lists(st.sampled_from([b"a", b"b", b"{", b"\n", b"\r", b"\x00", b"\x00" * 30, b"\xff", b"\xc3",
                                      b"\xa9", b"\xe2\x98\x83", b"x" * 25, b"\r\n"]), max_size=60),
       cuts=st.lists(st.integers(0, 400), max_size=6), max_line=st.integers(1, 24), offset=st.integers(0, 10**6),
       finish=st.booleans())
def test_core_splitter_matches_the_python_splitter(data: list[bytes], cuts: list[int], max_line: int, offset: int,
                                                   finish: bool) -> None:
    blob = b"".join(data)
    bounds = sorted({0, len(blob), *(min(c, len(blob)) for c in cuts)})
    py, rs = LineSplitter(offset, max_line), _core.Splitter(offset, max_line)
    for a, b in zip(bounds, bounds[1:], strict=False):
        assert [tuple(x) for x in rs.feed(blob[a:b])] == python_lines(py.feed(blob[a:b]))
        assert (rs.offset, rs.consumed) == (py.offset, py.consumed)
    if finish:
        assert [tuple(x) for x in rs.finish()] == python_lines(py.finish())
        assert (rs.offset, rs.consumed) == (py.offset, py.consumed)
