"""The scrub oracle: a plain Python scrubber over the shared rule table (logpipe.scrub_rules).

Deliberately simple: every rule runs (no guards, no caches), with Python's `re`, in table order;
the replacement logic is spelled out once. The product's scrubber (`logpipe.scrub.Scrubber`,
a thin wrapper over the native core) must produce exactly what this produces.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
from typing import Any

import orjson

from logpipe.scrub_rules import RULES, SENSITIVE_KEY_WORDS, TOKEN_PATTERN, WORD_KEYS

TOKEN = re.compile(TOKEN_PATTERN)


def norm_key(key: str) -> str:
    return key.lower().replace("-", "_").replace(" ", "_")


def luhn_ok(digits: str) -> bool:
    total = 0
    parity = len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def looks_like_basic(value: str) -> bool:
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


class ReferenceScrubber:
    def __init__(self, *, key: bytes | None = None, extra_keys: tuple[str, ...] = (),
                 extra_patterns: tuple[str, ...] = (), allow_keys: tuple[str, ...] = ()) -> None:
        self.key = key
        self.allow = {norm_key(k) for k in allow_keys}
        words = [*SENSITIVE_KEY_WORDS, *(norm_key(k) for k in extra_keys if k)]
        self.key_re = re.compile("|".join(re.escape(w) for w in words) + "|"
                                 + "|".join(rf"(?:^|_){w}(?:_|$)" for w in WORD_KEYS))
        self.rules = [(name, re.compile(pattern), action, kind, re.compile(label) if label else None)
                      for name, pattern, action, kind, label, _needles in RULES]
        self.rules += [("custom", re.compile(f"(?:{p})"), "plain", "custom", None) for p in extra_patterns if p]

    def token(self, kind: str, value: str) -> str:
        if self.key is None:
            return f"[REDACTED:{kind}]"
        digest = hmac.new(self.key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return f"[{kind}:{digest[:16]}]"

    def scrub_text(self, text: str) -> str:
        for name, rx, action, kind, label in self.rules:
            text = rx.sub(lambda m, a=(name, action, kind, label): self._replace(m.group(), *a), text)
        return text

    def _replace(self, found: str, name: str, action: str, kind: str, label: re.Pattern[str] | None) -> str:
        if action == "card":
            digits = found.replace(" ", "").replace("-", "")
            return self.token(kind, digits) if 13 <= len(digits) <= 19 and luhn_ok(digits) else found
        if action == "userinfo":
            return found if TOKEN.match(found[:-1]) else self.token(kind, found[:-1]) + "@"
        if action == "labelled":
            assert label is not None
            lm = label.match(found)
            cut = lm.end() if lm else 0
            head, value = found[:cut], found[cut:]
            if name == "basic" and not looks_like_basic(value):
                return found
            return found if TOKEN.match(value) else head + self.token(kind, value)
        return self.token(kind, found)

    def is_sensitive_key(self, key: str) -> bool:
        norm = norm_key(key)
        return norm not in self.allow and self.key_re.search(norm) is not None

    def redact_value(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            if TOKEN.match(value):
                return value
            return "[REDACTED]" if self.key is None else self.token("secret", value)
        if isinstance(value, int | float) and self.key is not None:
            return self.token("secret", str(value))
        return "[REDACTED]"

    def scrub_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, list):
            return [self.scrub_value(v) for v in value]
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            renames = []
            for k, v in value.items():
                if self.is_sensitive_key(k):
                    out[k] = self.redact_value(v)
                    continue
                new = self.scrub_text(k)
                if new != k:
                    renames.append((k, new))
                out[k] = self.scrub_value(v)
            for old, new in renames:
                out[new] = out.pop(old)
            return out
        if type(value) is int and abs(value) >= 10**12:
            digits = str(abs(value))
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                return self.token("card", digits)
        return value

    def mask_ip(self, value: str) -> str:
        try:
            ip = ipaddress.ip_address(value.strip())
        except ValueError:
            return self.scrub_text(value)
        prefix = 24 if ip.version == 4 else 48
        return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)

    def scrub_json(self, line: bytes, mask_client_ip: bool = False) -> bytes:
        """What the emit writer writes for a rendered line: scrub every value, then mask client_ip."""
        rec = self.scrub_value(orjson.loads(line))
        if mask_client_ip and isinstance(rec, dict):
            ip = rec.get("client_ip")
            if isinstance(ip, str) and ip:
                rec["client_ip"] = self.mask_ip(ip)
        return orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE if line.endswith(b"\n") else 0)
