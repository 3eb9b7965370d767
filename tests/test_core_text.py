"""The core's text road (logpipe._core.TextCore via logpipe.coreroute) against the plain reference
in tests/text_oracle.py: same records in the same order, same `_id`s, same scrubbed text, same
`_parse_failure` tags and counts, same tap views, over generated and adversarial access lines;
and the reference against the product's parser, so the three agree."""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe import _core
from logpipe.config import InputConfig
from logpipe.coreroute import CoreRoute
from logpipe.enrich import Enricher
from logpipe.parse import make_parser
from logpipe.parse.clf import ClfParser
from logpipe.scrub import Scrubber
from logpipe.tail.stream import Stream
from tests.core_oracle import python_tap, split, tap_view
from tests.text_oracle import FP, HOST, PATH, clf_record, reference_road

NOW = "2099-01-01T00:00:00.000000Z"
#: Formats TextCore parses line by line that `CoreRoute.applies` does not offer yet (their events
#: can span lines: the pipeline joins them first).
PYTHON_FORMATS = ("python", "python_short")
EXAMPLES = int(os.environ.get("LOGPIPE_CORE_EXAMPLES", "200"))
SCRUBBERS = {
    "redact": lambda: Scrubber(),
    "pseudonym+ip+keys": lambda: Scrubber(mode="pseudonym", key=b"k3y", mask_client_ip=True,
                                          extra_keys=["referrer", "employee_number"]),
    "off": lambda: None,
}

IPS = ["10.0.0.1", "2001:db8::1", "::1", "-", "fe80::1%eth0", "a\u00a0b", "é", "1.2.3.4,5.6.7.8"]
USERS = ["-", "frank", "bob@example.com", "ü", "\\", "-x"]
TIMES = ["10/Oct/2000:13:55:36 -0700", "24/Nov/2026:07:00:00 +0000", "29/Feb/2024:23:59:60 +0530",
         "29/Feb/2023:00:00:00 +0000", "10/oct/2000:13:55:36 -0700", "10/OCT/2000:13:55:36 +0000",
         "10/Oct/2000:13:55:36", "10/Oct/2000:13:55:36 +2400", "10/Oct/2000:13:55:36 +0099", "01/Jan/0001:00:00:00 +0100",
         "31/Dec/9999:23:59:59 -0100", "10/Oct/2000:13:55:36 Z", "10/Oct/2000:13:55:36 +05", "10/Oct/2000:13:55:36 +05:30",
         "1/Oct/2000:13:55:36 +0000", "10/Oct/2000:25:55:36 +0000", "10/Oct/2000:13:55:36X+0000",
         "10/Oct/２000:13:55:36 +0000", "10/Oct/2000:13:55:36 -0000", "00/Oct/2000:13:55:36 +0000", "x"]
REQUESTS = ["GET / HTTP/1.1", "get /a?b=c&d HTTP/2.0", "POST /api/users/1 HTTP/1.1", "GET /a", "-", "",
            "\\x16\\x03\\x01", 'GET /a\\"b HTTP/1.1', "GET /x\\\\ HTTP/1.1", "GET  /double HTTP/1.1",
            "GET /a HTTP/1.1 extra", "GET /a ", "PRI * HTTP/2.0", "GET /ünï HTTP/1.1", "G3T / HTTP/1.1",
            "GET /a?token=abc HTTP/1.1", "GET https://u:pw@h.example/ HTTP/1.1", "GET /\tx HTTP/1.1"]
STATUSES = ["200", "404", "099", "000", "999", "2000", "20", "abc", "٢٠٠"]
SIZES = ["0", "-", "2326", "007", "999999999999999999", "1234567890123456789", "12" * 13, "--", "12x", ""]
QUOTED = ["-", "", "https://shop.example/", "Mozilla/5.0 (X11)", 'a \\"quoted\\" ua', "back\\\\slash", "tail\\",
          "https://u:pw@h.example/", "mail bob@example.com", "card 4111 1111 1111 1111", "ünïcødé ☃", "x\"y"]
TAILS = ["", " 0.012", " 1.5  ", " 0.0001", " 1234567.5", " 1.", " x .5", ' "1.2.3.4" 0.250', " 12", " -",
         " 1.2.3", " 0.5 upstream", "\t0.5", " 999999.999", " 00000001.5", " 1e3", " .", "x"]


@st.composite
def access_line(draw: st.DrawFn) -> str:
    pick = draw
    ip = pick(st.sampled_from(IPS))
    line = f"{ip} {pick(st.sampled_from(['-', 'id']))} {pick(st.sampled_from(USERS))} [{pick(st.sampled_from(TIMES))}] "
    line += f'"{pick(st.sampled_from(REQUESTS))}" {pick(st.sampled_from(STATUSES))} {pick(st.sampled_from(SIZES))}'
    if pick(st.booleans()):  # combined
        line += f' "{pick(st.sampled_from(QUOTED))}" "{pick(st.sampled_from(QUOTED))}"'
    line += pick(st.sampled_from(TAILS))
    if pick(st.integers(0, 9)) == 0:  # a random cut or splice
        at = pick(st.integers(0, len(line)))
        line = line[:at] + pick(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
                                        max_size=4))
    return line


