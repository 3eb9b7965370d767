"""The batch guard (`suspicious_many` / `suspicious_indices`) agrees exactly with the per-line guard,
and a clean verdict from either still means scrubbing would change nothing."""

from __future__ import annotations

import copy
import json
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.scrub import Scrubber
from tests.test_scrub_corpus import CORPUS, LOOKALIKES

CLEAN_ACCESS = {
    "@timestamp": "2026-11-24T07:15:27.029167Z", "level": "info", "logger": "logpipe.access",
    "message": "GET /api/v1/items/42 200", "service": "billing-api", "environment": "prod", "version": "1.4.2",
    "host": "web-1", "pid": 4242, "request_id": "b1c2d3e4f5a6b7c8", "user_id": "u-7", "workspace_id": "ws-42",
    "method": "GET", "path": "/api/v1/items/42", "route": "/api/v1/items/{id}", "status": 200, "duration_ms": 12.5,
    "client_ip": "10.1.2.3", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0",
    "bytes": 512,
}

SCRUBBERS = {
    "default": lambda: Scrubber(),
    "extra": lambda: Scrubber(extra_keys=["tenant_pin", "zq"], extra_patterns=[r"EMP-\d{6}", r"ORD#\d+"]),
    "anchored": lambda: Scrubber(extra_patterns=[r"^EMP-\d{6}$"]),
    "one_char_key": lambda: Scrubber(extra_keys=["q"]),
    "mask_ip": lambda: Scrubber(mask_client_ip=True),
    "allow": lambda: Scrubber(allow_keys=["session"], mode="pseudonym", key=b"k"),
}


def _clean_line(i: int) -> str:
    rec = dict(CLEAN_ACCESS, path=f"/api/v1/items/{i}", bytes=i * 7, duration_ms=i / 10)
    return orjson.dumps(rec).decode()


def _dirty_lines() -> list[str]:
    lines = [json.dumps({"message": text}) for text, _secret in CORPUS]
    lines += [orjson.dumps({"message": text}).decode() for text, _secret in CORPUS]
    lines += ['{"p\\u0061ssword": "hunter2"}', '{"to\u212aen": "abc"}', "EMP-123456", "order ORD#77",
              '{"tenant_pin": 1}', '{"zq": 2}', '{"client_ip": "203.0.113.9"}', "x@y.io", "eyJ", "AKIA", "q",
              "-----BEGIN", "Bearer x", "ends with @", "ends with \\u"]
    return lines + [json.dumps({"message": t}) for t in LOOKALIKES]


