"""PII corpus: zero leaks in app.log, error.log, access.log and console; look-alikes survive."""

from __future__ import annotations

import base64
import copy
import json
import logging
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe import get_logger, request_context
from logpipe.config import ScrubConfig
from logpipe.emit.setup import setup_logging, shutdown_logging
from logpipe.middleware import WSGILoggingMiddleware
from logpipe.scrub import Scrubber, ScrubKeyError

_b64 = base64.b64encode

# (text containing a secret, the secret that must not appear anywhere afterwards)
CORPUS: list[tuple[str, str]] = [
    ("contact alice@example.com about it", "alice@example.com"),
    ("mail BOB.Smith+billing@mail.example.co.uk", "BOB.Smith+billing@mail.example.co.uk"),
    ("reply-to: j_doe99@sub.domain.io", "j_doe99@sub.domain.io"),
    ("user=chloé@exämple.org", "chloé@exämple.org"),
    ("visa 4111 1111 1111 1111 charged", "4111 1111 1111 1111"),
    ("visa 4111-1111-1111-1111 charged", "4111-1111-1111-1111"),
    ("pan=4111111111111111", "4111111111111111"),
    ("mc 5500 0000 0000 0004", "5500 0000 0000 0004"),
    ("amex 3782 822463 10005", "3782 822463 10005"),
    ("amex 378282246310005 ok", "378282246310005"),
    ("discover 6011111111111117.", "6011111111111117"),
    ("jcb 3530111333300000", "3530111333300000"),
    ("diners 30569309025904", "30569309025904"),
    ("maestro 6759649826438453", "6759649826438453"),
    ("19 digits 4111111111111111110", "4111111111111111110"),
    ("jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
     "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
    ("token eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhIn0.c2lnbmF0dXJlLXBhcnQ", "eyJpc3MiOiJhIn0"),
    ("Authorization: Bearer abcDEF123456ghiJKL789", "abcDEF123456ghiJKL789"),
    ("sent header bearer 0123456789abcdef0123", "0123456789abcdef0123"),
    ("Authorization: Basic " + _b64(b"admin:s3cr3t!").decode(), _b64(b"admin:s3cr3t!").decode()),
    ("proxy creds Basic " + _b64(b"svc:hunter22").decode() + " used", _b64(b"svc:hunter22").decode()),
    ("aws key AKIAIOSFODNN7EXAMPLE in env", "AKIAIOSFODNN7EXAMPLE"),
    ("temp creds ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAxyzSECRETKEYMATERIAL\n-----END RSA PRIVATE KEY-----",
     "MIIEowIBAAKCAQEAxyzSECRETKEYMATERIAL"),
    ("key: -----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49SECRET2\n-----END PRIVATE KEY----- loaded", "MIGHAgEAMBMGByqGSM49SECRET2"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUSECRET3 (truncated", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUSECRET3"),
    ("connecting to postgres://app:pgPassw0rd@db.internal:5432/main", "pgPassw0rd"),
    ("redis://:r3disS3cret@cache:6379/0", "r3disS3cret"),
    ("fetch https://deploy:ghp_tok3nValue@github.com/org/repo.git", "ghp_tok3nValue"),
    ("amqp://guest:guestPW77@rabbit/", "guestPW77"),
    ("GET /reset?token=resetTok123&next=/home", "resetTok123"),
    ("GET /login?user=x&password=plainPW456", "plainPW456"),
    ("callback?api_key=KEY-abc-789&x=1", "KEY-abc-789"),
    ("url /v1?apikey=zz99zz99zz", "zz99zz99zz"),
    ("webhook?secret=whsec_42abc", "whsec_42abc"),
    ("oauth?access_token=ya29.a0AfH6SMB", "ya29.a0AfH6SMB"),
    ("form body: password=hunter2 remember=1", "hunter2"),
    ('payload {"password": "jsonPW!x", "user": "u"}', "jsonPW!x"),
    ('payload {"api_key": "sk_live_51Habc"}', "sk_live_51Habc"),
    ("config db_password='quoted secret value'", "quoted secret value"),
    ("session=sess_8f7d6c5b4a", "sess_8f7d6c5b4a"),
    ("X-Api-Key: xk_live_12345678", "xk_live_12345678"),
    ("ssn: 078-05-1120", "078-05-1120"),
]

# Strings that look like PII but are not: they must come out unchanged.
LOOKALIKES: list[str] = [
    "order 4111111111111112 shipped",  # Luhn-invalid 16 digits
    "order-id 1234567890123456",
    "invoice INV-2026-000123",
    "uuid 550e8400-e29b-41d4-a716-446655440000",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    "at 2026-11-24T06:49:18.123456Z",
    "epoch 1732430958",
    "version 1.4.2 and v10.22.333",
    "ip 10.0.0.12 port 8080",
    "phone-like 555 0100",
    "amount 1250 cents, qty 3",
    "basic plan upgraded for customer",
    "the bearer of news",
    "tokenizer produced 512 tokens",
    "retina icon@2x asset",
    "decorator @app.route",
    "path /api/v1/users/42/orders/991",
]


def _secret_forms(secret: str) -> list[str]:
    forms = [secret]
    digits = secret.replace(" ", "").replace("-", "")
    if digits.isdigit():
        forms.append(digits)
    return forms


@pytest.mark.parametrize(("text", "secret"), CORPUS)
def test_scrub_text_masks_each_sample(text: str, secret: str) -> None:
    s = Scrubber()
    out = s.scrub_text(text)
    for form in _secret_forms(secret):
        assert form not in out, out
    assert s.scrub_text(out) == out  # idempotent: the tailer scrubs again
    assert s.suspicious(json.dumps({"message": text}))


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_survive(text: str) -> None:
    assert Scrubber().scrub_text(text) == text


def test_corpus_size() -> None:
    assert len(CORPUS) >= 40


SENSITIVE_KEYS = ["password", "db_password", "PASSWD", "x-api-key", "apikey", "api_key", "Authorization",
                  "cookie", "Set-Cookie", "session", "credit_card", "card_number", "cvv", "ssn", "private_key",
                  "client_secret", "refresh_token"]


def test_sensitive_keys_redacted_at_any_depth() -> None:
    rec = {k: f"val-{i}-leak" for i, k in enumerate(SENSITIVE_KEYS)}
    rec["nested"] = {"headers": [{"X-Api-Key": "nested-leak-1"}, {"Cookie": "nested-leak-2"}],
                     "inner": {"db": {"password": "nested-leak-3"}}}
    rec["session"] = {"id": "dict-leak"}
    rec["classname"] = "Widget"  # contains 'ssn' as a substring: not a sensitive name
    rec["author"] = "Ada"
    rec["max_count"] = 5
    out = Scrubber().scrub_record(copy.deepcopy(rec))
    text = orjson.dumps(out).decode()
    assert "leak" not in text
    assert out["classname"] == "Widget" and out["author"] == "Ada" and out["max_count"] == 5


def test_allow_extra_keys_and_patterns() -> None:
    s = Scrubber(extra_keys=["tenant_pin"], extra_patterns=[r"EMP-\d{6}"], allow_keys=["session"])
    rec = {"tenant_pin": "1234", "session": "visible", "msg": "employee EMP-123456 left"}
    out = s.scrub_record(rec)
    assert out["tenant_pin"] == "[REDACTED]" and out["session"] == "visible"
    assert out["msg"] == "employee [REDACTED:custom] left"
    assert s.suspicious('{"tenant_pin": 1}') and s.suspicious("EMP-000001")


def test_pseudonyms_are_keyed_and_stable() -> None:
    a = Scrubber(mode="pseudonym", key=b"k1")
    b = Scrubber(mode="pseudonym", key=b"k2")
    x1 = a.scrub_text("from alice@example.com")
    x2 = a.scrub_text("to alice@example.com again")
    assert "alice" not in x1 and x1.split()[-1] == x2.split()[1]
    assert a.scrub_text("bob@example.com") != a.scrub_text("alice@example.com")
    assert b.scrub_text("alice@example.com") != a.scrub_text("alice@example.com")
    assert a.scrub_text(x1) == x1


def test_pseudonym_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGPIPE_SCRUB_KEY", raising=False)
    with pytest.raises(ScrubKeyError, match="LOGPIPE_SCRUB_KEY"):
        Scrubber.from_config(ScrubConfig(mode="pseudonym"))
    monkeypatch.setenv("LOGPIPE_SCRUB_KEY", "k1")
    s = Scrubber.from_config(ScrubConfig(mode="pseudonym"))
    assert s.scrub_text("a@b.io") == Scrubber(mode="pseudonym", key=b"k1").scrub_text("a@b.io")


def test_client_ip_masking() -> None:
    s = Scrubber(mask_client_ip=True)
    assert s.scrub_record({"client_ip": "203.0.113.77"})["client_ip"] == "203.0.113.0"
    assert s.scrub_record({"client_ip": "2001:db8:85a3:1:2:3:4:5"})["client_ip"] == "2001:db8:85a3::"
    assert s.suspicious('{"client_ip":"203.0.113.77"}')
    assert not Scrubber().suspicious('{"client_ip":"203.0.113.77"}')


def test_bad_mode_and_pattern_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="mode"):
        Scrubber(mode="hash")
    with pytest.raises(ValueError, match="invalid scrub pattern"):
        Scrubber(extra_patterns=["(unclosed"])


_ALPHABET = st.sampled_from(list("0123456789 -@.:/?=&_abcdeyJAKIQ") + ["password", "token", "4111", "://",
                                                                       "Bearer ", "eyJ", "com"])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(_ALPHABET, max_size=40), n=st.integers(min_value=0, max_value=10**19), long=st.booleans())
