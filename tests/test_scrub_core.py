"""The native scrubber (logpipe._core via logpipe.scrub.Scrubber) equals the Python oracle
(tests/scrub_reference.py) on generated and adversarial input: same text, same pseudonyms."""

from __future__ import annotations

import ipaddress

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scrub_reference import ReferenceScrubber, luhn_ok

from logpipe.config import ConfigError, load_config
from logpipe.scrub import Scrubber

KEY = b"k3y-for-tests"
CORE = {"redact": Scrubber(), "pseudonym": Scrubber(mode="pseudonym", key=KEY)}
REF = {"redact": ReferenceScrubber(), "pseudonym": ReferenceScrubber(key=KEY)}
modes = st.sampled_from(sorted(CORE))


def _card(valid: bool) -> st.SearchStrategy[str]:
    def build(body: str, sep: str) -> str:
        check = next(d for d in "0123456789" if luhn_ok(body + d) == valid)
        digits = body + check
        if not sep:
            return digits
        return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))
    return st.builds(build, st.text("0123456789", min_size=12, max_size=18), st.sampled_from(["", " ", "-"]))


_word = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", min_size=1, max_size=12)
_b64 = st.binary(min_size=3, max_size=30).map(lambda b: __import__("base64").b64encode(b).decode())
FRAGMENTS = st.one_of(
    st.builds(lambda a, b, t: f"{a}@{b}.{t}", _word, _word, st.sampled_from(["com", "io", "de", "x", "ü"])),
    _card(True), _card(False),
    st.ip_addresses().map(str),
    st.builds(lambda w, v: f"{w}={v}", st.sampled_from(["password", "api-key", "Token", "x_secret", "ssn", "pwd",
                                                         "authorization", "SESSION_id", "privateKey"]), _word),
    st.builds(lambda w, v: f'"{w}": "{v}"', st.sampled_from(["password", "apiKey", "db.secret"]), _word),
    st.builds(lambda v: f"Bearer {v}", _word), st.builds(lambda v: f"basic {v}", _b64),
    st.builds(lambda v: f"Basic {v}", _word),
    st.builds(lambda a, b: f"eyJ{a}.eyJ{b}.sig", _word, _word),
    st.builds(lambda p, r: p + r, st.sampled_from(["AKIA", "ASIA", "ACCA"]),
              st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=16, max_size=17)),
    st.builds(lambda u, p: f"https://{u}:{p}@host/x", _word, _word),
    st.just("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----"),
    st.just("-----BEGIN PRIVATE KEY-----\nunterminated"),
    st.sampled_from(["[REDACTED]", "[REDACTED:email]", "[email:0123456789abcdef]", "\\n", '\\"', "\\u0041",
                     "é", "\u0301", "\u212a", "\u0130", "\x1c", "\u3000", "１２３", "ß", "\u31350", "_", ".", "@@",
                     "://", "\n", "\t", " ", "=", ":", '"', "'"]),
    st.text(max_size=8),
)
texts = st.one_of(st.lists(FRAGMENTS, max_size=12).map("".join),
                  st.lists(FRAGMENTS, max_size=8).map(" ".join), st.text())


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, mode=modes)
@example(text="mail bob.smith@example.com, card 4111 1111 1111 1111", mode="pseudonym")
@example(text="Authorization: Bearer abcdefghijklmnop and password=hunter2", mode="redact")
@example(text="https://[REDACTED:userinfo]@h x@y.co 4111111111111111.5", mode="redact")
@example(text="ab\x1cpassword=x\x1cq", mode="redact")
def test_scrub_text_equals_reference(text: str, mode: str) -> None:
    assert CORE[mode].scrub_text(text) == REF[mode].scrub_text(text)


@settings(max_examples=300, deadline=None)
@given(key=st.text(max_size=30), mode=modes)
@example(key="User-Password", mode="redact")
@example(key="x\u212aey", mode="redact")
@example(key="ssn\n", mode="redact")
@example(key="classname", mode="redact")
def test_sensitive_keys_equal_reference(key: str, mode: str) -> None:
    assert CORE[mode].is_sensitive_key(key) == REF[mode].is_sensitive_key(key)


@settings(max_examples=200, deadline=None)
@given(value=st.text(), kind=st.sampled_from(["email", "card", "secret"]))
def test_pseudonyms_equal_reference(value: str, kind: str) -> None:
    assert CORE["pseudonym"].token(kind, value) == REF["pseudonym"].token(kind, value)
    assert CORE["redact"].token(kind, value) == f"[REDACTED:{kind}]"