ADVERSARIAL = [
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
    '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 2326 "http://www.example.com/start.html" '
    '"Mozilla/4.08 [en] (Win98; I ;Nav)"',
    '::1 - - [24/Nov/2026:07:00:00 +0000] "\\x16\\x03\\x01\\x00" 400 157 "-" "-" 0.001',
    '10.0.0.1 - - [24/Nov/2026:07:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl" 0.012 "10.1.1.1" 0.010',
    "", "   ", "\t", "garbage",
    "2026-11-24 07:00:00,123 - app - INFO - a python line that a second chance takes",
    'INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK',
    '{"@timestamp":"2026-11-24T07:00:00.000001Z","level":"info","message":"json in an access log"}',
]


def core_road(block: Any, scrubber: Any, fmt: str, tz: str, service: str,
              tags: tuple[str, ...]) -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
    route = CoreRoute(_core, Enricher(HOST, scrubber), tap=True)
    assert route.usable and route.applies("combined" if fmt in PYTHON_FORMATS else fmt, block)
    stream = Stream(key="k", path=PATH, fp=FP,
                    input=InputConfig(paths=[PATH], service=service, tags=list(tags), tz=tz))
    parser = make_parser(fmt, tz=tz, service=service)
    counter = parser.__self__  # the _SecondChance whose `failed` counts the Python road's failures
    out = route.run(stream, fmt, parser, counter, block, 0, len(block))
    records = [orjson.loads(line) for line in out.ndjson.splitlines()]
    assert out.count == len(records)
    return records, out.parse_failures, out.tap


def assert_same(lines: list[str], scrubber_name: str, *, fmt: str = "combined", tz: str = "UTC",
                service: str = "", tags: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    block = split("".join(line + "\n" for line in lines).encode())
    with mock.patch("logpipe.parse.textfmt.now_iso", return_value=NOW):
        want, want_failed = reference_road(block, SCRUBBERS[scrubber_name](), NOW, fmt=fmt, tz=tz,
                                           service=service, tags=tags)
        got, failed, tap = core_road(block, SCRUBBERS[scrubber_name](), fmt, tz, service, tags)
    assert [list(r.items()) for r in got] == [list(r.items()) for r in want]
    assert failed == want_failed
    assert tap_view(tap) == tap_view(python_tap(want))
    return got


@pytest.mark.parametrize("scrubber_name", list(SCRUBBERS))
def test_adversarial_access_lines_match_the_reference(scrubber_name: str) -> None:
    got = assert_same(ADVERSARIAL, scrubber_name, service="web", tags=("nginx", "nginx"))
    assert got[0]["@timestamp"] == "2000-10-10T20:55:36.000000Z" and got[0]["remote_user"] == "frank"
    assert got[2]["status"] == 400 and "method" not in got[2]
    assert got[3]["duration_ms"] == 10.0
    assert sum("_parse_failure" in r.get("tags", ()) for r in got) == 1  # "garbage"; blank lines dropped


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(access_line() | st.sampled_from(ADVERSARIAL), min_size=1, max_size=10),
       scrubber_name=st.sampled_from(list(SCRUBBERS)), fmt=st.sampled_from(["combined", "common"]),
       tz=st.sampled_from(["UTC", "America/New_York"]), service=st.sampled_from(["", "web"]),
       tags=st.sampled_from([(), ("nginx",), ("a", "a")]))
def test_generated_access_lines_match_the_reference(lines: list[str], scrubber_name: str, fmt: str, tz: str,
                                                     service: str, tags: tuple[str, ...]) -> None:
    assert_same(lines, scrubber_name, fmt=fmt, tz=tz, service=service, tags=tags)


@settings(max_examples=EXAMPLES, deadline=None)
@given(line=access_line(), tz=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]))
def test_reference_is_the_product_parser(line: str, tz: str) -> None:
    """The reference and `logpipe.parse.clf.ClfParser` read every line alike (so the core, held to
    the reference, is held to the product)."""
    with mock.patch("logpipe.parse.textfmt.now_iso", return_value=NOW):
        (product,) = ClfParser(tz=tz).parse_batch([line])
    ref = clf_record(line, NOW, tz)
    if ref is None:
        assert product.get("tags") == ["_parse_failure"]
    else:
        assert list(product.items()) == list(ref.items())


def test_ids_and_offsets_are_the_python_roads() -> None:
    lines = [f'10.0.0.{i} - - [24/Nov/2026:07:00:0{i} +0000] "GET /{i} HTTP/1.1" 200 {i}' for i in range(3)]
    block = split("".join(line + "\n" for line in lines).encode())
    got, _, _ = core_road(block, None, "combined", "UTC", "", ())
    assert [r["_id"] for r in got] == [FP + "000000000000", FP + "000000000042", FP + "000000000084"]
    assert [(r["host"], r["log_file"], r["log_offset"]) for r in got] == [(HOST, PATH, 0), (HOST, PATH, 66),
                                                                          (HOST, PATH, 132)]