def test_not_suspicious_means_scrub_is_a_no_op(parts: list[str], n: int, long: bool) -> None:
    s = Scrubber()
    pad = "GET /api/v1/items/42 served from cache in 12ms; " * 5 if long else ""  # exercise both code paths
    rec = {"message": pad + "".join(parts), "n": n, "nested": {"k": ["".join(reversed(parts))]}}
    line = orjson.dumps(rec).decode()
    if not s.suspicious(line):
        assert s.scrub_record(copy.deepcopy(rec)) == rec


def _wsgi_app(environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.mark.parametrize("schema", ["logpipe", "ecs"])
def test_corpus_never_reaches_any_output(tmp_path: Path, capsys: pytest.CaptureFixture[str], schema: str) -> None:
    app = WSGILoggingMiddleware(_wsgi_app)
    try:
        setup_logging(service="pii", log_dir=tmp_path, console="json", level="INFO", schema=schema)
        log = get_logger("pii")
        std = logging.getLogger("pii.std")
        for i, (text, _secret) in enumerate(CORPUS + [(x, "") for x in LOOKALIKES]):
            with request_context(request_id=f"r-{i}", user_id=text[:60]):
                log.info(text, sample=i)
                std.warning("note: %s", text, extra={"detail": {"list": [text], "deep": {"v": text}}})
                log.info("fields", payload=text, headers={"Authorization": text, "X-Trace": [text]})
                try:
                    raise ValueError(f"failed for {text}")
                except ValueError:
                    std.exception("request failed: %s", text)
                environ = {"REQUEST_METHOD": "POST", "PATH_INFO": f"/u/{text[:30]}", "QUERY_STRING": text,
                           "REMOTE_ADDR": "10.1.2.3", "HTTP_USER_AGENT": text, "wsgi.input": None}
                body = app(environ, lambda status, headers, exc_info=None: None)
                list(body)
                body.close()  # type: ignore[attr-defined]
    finally:
        shutdown_logging()
    console = capsys.readouterr().out
    outputs = {name: (tmp_path / name).read_text() for name in ("app.log", "error.log", "access.log")}
    outputs["console"] = console
    for name, text in outputs.items():
        assert text.count("\n") > 40, name
        for line in text.splitlines():
            json.loads(line)
        for _sample, secret in CORPUS:
            for form in _secret_forms(secret):
                assert form not in text, f"{secret!r} leaked into {name}"
    for look in LOOKALIKES:
        assert look in outputs["app.log"] and look in outputs["console"], look


class _Account:
    def __repr__(self) -> str:
        return "<Account owner=eve@example.com card=4111111111111111>"


def test_emit_scrubs_custom_objects_bytes_and_repeated_values(tmp_path: Path) -> None:
    import decimal

    try:
        setup_logging(service="pii", log_dir=tmp_path, console="off")
        log = get_logger("pii.objects")
        for _ in range(3):  # verdict caches must not let a later, dirty record through
            log.info("same message", ua="Mozilla/5.0 clean agent", n=1)
            log.info("same message", ua="Mozilla/5.0 clean agent", n=4111111111111111)
            log.info("same message", account=_Account(), raw=b"mail frank@example.com",
                     amount=decimal.Decimal("4111111111111111"), tags={"grace@example.com"})
            with request_context(user_id="heidi@example.com"):
                log.info("same message")
    finally:
        shutdown_logging()
    text = (tmp_path / "app.log").read_text()
    for secret in ("eve@example.com", "4111111111111111", "frank@example.com", "grace@example.com",
                   "heidi@example.com"):
        assert secret not in text
    assert text.count("Mozilla/5.0 clean agent") == 6