_keys = st.one_of(st.sampled_from(["password", "msg", "client_ip", "user_email", "auth", "x@y.com", "token",
                                   "bob@example.com", "ssn", "a@b.io", "n"]), st.text(max_size=6))
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
                     st.floats(allow_nan=False, allow_infinity=False), texts,
                     _card(True).map(lambda c: int(c.replace(" ", "").replace("-", ""))))
records = st.dictionaries(_keys, st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                                              | st.dictionaries(_keys, inner, max_size=3), max_leaves=8),
                          max_size=8)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rec=records, mode=modes, mask=st.booleans(), ip=st.one_of(st.ip_addresses().map(str), texts))
@example(rec={"a@b.io": 1, "b@c.io": 2, "x": "a@b.io"}, mode="redact", mask=False, ip="")
@example(rec={"password": 1.5e-7, "pwd": 10**16, "n": 4111111111111111}, mode="pseudonym", mask=False, ip="")
def test_scrub_json_equals_reference(rec: dict[str, object], mode: str, mask: bool, ip: str) -> None:
    if mask:
        rec["client_ip"] = ip
    line = orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE)
    core = Scrubber(mode=mode, key=KEY if mode == "pseudonym" else None, mask_client_ip=mask)
    assert core.scrub_json(line) == REF[mode].scrub_json(line, mask)


@settings(max_examples=300, deadline=None)
@given(ip=st.ip_addresses().map(str), pad=st.sampled_from(["", " ", "\t", "\x1f"]))
def test_ip_masking_equals_reference(ip: str, pad: str) -> None:
    masked = CORE["redact"].mask_ip(pad + ip + pad)
    assert masked == REF["redact"].mask_ip(pad + ip + pad)
    assert ipaddress.ip_address(masked)  # an address, with the host part gone


@settings(max_examples=100, deadline=None)
@given(text=texts, mode=modes)
def test_extra_patterns_and_keys_equal_reference(text: str, mode: str) -> None:
    key = KEY if mode == "pseudonym" else None
    opts = {"extra_keys": ("tenant-pin",), "extra_patterns": (r"EMP-\d{6}", r"(?i:ord#)\d+\b", r"x{,2}y$"),
            "allow_keys": ("session",)}
    core = Scrubber(mode=mode, key=key, **opts)  # type: ignore[arg-type]
    ref = ReferenceScrubber(key=key, **opts)  # type: ignore[arg-type]
    for t in (text, f"EMP-123456 {text} ord#77 xxy", "tenant_pin"):
        assert core.scrub_text(t) == ref.scrub_text(t)
    assert core.is_sensitive_key("Tenant-PIN") and not core.is_sensitive_key("Session")


def test_huge_strings_equal_reference() -> None:
    parts = ["word " * 5000, "a" * 100_000 + "@example.com", "1" * 50_000, "4111111111111111 " * 2000,
             "password=x&" * 3000, "-----BEGIN PRIVATE KEY-----" + "x" * 100_000]
    for mode in CORE:
        for text in parts:
            assert CORE[mode].scrub_text(text) == REF[mode].scrub_text(text)


def test_lone_surrogates_are_scrubbed_around() -> None:
    text = "bob@example.com \ud800 password=x"
    assert CORE["redact"].scrub_text(text) == REF["redact"].scrub_text(text)


def test_pattern_the_core_cannot_take_names_key_and_file(tmp_path) -> None:
    # Python's re takes the ASCII flag (?a); the core's engine does not: a start-up error that says
    # which key in which file, instead of a crash (or no scrubbing) on the first record.
    cfg = tmp_path / "logpipe.toml"
    cfg.write_text('[scrub]\nextra_patterns = ["EMP-\\\\d{6}", "(?a:\\\\w+)-secret"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "scrub.extra_patterns[1]" in str(err.value) and str(cfg) in str(err.value)


def test_pattern_python_cannot_take_is_an_error_too(tmp_path) -> None:
    cfg = tmp_path / "logpipe.toml"
    cfg.write_text('[scrub]\nextra_patterns = ["(unclosed"]\n')
    with pytest.raises(ConfigError, match=r"scrub.extra_patterns\[0\]"):
        load_config(cfg)
