"""PII scrubbing shared by emit (every record) and the tailer (every suspicious line).

Two costs dominate naive scrubbers: running every regex over every string, and walking
every record. Here a cheap *trigger* (a few C-speed checks) decides whether anything could
change (`suspicious`); only then does one combined *mask* regex run (one pass, the
match's group says which rule hit). Sensitive key names are decided once per key
and cached.

The tailer asks for every raw line, so the trigger has a batch form (`suspicious_many`,
`suspicious_indices`): one vectorised pass over the joined batch finds the few lines that
could hold anything (a numpy trigram prefilter plus a literal search for card-shaped digit
runs), and only those
get the per-line check, whose answer the batch form reproduces exactly.

Modes: ``redact`` replaces a finding with ``[REDACTED:kind]``; ``pseudonym`` replaces
it with ``[kind:<16 hex>]``, a keyed HMAC-SHA256, so the same email always maps to the
same token and records can still be correlated without exposing the value.
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from logpipe import fields as F
from logpipe import scrub_rules
from logpipe.scrub_rules import SENSITIVE_KEY_WORDS, TOKEN_PATTERN, WORD_KEYS

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from logpipe.config import ScrubConfig

__all__ = ["Scrubber", "ScrubKeyError", "SENSITIVE_KEY_WORDS", "check_patterns"]


class ScrubKeyError(RuntimeError):
    """Pseudonym mode without a key: refusing to fall back to a guessable one."""


_RULES: dict[str, str] = {name: pattern for name, pattern, *_ in scrub_rules.RULES}
_TOKEN_RE = re.compile(TOKEN_PATTERN)


# The trigger: a cheap superset of everything above, run on UTF-8 bytes. Python's `re` has
# no multi-literal prefilter (an alternation of keywords, worse with IGNORECASE, costs
# ~30 µs on a 500-byte line), so the line is first *folded* by one C-speed translate
# (A-Z -> a-z, digits -> '0', '-' and ' ' -> '_'), which lets a few case-sensitive,
# literal-led patterns cover every rule: '@' after a local-part character, a card-shaped
# digit run, '://', 'eyj' (JWT), '_____begin' (PEM), AWS key prefixes, and key words.
_FOLD = bytes(
    c + 32 if 65 <= c <= 90 else 48 if 48 <= c <= 57 else 95 if c in (32, 45) else c for c in range(256)
)
_AT = rb"@(?<=[\w.%+\x80-\xff]@)"
# Every card rule on the folded view: 13+ digits in a row, or 4-4..6-4 digit groups. A hit is
# only a candidate: `_has_card` then asks the card rule itself (with Luhn) on the real text, since
# random hex ids (uuid4().hex) hold 13-digit runs in ~3% of lines and a full record scrub is ~50 µs.
_CARD_SHAPE = rb"0000(?:0{9}|_0{4,6}_0000)"  # literal-led: re scans for "0000" at C speed
#: Key words (every sensitive key word and `name=value` rule name) and literal markers, as a
#: trie: fewer branch attempts per position than a flat alternation (measured ~2x faster).
_WORD_TRIE = (
    rb"a(?:uth|kia|sia|gpa|ida|roa|ipa|npa|nva|bia|cca)|p(?:assw|wd)|s(?:e(?:cret|ssion)|sn|ignature)"
    rb"|token|key|c(?:ookie|ard|vv|redential)|b(?:earer|asic)"
)
_MARKERS = (b"eyj", b"_____begin")
# URL userinfo needs '://' then '@' before the host ends; a bare '://' (every referer of a
# combined access line) is not enough to send a line down the slow path.
_USERINFO_HINT = rb"://[^/?#@\t\r\n]*@"
_USERINFO_RE = re.compile(_USERINFO_HINT)
# Per-rule guards used by scrub_text (each a subset of the trigger above).
_AWS_FOLDED = re.compile(rb"a(?:kia|sia|gpa|ida|roa|ipa|npa|nva|bia|cca)")
_KV_FOLDED = re.compile(rb"passw|pwd|secret|token|key|auth|signature|session|credential|ssn|cvv")
_JSON_ESCAPE = re.compile(r'\\[nrtbf"\\/]')  # \uXXXX is a `_RAW_HIDERS` case of its own
_SHORT = 160  # below this, one combined regex beats several C calls; above, the split is faster

# Raw-line escapes that hide a finding from byte checks but not from the parsed record: a JSON
# `\\u` escape (`"p\\u0061ssword"`), and the only two characters whose str.lower() (used on key
# names) holds ASCII: the Kelvin sign ('k') and U+0130 ('i' + a combining dot).
_RAW_HIDERS = (b"\\u", "\u212a".encode(), "\u0130".encode())

# ---- batch prefilter -------------------------------------------------------------------
# Python's `in` costs ~0.5 ns/byte per needle, so 20 needles over a batch cost more than the
# 1 µs/line budget. Instead one numpy gather classifies every *bigram* of the folded batch
# (two aligned uint16 views) and a trigram hits where bigram i starts one and bigram i+1 ends
# one. Each trigram below is a substring of a per-line trigger condition, so a line with no
# hit (and no card-shaped run) is clean; lines with hits get the exact per-line check.
_BATCH_TRIGRAMS: tuple[bytes, ...] = (
    b"://", b"eyj", b"beg",  # markers: URL userinfo, JWT, PEM '-----BEGIN'
    # key words: auth passw pwd secret session ssn signature token key cookie card cvv credential bearer basic
    b"uth", b"ssw", b"pwd", b"ecr", b"ssi", b"ssn", b"gna", b"tok", b"key", b"kie", b"car", b"cvv", b"ede",
    b"bea", b"sic",
    b"kia", b"sia", b"gpa", b"ida", b"roa", b"ipa", b"npa", b"nva", b"bia", b"cca",  # AWS key id prefixes
    "\u212a".encode(),  # Kelvin sign (see _RAW_HIDERS)
)
# Two-byte entries, any third byte: the `_AT` rule's '<local-part char>@', '\\u' and U+0130.
_BATCH_PAIRS: tuple[bytes, ...] = (
    *(bytes((c, 64)) for c in range(256) if re.fullmatch(rb"[\w.%+\x80-\xff]", bytes((c,)))),
    b"\\u", "\u0130".encode(),
)
_BATCH_MAX_DIRTY = 0.3
_LONG_LINE = 4096  # a single line this long is checked with the batch prefilter too (~3x faster)
_BATCH_MIN = 8  # fewer lines: numpy's fixed cost (~20 µs) outweighs the per-line checks


def _trigram_lut(grams: Iterable[bytes]) -> np.ndarray:
    """uint8[65536] indexed by a native-endian uint16 bigram: bit 0 = the first two bytes of
    some gram, bit 1 = its last two (every pair for a two-byte gram, whose third byte is free)."""
    import numpy as np  # here, not at module level: services import this module just to emit

    lut = np.zeros(65536, np.uint8)
    for g in grams:
        first = g[:2]
        lut[np.frombuffer(first, np.uint16)] |= 1  # frombuffer: the native byte order, as in the scan
        seconds = g[1:3] if len(g) == 3 else b"".join(bytes((g[1], c)) for c in range(256))
        lut[np.frombuffer(seconds, np.uint16)] |= 2
    return lut


# Regex syntax that ties a match to its surroundings (anchors, word boundaries, look-arounds).
_ANCHORS = re.compile(r"[\^$]|\\[AZbBG]|\(\?<?[=!]")

_MIN_FINDING = 5  # no built-in rule can match a shorter string ("pwd=x" is the shortest)



def luhn_ok(digits: str) -> bool:
    """Luhn checksum; lets order ids and timestamps that merely *look* like cards survive."""
    total = 0
    parity = len(digits) % 2
    for i, ch in enumerate(digits):
        d = ord(ch) - 48
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class Scrubber:
    """Masks PII in strings and records; construct once, reuse (it caches key decisions)."""

    def __init__(
        self,
        *,
        mode: str = "redact",
        key: bytes | None = None,
        extra_keys: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        allow_keys: Iterable[str] = (),
        mask_client_ip: bool = False,
        pattern_origin: str = "",
    ) -> None:
        """`pattern_origin` names where `extra_patterns` came from (config key and file), for the
        start-up error a pattern the core's regex engine cannot take raises."""
        if mode not in ("redact", "pseudonym"):
            raise ValueError(f"scrub mode must be 'redact' or 'pseudonym', got {mode!r}")
        if mode == "pseudonym" and not key:
            raise ScrubKeyError("pseudonym scrubbing needs a non-empty HMAC key")
        self.mode = mode
        self.mask_client_ip = mask_client_ip
        self._allow = frozenset(_norm_key(k) for k in allow_keys)
        extra_keys = tuple(_norm_key(k) for k in extra_keys if k)
        self._key_cache: dict[str, bool] = {}
        self._clean: set[str] = set()

        extras = [p for p in extra_patterns if p]
        where = pattern_origin or "scrub extra patterns"
        for i, pat in enumerate(extras):
            try:
                re.compile(pat)
            except re.error as exc:
                raise ValueError(f"invalid scrub pattern {pat!r} ({where}[{i}]): {exc}") from None
        # The rules themselves run in the core, from the one shared table (logpipe.scrub_rules).
        self.core = _new_core(key if mode == "pseudonym" else None, extra_keys, self._allow,
                              [(f"invalid scrub pattern {pat!r} ({where}[{i}])", pat) for i, pat in enumerate(extras)])
        self._card_rule = re.compile(_RULES["card"])  # the trigger's own card check (`_has_card`)
        self._custom = bool(extras)

        words = _WORD_TRIE
        for k in extra_keys:
            words += b"|" + re.escape(k.encode("utf-8").translate(_FOLD))
        self._words_re = re.compile(words)
        self._card_re = re.compile(_CARD_SHAPE)
        self._at_re = re.compile(_AT)
        self._short_re = re.compile(
            b"|".join((_AT, _USERINFO_HINT, *(re.escape(m) for m in _MARKERS), words)))
        # Raw lines (JSON not yet parsed) also trip on escapes that hide a finding from these checks;
        # as extra alternatives they cost nothing (rare first bytes), unlike two more `in` passes.
        hiders = b"|".join(re.escape(h) for h in _RAW_HIDERS)
        self._raw_words_re = re.compile(words + b"|" + hiders)
        self._raw_short_re = re.compile(self._short_re.pattern + b"|" + hiders)
        self._extra_re = re.compile("|".join(f"(?:{p})" for p in extras)) if extras else None
        # An anchored custom pattern ("^EMP-\d{6}$") can match a parsed field but not the raw line
        # around it, so no byte check on the raw line can rule it out: every raw line is suspicious.
        self._extra_anchored = any(_ANCHORS.search(p.replace("[^", "[")) for p in extras)
        self._extra_keys: tuple[str, ...] | None = extra_keys
        self._batch_lut: np.ndarray | None = None  # built on first batch use
        # Recent share of flagged lines (moving average): when most lines need the exact check
        # anyway, the batch prefilter is pure overhead, so batches go line by line until it drops.
        self._dirty_share = 0.0

    def _build_batch_lut(self, extra_keys: tuple[str, ...]) -> np.ndarray | None:
        """The batch prefilter's table, or None when an extra key is too short to have a trigram
        (then batches are checked line by line)."""
        grams = list(_BATCH_TRIGRAMS) + list(_BATCH_PAIRS)
        if self.mask_client_ip:
            grams.append(b"_ip")  # 'client_ip' on the folded view
        for k in extra_keys:
            folded = k.encode("utf-8", "surrogatepass").translate(_FOLD)
            if len(folded) < 2 or b"\n" in folded:
                return None
            grams.append(folded[:3])
        return _trigram_lut(grams)

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_config(cls, cfg: ScrubConfig, source: str = "") -> Scrubber:
        """Build from the `[scrub]` TOML section (read from the file `source`, named in errors);
        pseudonym mode reads its key from the environment."""
        key: bytes | None = None
        if cfg.mode == "pseudonym":
            raw = os.environ.get(cfg.key_env, "")
            if not raw:
                raise ScrubKeyError(
                    f"scrub.mode = 'pseudonym' needs an HMAC key in the environment variable "
                    f"{cfg.key_env!r}, which is unset or empty"
                )
            key = raw.encode()
        return cls(mode=cfg.mode, key=key, extra_keys=cfg.extra_keys, extra_patterns=cfg.extra_patterns,
                   allow_keys=cfg.allow_keys, mask_client_ip=cfg.mask_client_ip,
                   pattern_origin=f"{source}: scrub.extra_patterns" if source else "scrub.extra_patterns")


    # ---------------------------------------------------------------- checks
    def suspicious(self, text: str) -> bool:
        """A few C-speed checks on a raw line: False guarantees scrub_record of its parse is a no-op."""
        return self.suspicious_bytes(text.encode("utf-8", "surrogatepass"))

    def suspicious_bytes(self, data: bytes) -> bool:
        """`suspicious` for an already-encoded line."""
        if len(data) >= _LONG_LINE and self._lut() is not None:  # a traceback: the batch prefilter wins
            return bool(self._prefiltered([data]))
        return self._exact(data)

    def _exact(self, data: bytes) -> bool:
        if self.mask_client_ip and b"client_ip" in data:
            return True
        return self._trigger(data, raw=True)

    def rendered_needs_scrub(self, data: bytes) -> bool:
        """Emit's check on its own rendered line: like `suspicious_bytes`, minus client_ip masking
        (which emit applies directly to the field)."""
        return self._trigger(data, raw=True)

    def suspicious_many(self, lines: Sequence[bytes | str]) -> list[bool]:
        """`suspicious`/`suspicious_bytes` for each line (str or bytes), exactly, but for a batch:
        one vectorised prefilter over the joined batch, and the per-line check only on the
        lines it flags. A clean 450-byte JSON access line costs ~1 µs this way, not ~4.5."""
        out = [False] * len(lines)
        for i in self.suspicious_indices(lines):
            out[i] = True
        return out

    def suspicious_indices(self, lines: Sequence[bytes | str]) -> list[int]:
        """Ascending indices of the lines `suspicious_many` flags (cheaper when most are clean)."""
        n = len(lines)
        if n < _BATCH_MIN or self._dirty_share > _BATCH_MAX_DIRTY or self._lut() is None:
            check = self.suspicious_bytes
            flagged = [i for i, d in enumerate(_encode_all(lines)) if check(d)]
        else:
            flagged = self._prefiltered(lines)
        if n >= _BATCH_MIN:
            self._dirty_share = (self._dirty_share + len(flagged) / n) / 2
        return flagged

    def screen_tables(self) -> tuple[bytes, bytes, list[bytes]] | None:
        """The batch prefilter's own tables for the native core's scrub screen (logpipe._core):
        (case fold, trigram table, card-shaped literals). A line none of them hits is one
        `suspicious_bytes` passes, so the core may skip it; the lines it flags come back here.
        None when no table can cover this configuration (custom patterns, a too-short key)."""
        if self._extra_re is not None:
            return None
        lut = self._lut()
        if lut is None:
            return None
        return _FOLD, lut.tobytes(), list(_CARD_LITERALS)

    def _lut(self) -> np.ndarray | None:
        """The batch prefilter's table (built on first use), or None if it cannot cover the config."""
        lut = self._batch_lut
        if lut is None and self._extra_keys is not None:
            lut = self._batch_lut = self._build_batch_lut(self._extra_keys)
            if lut is None:
                self._extra_keys = None  # a key too short for the prefilter: stay line by line
        return lut

    def _prefiltered(self, lines: Sequence[bytes | str]) -> list[int]:
        """Flagged indices via the prefilter over the joined lines, confirmed line by line."""
        lut = self._batch_lut
        assert lut is not None
        n = len(lines)
        joined, lengths = _join(lines)  # ends with two padding newlines: every bigram has a successor
        folded = joined.translate(_FOLD)
        positions = _trigram_hits(lut, folded)
        cards = _card_candidates(folded)
        hits: set[int] = set()
        if positions.size or cards:
            import numpy as np

            ends = np.cumsum(np.fromiter(lengths, np.int64, n) + 1)
            hits.update(np.searchsorted(ends, np.concatenate((positions, np.asarray(cards, np.int64))),
                                        side="right").tolist())
        exact = self._exact
        flagged = {i for i in hits if exact(_as_bytes(lines[i]))}
        if self._extra_re is not None:  # custom patterns may be anchored: never run on the batch
            trigger = self._trigger
            flagged.update(i for i in range(n) if i not in flagged and trigger(_as_bytes(lines[i]), True))
        return sorted(flagged)

    def _trigger(self, data: bytes, raw: bool = False) -> bool:
        """The per-line trigger; `raw` adds the JSON-escape hiders (a superset: never fewer hits)."""
        folded = data.translate(_FOLD)
        if len(folded) < _SHORT:
            if (self._raw_short_re if raw else self._short_re).search(folded) is not None:
                return True
        else:
            if self._at_re.search(folded) is not None or _USERINFO_RE.search(folded) is not None:
                return True
            for marker in _MARKERS:
                if marker in folded:
                    return True
            words = self._raw_words_re if raw else self._words_re
            if words.search(folded) is not None:
                return True
        if self._card_re.search(folded) is not None and self._has_card(data):
            return True
        extra = self._extra_re
        if extra is None:
            return False
        if raw and (self._extra_anchored or b"\\" in data):  # see __init__; an escape may hide a match
            return True
        return extra.search(data.decode("utf-8", "replace")) is not None

    def _has_card(self, data: bytes) -> bool:
        """Whether the card rule finds a Luhn-valid number in this text: the same test `_replace`
        makes, so a card-shaped run that is not a card (hex ids, order numbers) costs no scrub.
        On a raw JSON line this is a superset of the parsed values' findings: digits and the
        separators are never escaped, a string's edges ('"') are neither digits nor '.', and a
        `\\u` escape that could hide a digit sends the line down the slow path on its own."""
        card = self._card_rule
        text = data.decode("utf-8", "replace")
        if "\\" in text:  # a JSON escape's letter ("\\n") stands where the value has a separator
            text = _JSON_ESCAPE.sub(" ", text)
        for m in card.finditer(text):
            digits = m.group().replace(" ", "").replace("-", "")
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                return True
        return False

    def text_needs_scrub(self, text: str) -> bool:
        """Whether `scrub_text` could change this string (client_ip masking aside)."""
        return self._trigger(text.encode("utf-8", "surrogatepass"))

    _trigger_search = text_needs_scrub

    def is_sensitive_key(self, key: str) -> bool:
        """Whether values under this key name are redacted whatever they contain."""
        hit = self._key_cache.get(key)
        if hit is None:
            hit = self.core.is_sensitive_key(key) if _encodable(key) else self.core.is_sensitive_key(_pua(key)[0])
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
            self._key_cache[key] = hit
        return hit

    # ---------------------------------------------------------------- masking (in the core)
    def token(self, kind: str, value: str) -> str:
        """The replacement for one finding: a redaction marker or a keyed pseudonym."""
        if _encodable(value):
            return self.core.token(kind, value)
        if self.mode == "redact":
            return f"[REDACTED:{kind}]"
        return self.core.token(kind, value.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))

    def scrub_text(self, text: str) -> str:
        """Mask every pattern finding in one string (the core applies the shared rule table)."""
        try:
            return self.core.scrub_text(text)
        except UnicodeEncodeError:  # lone surrogates: scrubbed as private-use stand-ins (see _pua)
            mapped, back = _pua(text)
            return self.core.scrub_text(mapped).translate(back)

    def scrub_json(self, line: bytes) -> bytes | None:
        """`orjson.dumps(scrub_value(orjson.loads(line)))` in one native call, for a line orjson
        wrote (a trailing newline is kept), with a top-level client_ip masked as `scrub_record`
        would when `mask_client_ip` is on; None when the line is not one the core vouches for."""
        return self.core.scrub_json(line, self.mask_client_ip)

    def mask_ip(self, value: str) -> str:
        """Drop the host part: last octet of IPv4, last 80 bits of IPv6 (else scrub it as text)."""
        masked = self.core.mask_ip(value) if _encodable(value) else None
        return self.scrub_text(value) if masked is None else masked

    def _redact_value(self, key: str, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            if _TOKEN_RE.match(value):
                return value
            return self.token("secret", value) if self.mode == "pseudonym" else "[REDACTED]"
        if isinstance(value, int | float) and self.mode == "pseudonym":
            return self.token("secret", str(value))
        return "[REDACTED]"

    def scrub_value(self, value: Any) -> Any:
        """Scrub any JSON-like value (strings, numbers, nested dicts/lists); returns the result."""
        if isinstance(value, str):
            return self._scrub_str(value)
        if isinstance(value, dict):
            return self._scrub_dict(value)
        if isinstance(value, list):
            for i, item in enumerate(value):
                value[i] = self.scrub_value(item)
            return value
        if isinstance(value, tuple):
            return [self.scrub_value(v) for v in value]
        if type(value) is int and (value >= 10**12 or value <= -(10**12)):
            digits = str(abs(value))
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                return self.token("card", digits)
        return value

    def _scrub_str(self, text: str) -> str:
        """scrub_text with a cache of strings known to come out unchanged (field names, service
        names, user agents, earlier redaction markers repeat across records)."""
        clean = self._clean
        if text in clean or (len(text) < _MIN_FINDING and not self._custom):
            return text
        out = self.scrub_text(text) if self._trigger_search(text) else text
        if out is text or out == text:
            if len(clean) > 20_000:
                clean.clear()
            if len(text) <= 512:
                clean.add(text)
            return text
        return out

    def _scrub_dict(self, record: dict[Any, Any]) -> dict[Any, Any]:
        renames: list[tuple[Any, Any]] = []
        for key, value in record.items():
            if isinstance(key, str):
                if self.is_sensitive_key(key):
                    record[key] = self._redact_value(key, value)
                    continue
                new_key = self._scrub_str(key)
                if new_key != key:
                    renames.append((key, new_key))
            record[key] = self.scrub_value(value)
        for old, new in renames:
            record[new] = record.pop(old)
        return record

    def scrub_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """Scrub a record in place (and return it): key names, nested values, exception text, client_ip."""
        ip = record.get(F.CLIENT_IP)
        self._scrub_dict(record)
        if self.mask_client_ip and isinstance(ip, str) and ip:
            record[F.CLIENT_IP] = self.mask_ip(ip)
        return record


def check_patterns(patterns: Sequence[str], origin: str) -> None:
    """Raise ValueError naming `origin` (config key and file) for the first pattern Python's `re`
    or the core's regex engine cannot take: a start-up error, not a surprise on the first record."""
    Scrubber(extra_patterns=patterns, pattern_origin=origin)


def _as_bytes(line: bytes | str) -> bytes:
    return line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")


def _encode_all(lines: Sequence[bytes | str]) -> list[bytes]:
    return [_as_bytes(x) for x in lines]


def _join(lines: Sequence[bytes | str]) -> tuple[bytes, Iterable[int]]:
    """The lines joined by newlines as UTF-8, plus two padding newlines, and each line's encoded
    length (one encode for an all-str batch; per line only for non-ASCII text or mixed types)."""
    padded = [*lines, "", ""]
    try:
        return b"\n".join(padded[:-2] + [b"", b""]), map(len, lines)  # type: ignore[arg-type]
    except TypeError:
        pass
    try:
        text = "\n".join(padded)  # type: ignore[arg-type]
    except TypeError:
        data = _encode_all(lines)
        return b"\n".join([*data, b"", b""]), map(len, data)
    joined = text.encode("utf-8", "surrogatepass")
    if len(joined) == len(text):  # all ASCII: character counts are byte counts
        return joined, map(len, lines)
    data = _encode_all(lines)
    return joined, map(len, data)


#: Card-shaped runs on the folded view: 13 digits in a row, or '0000_0000' (4-4 groups).
_CARD_LITERALS = (b"0000000000000", b"0000_0000")


def _card_candidates(folded: bytes) -> list[int]:
    """Where a card-shaped run may start in a folded batch (a superset of `_CARD_SHAPE`): every
    13-digit run and every '0000_0000'. Plain `bytes.find` on literals: a regex over the batch
    stops at each of the many 4-digit runs (timestamps, ids) and costs ~0.4 µs per line."""
    out: list[int] = []
    for literal in _CARD_LITERALS:
        i = folded.find(literal)
        while i >= 0:
            out.append(i)
            i = folded.find(literal, i + len(literal))
    return out


def _nonzero(flags: np.ndarray) -> np.ndarray:
    """np.flatnonzero for a mostly-zero uint8 array, ~8x faster: scan it as uint64 words."""
    import numpy as np

    cut = len(flags) // 8 * 8
    words = np.flatnonzero(flags[:cut].view(np.uint64))
    found = [w * 8 + np.flatnonzero(flags[w * 8 : w * 8 + 8]) for w in words.tolist()]
    found.append(cut + np.flatnonzero(flags[cut:]))
    return np.concatenate(found)


class _ScanBuffers(threading.local):
    """Per-thread scratch arrays for `_trigram_hits`. Fresh ones cost more than the scan itself:
    at batch size they are mmap-ed and page-faulted in on every call (measured 2x slower)."""

    limit = 1 << 22  # bigrams; a bigger batch gets one-off arrays rather than pinning the memory

    def __init__(self) -> None:
        self.size = -1
        self.arrays: tuple[np.ndarray, ...] = ()

    def get(self, size: int) -> tuple[np.ndarray, ...]:
        import numpy as np

        if size > self.size:
            arrays = (np.empty(size, np.intp), *(np.empty(size, np.uint8) for _ in range(4)))
            if size > self.limit:
                return arrays
            self.size, self.arrays = size, arrays
        return self.arrays


_SCAN = _ScanBuffers()


def _trigram_hits(lut: np.ndarray, folded: bytes) -> np.ndarray:
    """Start offsets of every prefilter trigram in `folded` (which ends with two padding bytes)."""
    import numpy as np

    size = len(folded)
    even = np.frombuffer(folded, np.uint16, count=size // 2)  # bigrams at 0, 2, 4, ...
    odd = np.frombuffer(folded, np.uint16, count=(size - 1) // 2, offset=1)  # at 1, 3, 5, ...
    m = min(len(even) - 1, len(odd))
    idx, e, o, at_even, at_odd = (a[: len(even)] for a in _SCAN.get(len(even)))
    # take() would first convert uint16 indices into a fresh intp array: reuse one instead
    np.copyto(idx, even, casting="safe")
    lut.take(idx, out=e)
    np.copyto(idx[: len(odd)], odd, casting="safe")
    lut.take(idx[: len(odd)], out=o[: len(odd)])
    e, o, at_even, at_odd = e[: m + 1], o[:m], at_even[:m], at_odd[:m]
    np.right_shift(o, 1, out=at_even)
    at_even &= e[:m]  # trigram at 2k: bigram 2k starts it, bigram 2k+1 ends it
    np.right_shift(e[1:], 1, out=at_odd)
    at_odd &= o  # trigram at 2k+1: bigrams 2k+1 and 2k+2
    if not (at_even.any() or at_odd.any()):
        return np.empty(0, np.int64)
    return np.concatenate((_nonzero(at_even) * 2, _nonzero(at_odd) * 2 + 1))


def _norm_key(key: str) -> str:
    return key.lower().replace("-", "_").replace(" ", "_")


def _new_core(key: bytes | None, extra_keys: tuple[str, ...], allow: frozenset[str],
              extras: list[tuple[str, str]]) -> Any:
    """The native scrubber for this configuration, built from the shared rule table."""
    from logpipe import _core  # here, not at import: the CLI's start-up does not need it

    age = ".".join(unicodedata.unidata_version.split(".")[:2])
    try:
        return _core.ScrubCore(scrub_rules.RULES, extras, TOKEN_PATTERN, key,
                               [*SENSITIVE_KEY_WORDS, *extra_keys], list(WORD_KEYS), sorted(allow), age)
    except ValueError as exc:  # the message starts with the pattern's origin (key and file)
        raise ValueError(f"{exc} (the pattern compiles in Python's re but not in the core's regex engine)") \
            from None


def _encodable(text: str) -> bool:
    """Whether `text` has no lone surrogates (so it can cross into the core as UTF-8)."""
    return text.isascii() or not _SURROGATE.search(text)


_SURROGATE = re.compile("[\ud800-\udfff]")
_PUA_BASE = 0xE000  # lone surrogates U+D800+k stand in as U+E000+k: same classes in every rule


def _pua(text: str) -> tuple[str, dict[int, int]]:
    """`text` with lone surrogates mapped to private-use characters (which no rule treats
    differently: neither is a word character, digit or space), and the table mapping back.
    Private-use characters already in the text would be ambiguous: those map to U+FFFD."""
    back = {c: c - _PUA_BASE + 0xD800 for c in range(_PUA_BASE, _PUA_BASE + 0x800)}
    mapped = "".join(
        chr(ord(ch) - 0xD800 + _PUA_BASE) if "\ud800" <= ch <= "\udfff"
        else "\ufffd" if _PUA_BASE <= ord(ch) < _PUA_BASE + 0x800 else ch for ch in text)
    return mapped, back