def test_referrer_urls_are_not_scrub_suspects_but_credentials_are() -> None:
    """Every combined line has `://` in its referrer: the core's screen lets those through unless
    the URL holds credentials, which the scrubber then masks."""
    clean = '1.2.3.4 - - [24/Nov/2026:07:00:00 +0000] "GET / HTTP/1.1" 200 5 "https://shop.example/a" "curl"'
    secret = clean.replace("https://shop", "https://me:pw@shop")
    block = split(f"{clean}\n{secret}\n".encode())
    _, slow, _, _ = _core.TextCore("combined", HOST, PATH, FP, "", [], Scrubber().screen_tables(), False, True).process(
        block.raw, 0, None)
    assert slow == [1]
    got = assert_same([clean, secret], "redact")
    assert "pw@" not in got[1]["message"] and got[0]["referrer"] == "https://shop.example/a"


def test_a_format_the_core_does_not_parse_is_refused() -> None:
    with pytest.raises(ValueError, match='no text format "yaml"'):
        _core.TextCore("yaml", HOST, PATH, FP, "", [], None, False, True)


def test_tap_views_carry_the_access_fields() -> None:
    line = '1.2.3.4 - - [24/Nov/2026:07:00:00 +0000] "post /a?x HTTP/1.1" 503 5 "-" "-" 0.250'
    _, _, tap = core_road(split(f"{line}\n".encode()), None, "combined", "UTC", "", ())
    assert (tap.methods, tap.paths, tap.status.tolist(), tap.durations.tolist()) == (["POST"], ["/a"], [503.0], [250.0])


PY_TIMES = ["2026-11-24 06:50:49,123", "2026-11-24T06:50:49.123456Z", "2026-11-24T06:50:49.123456789+01:00",
            "2026-11-24 06:50:49 -0530", "2026-11-24 06:50:49.1 Z", "2026-02-30 06:50:49,123", "2026-11-24 06:50:60,000",
            "2026-11-24T06:50:49.12345 Z", "2026-11-24 06:50:49,1234567890", "0001-01-01 00:00:00+01:00",
            "2026-11-24 06:50:49+2400", "2026-11-24 06:50:49,12", "2026-11-24 6:50:49,123", "2026-1l-24 06:50:49,123"]
PY_NAMES = ["app", "billing.api", "__main__", "INFO", "WARN", "a-b", "x:y", "é"]
PY_LEVELS = ["INFO", "WARNING", "WARN", "ERR", "CRIT", "EROR", "DBUG", "TRCE", "INFORMATION", "X", "info", "INFO  ",
             "INFO ", "I N"]
PY_FUNCS = ["", "main:12 - ", "<module>:1 - ", "_x1:007 - ", "f:99999999999999999999 - ", "1f:2 - ", "f: - ", "f:1 -"]
PY_MSGS = ["hello", "a - b - c", "", " ", "mail bob@example.com", "127.0.0.1 - GET /x - Status: 200 - Time: 0.5s",
           '127.0.0.1:5000 - "GET / HTTP/1.1" 200', "tab\there", "ünï", 'quote " and \\']


@st.composite
def python_line(draw: st.DrawFn) -> str:
    ts, level = draw(st.sampled_from(PY_TIMES)), draw(st.sampled_from(PY_LEVELS))
    name = f"{draw(st.sampled_from(PY_NAMES))} - " if draw(st.booleans()) else ""
    line = f"{ts} - {name}{level} - {draw(st.sampled_from(PY_FUNCS))}{draw(st.sampled_from(PY_MSGS))}"
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.text(max_size=3).filter(lambda t: "\n" not in t and "\r" not in t and "\x00" not in t))
    return line


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(python_line() | st.sampled_from(ADVERSARIAL), min_size=1, max_size=10),
       scrubber_name=st.sampled_from(list(SCRUBBERS)), fmt=st.sampled_from(PYTHON_FORMATS),
       tz=st.sampled_from(["UTC", "Europe/Paris"]), service=st.sampled_from(["", "web"]))
def test_generated_python_lines_match_the_python_road(lines: list[str], scrubber_name: str, fmt: str, tz: str,
                                                      service: str) -> None:
    assert_same(lines, scrubber_name, fmt=fmt, tz=tz, service=service)


def test_python_lines_the_core_renders() -> None:
    lines = ["2026-11-24 06:50:49,123 - billing.api - WARN - create_invoice:88 - slow db: 1.2s",
             "2026-11-24T07:00:00.5+01:00 - app - ERROR - a - b"]
    block = split("".join(line + "\n" for line in lines).encode())
    _, slow, _, tap = _core.TextCore("python", HOST, PATH, FP, "", [], None, True, True).process(block.raw, 0, None)
    assert slow == [] and tap == [{"level": "warning"}, {"level": "error"}]
    got = assert_same(lines, "off", fmt="python")
    assert got[0]["function"] == "create_invoice" and got[1]["@timestamp"] == "2026-11-24T06:00:00.500000Z"