@pytest.mark.parametrize("name", sorted(SCRUBBERS))
def test_batch_agrees_with_per_line_on_random_mixes(name: str) -> None:
    sc = SCRUBBERS[name]()
    rnd = random.Random(name)
    dirty = _dirty_lines()
    long_clean = json.dumps({"message": "Traceback (most recent call last):\n" + "  File \"app.py\", line 9\n" * 500})
    dirty += [long_clean[:-2] + x + '"}' for x in ("a@b.io", "4111 1111 1111 1111", "token=x")]
    for size in (0, 1, 7, 8, 9, 50, 400):
        lines = [rnd.choice(dirty) if rnd.random() < 0.1 else _clean_line(rnd.randrange(10**6)) for _ in range(size)]
        lines[: size // 10] = [long_clean] * (size // 10)
        rnd.shuffle(lines)
        expected = [sc._exact(x.encode()) for x in lines]  # the per-line checks, no prefilter at all
        assert [sc.suspicious(x) for x in lines] == expected
        assert sc.suspicious_many(lines) == expected
        as_bytes = [x.encode() for x in lines]
        assert sc.suspicious_many(as_bytes) == expected
        assert [sc.suspicious_bytes(x) for x in as_bytes] == expected
        mixed = [x if i % 2 else x.encode() for i, x in enumerate(lines)]
        assert sc.suspicious_indices(mixed) == [i for i, flag in enumerate(expected) if flag]


def test_clean_access_lines_are_clean_and_each_dirty_line_is_found() -> None:
    sc = Scrubber()
    clean = [_clean_line(i) for i in range(1000)]
    assert not any(sc.suspicious_many(clean)) and not sc.suspicious(clean[0])
    for text, secret in CORPUS:
        line = orjson.dumps(dict(CLEAN_ACCESS, message=text)).decode()
        batch = clean[:500] + [line] + clean[500:]
        assert sc.suspicious_indices(batch) == [500], secret
        assert secret not in orjson.dumps(sc.scrub_record(orjson.loads(line))).decode()


def test_custom_patterns_cannot_be_hidden_by_anchors_or_escapes() -> None:
    anchored = Scrubber(extra_patterns=[r"^EMP-\d{6}$"])
    line = '{"EMP-123456": null}'
    assert anchored.scrub_record(json.loads(line)) != json.loads(line)
    assert anchored.suspicious(line) and anchored.suspicious_many([line] * 9) == [True] * 9
    plain = Scrubber(extra_patterns=[r"ORD#9/\d+"])
    line = '{"m": "ORD#9\\/42"}'  # raw "ORD#9\/42" parses to "ORD#9/42"
    assert plain.scrub_record(json.loads(line)) == {"m": "[REDACTED:custom]"}
    assert plain.suspicious(line) and plain.suspicious_many([line] * 9) == [True] * 9
    assert plain.suspicious_many([_clean_line(i) for i in range(20)]) == [False] * 20


def test_mostly_dirty_batches_switch_to_per_line_and_back() -> None:
    sc = Scrubber()
    dirty = [orjson.dumps(dict(CLEAN_ACCESS, message=f"mail u{i}@example.com")).decode() for i in range(100)]
    clean = [_clean_line(i) for i in range(100)]
    for _ in range(3):
        assert sc.suspicious_many(dirty) == [True] * 100
    assert sc._dirty_share > 0.3  # next batch goes line by line
    for _ in range(3):
        assert sc.suspicious_many(clean) == [False] * 100
    assert sc._dirty_share < 0.3  # and the prefilter is back


TRIGGER_WORDS = ["auth", "passw", "pwd", "secret", "session", "ssn", "signature", "token", "key", "cookie", "card",
                 "cvv", "credential", "bearer", "basic", "://u:p@", "eyj", "-----begin", "     begin", "a@", "0@", "_@", ".@",
                 "%@", "+@", "-@", " @", "\u00e9@", "\\u", "\u212a", "\u0130", " 4111 1111 1111 1111 ", " 4111-110000-0005 "]
TRIGGER_WORDS += [p + "a" for p in ("akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "abia", "acca")]


@pytest.mark.parametrize("word", TRIGGER_WORDS + [w.upper() for w in TRIGGER_WORDS])
def test_every_per_line_trigger_survives_the_batch_prefilter(word: str) -> None:
    sc = Scrubber(extra_keys=["tenant_pin"])
    clean = [_clean_line(i) for i in range(20)]
    for line in (f"x{word}x", orjson.dumps(dict(CLEAN_ACCESS, message=f"GET /{word}x")).decode()):
        for at in (0, 7, 20):
            batch = clean[:at] + [line] + clean[at:]
            assert sc.suspicious_many(batch) == [sc.suspicious(x) for x in batch]
    assert sc.suspicious(line)  # each word really is a per-line trigger


def test_card_shaped_ids_are_clean_but_luhn_valid_numbers_are_found() -> None:
    """uuid4().hex request ids hold 13-digit runs in ~3% of lines: only a Luhn-valid number
    (what the card rule would mask) may send a line to the record scrub."""
    sc = Scrubber()
    not_cards = ["022bc32021615022409a8a78909ff497", "order 4111111111111112", "4111 1111 1111", "1700000000123",
                 "c9ab6d699e994b958ed3380169733311"]  # a Luhn-valid run inside a hex id is not a card
    cards = ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "41111111110009"]
    for value in not_cards:
        line = orjson.dumps(dict(CLEAN_ACCESS, request_id=value)).decode()
        assert sc.scrub_record(orjson.loads(line)) == orjson.loads(line)  # really nothing to mask
        assert not sc.suspicious(line) and sc.suspicious_indices([_clean_line(1)] * 9 + [line]) == []
    for value in cards:
        for line in (orjson.dumps(dict(CLEAN_ACCESS, request_id=value)).decode(),
                     orjson.dumps(dict(CLEAN_ACCESS, bytes=int(value.replace(" ", "").replace("-", "")))).decode()):
            assert value not in orjson.dumps(sc.scrub_record(orjson.loads(line))).decode()
            assert sc.suspicious(line) and sc.suspicious_indices([_clean_line(1)] * 9 + [line]) == [9]


def test_a_json_escape_next_to_a_card_cannot_hide_it() -> None:
    sc = Scrubber()
    for sep in ("\n", "\t", '"', "\\", "/"):
        rec = dict(CLEAN_ACCESS, message=f"paid{sep}4111111111111111{sep}ok")
        line = orjson.dumps(rec).decode()
        assert sc.suspicious(line) and sc.suspicious_indices([_clean_line(1)] * 9 + [line]) == [9], repr(sep)
        assert "4111111111111111" not in orjson.dumps(sc.scrub_record(orjson.loads(line))).decode()


def test_json_escapes_cannot_hide_a_secret() -> None:
    sc = Scrubber()
    for rec in ({"password": "hunter2"}, {"toKen": "abc"}, {"db": {"api_key": "x"}},
                {"m": "mail \u00e9ve@example.com"}, {"m": "https://u:pw@host/"}):
        for line in (json.dumps(rec, ensure_ascii=True), json.dumps(rec, ensure_ascii=False).replace("/", "\\/")):
            line = line.replace("a", "\\u0061").replace("o", "\\u006f")
            parsed = json.loads(line)
            assert sc.scrub_record(copy.deepcopy(parsed)) != parsed
            assert sc.suspicious(line) and sc.suspicious_many([line] * 10) == [True] * 10


_PIECES = st.sampled_from(["ok", " ", "0", "4111", "1111", "-", "@", "example.com", "Bob", "token", "key", "eyJ",
                           "://", "a:b@", "Bearer ", "Basic ", "AKIA", "ABCDEFGHIJKLMNOP", "/api/v1/items/", "42",
                           "passw", "\u212a", "\u00e9", "\\", "\"", "\n", "ssn", "auth", "EMP-123456", "Ord#9"])
_TEXT = st.lists(_PIECES, max_size=16).map("".join)
_KEYS = st.one_of(st.sampled_from(["path", "msg", "db_password", "X-Api-Key", "classname", "author", "tenant_pin",
                                   "client_ip", "to\u212aen"]), _TEXT)
_VALUES = st.one_of(_TEXT, st.integers(min_value=-(10**19), max_value=10**19), st.none(), st.booleans())
_RECORDS = st.dictionaries(_KEYS, st.one_of(_VALUES, st.lists(_VALUES, max_size=3),
                                            st.dictionaries(_KEYS, _VALUES, max_size=3)), max_size=5)


@settings(max_examples=250, deadline=None)
@given(records=st.lists(_RECORDS, min_size=1, max_size=24), ascii_only=st.booleans(),
       name=st.sampled_from(sorted(SCRUBBERS)))
def test_batch_clean_verdict_means_scrub_is_a_no_op(records: list[dict], ascii_only: bool, name: str) -> None:
    sc = SCRUBBERS[name]()
    lines = [json.dumps(r, ensure_ascii=ascii_only) for r in records]
    flags = sc.suspicious_many(lines)
    assert flags == [sc.suspicious(x) for x in lines]
    for rec, line, flag in zip(records, lines, flags, strict=True):
        if not flag:
            assert sc.scrub_record(json.loads(line)) == rec
            assert sc.scrub_text(line) == line


def test_a_plain_referer_is_not_suspicious_but_userinfo_is() -> None:
    """Combined access lines carry a referer URL on every line: '://' alone must not send them
    down the slow path, while a URL with credentials still must."""
    sc = Scrubber()
    plain = ('10.0.0.1 - - [24/Nov/2026:07:00:00 +0000] "GET /api/items/42 HTTP/1.1" 200 512 '
             '"https://shop.example.com/cart?x=1" "Mozilla/5.0 (X11; Linux x86_64)" 0.012')
    leaked = plain.replace("https://shop", "https://bob:hunter2@shop")
    assert not sc.suspicious(plain)
    assert sc.suspicious(leaked)
    assert sc.suspicious_many([plain] * 20 + [leaked]) == [False] * 20 + [True]
    assert "hunter2" not in sc.scrub_text(leaked)
