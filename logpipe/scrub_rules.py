"""The scrub rule table: defined once, as data, for both the native core and the test oracle.

`logpipe.scrub.Scrubber` hands this table to the core at construction (`logpipe._core.ScrubCore`),
and the reference scrubber in tests/ runs the same patterns with Python's `re`, so the two can
never drift apart. Patterns are Python `re` syntax; the core rewrites the few escapes whose
meaning differs between the engines (see core/src/scrub_pyre.rs). Case-insensitive words are
spelled as ASCII classes (`[Bb][Ee]...`) rather than with `(?i)`: the engines fold non-ASCII
letters (the Kelvin sign, U+0130) differently, and these rules are meant to be ASCII anyway.

Each rule: (name, pattern, action, token kind, label pattern, guard).
- action `plain` replaces the match with a token of `kind`; `card` only when the digits pass
  Luhn; `userinfo` masks `user:pass` and keeps the `@`; `labelled` keeps the label matched by
  the label pattern (`Bearer `, `password=`) and masks the rest (`basic` also needs a value
  that decodes as base64 with a ':').
- guard: a plain regex in Rust `regex` syntax (no look-arounds)
  that every match of the rule contains; the core checks all guards in one pass and skips a
  rule whose guard does not occur. Empty: always run. The oracle ignores guards: they change
  the cost, never the result (tests/test_scrub_core.py checks that).
"""

from __future__ import annotations

__all__ = ["RULES", "SENSITIVE_KEY_WORDS", "WORD_KEYS", "TOKEN_PATTERN", "Rule"]

Rule = tuple[str, str, str, str, str, str]


def _ci(word: str) -> str:
    """ASCII case-insensitive spelling of a literal word."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


#: Key names (substring, case-insensitive, '-' treated as '_') whose values are redacted.
SENSITIVE_KEY_WORDS: tuple[str, ...] = (
    "password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "authorization",
    "cookie", "session", "credit_card", "creditcard", "card_number", "cardnumber", "cvv",
    "private_key", "privatekey", "credential",
)
#: Short words that would hit innocent names as substrings ("classname", "author"): only as a
#: whole '_'-separated part of the name.
WORD_KEYS: tuple[str, ...] = ("ssn", "auth")

_ASCII_SPACE = r"[ \t\n\r\x0b\x0c]"
_ASCII_WORD = r"A-Za-z0-9_"
# Names that mark a secret in `name=value` text (query strings, form bodies, prose).
_KV_WORDS = ("password", "passwd", "pwd", "secret", "token", f"{_ci('api')}[_\\-]?{_ci('key')}", "auth",
             "signature", "session", "credential", f"{_ci('private')}[_\\-]?{_ci('key')}", "ssn", "cvv")
_KV_NAME = (f"[{_ASCII_WORD}.\\-]*(?:" + "|".join(w if "[" in w else _ci(w) for w in _KV_WORDS)
            + f")[{_ASCII_WORD}.\\-]*")
_KV_GUARD = "(?i-u:passw|pwd|secret|token|key|auth|signature|session|credential|ssn|cvv)"
_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA")
_NOT_ASCII_WORD_BEFORE = f"(?<![{_ASCII_WORD}])"

#: Rules in the order they are applied. Each is anchored (look-behinds) so a failed attempt costs
#: O(run), not O(n^2).
RULES: tuple[Rule, ...] = (
    ("private_key", r"(?s:-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z))",
     "plain", "private_key", "", "-----BEGIN"),
    ("userinfo", r"(?<=://)[^\s/@:?#]*:[^\s/@?#]+@", "userinfo", "userinfo", "", "://"),
    ("jwt", r"(?<![\w-])eyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]*", "plain", "jwt", "", "eyJ"),
    ("bearer", f"{_NOT_ASCII_WORD_BEFORE}{_ci('bearer')}{_ASCII_SPACE}+[A-Za-z0-9._~+/\\-]{{8,}}=*",
     "labelled", "credential", f"^{_ci('bearer')}{_ASCII_SPACE}+", "(?i-u:bearer)"),
    ("basic", f"{_NOT_ASCII_WORD_BEFORE}{_ci('basic')}{_ASCII_SPACE}+[A-Za-z0-9+/]{{6,}}={{0,2}}",
     "labelled", "credential", f"^{_ci('basic')}{_ASCII_SPACE}+", "(?i-u:basic)"),
    ("aws_key", "(?<![A-Z0-9])(?:" + "|".join(_AWS_PREFIXES) + ")[A-Z0-9]{16}(?![A-Z0-9])",
     "plain", "aws_key", "", "|".join(_AWS_PREFIXES)),
    ("json_secret", f'"{_KV_NAME}"{_ASCII_SPACE}*:{_ASCII_SPACE}*"' + r'(?:[^"\\]|\\.)*',
     "labelled", "secret", f'^"[^"]*"{_ASCII_SPACE}*:{_ASCII_SPACE}*"', _KV_GUARD),
    ("secret_param", f"(?<![{_ASCII_WORD}.\\-]){_KV_NAME}{_ASCII_SPACE}*[=:]{_ASCII_SPACE}*"
     f"(?:\"[^\"]*\"|'[^']*'|(?:(?:{_ci('bearer')}|{_ci('basic')}){_ASCII_SPACE}+)?[^&\\s#;,\"']+)",
     "labelled", "secret", r"^[^=:]*[=:]\s*", _KV_GUARD),
    # guard: an email's '@' follows a local-part character, never '"' (so '"@timestamp"' is no hit)
    ("email", r"(?<![\w.%+\-])[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[^\W\d_]{2,}", "plain", "email", "", r'[^"]@'),
    # A card number stands apart: a digit run inside a longer token (a uuid4().hex request id
    # holds a Luhn-valid 13+ digit run ~0.3% of the time) is not one. '_' counts as a separator.
    ("card", r"(?<![^\W_])(?<![0-9]\.)(?:[0-9]{13,19}|[0-9]{4}[ \-][0-9]{4,6}[ \-][0-9]{4,5}(?:[ \-][0-9]{1,4})?)"
             r"(?![^\W_])(?!\.[0-9])", "card", "card", "", "[0-9]{13}|[0-9]{4}[ -][0-9]{4}"),
)

#: A value that already is a scrub token (`[REDACTED]`, `[REDACTED:email]`, `[email:<16 hex>]`):
#: left as it is, so scrubbing twice changes nothing.
TOKEN_PATTERN = r"^\[(?:REDACTED(?::[\w\-]+)?|[\w\-]+:[0-9a-f]{16})\]$"
