"""Multi-line grouping in the core (`logpipe._core.Joiner` behind `MultilineJoiner`) against the
reference joiner in tests/multiline_oracle.py: the same events (offsets, text, capped tags) and
the same pending offset after every feed, over generated logs with tracebacks split across
chunks, for every format and for user start patterns; and a start pattern the core's regex
engine cannot take is a start-up error naming the key and the config file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpipe.config import MultilineConfig
from logpipe.parse.multiline import MultilineJoiner
from tests.multiline_oracle import ReferenceJoiner

EXAMPLES = int(os.environ.get("LOGPIPE_CORE_EXAMPLES", "300"))
FORMATS = ["python", "python_short", "raw", "uvicorn", "access_text", "combined", "json"]
PIECES = [
    "2026-11-24 07:00:00,123 - app - ERROR - boom", "2026-11-24 07:00:01 - INFO - short",
    "Traceback (most recent call last):", '  File "a.py", line 3, in <module>', "    raise ValueError('x')",
    "ValueError: bad", "KeyboardInterrupt", "pkg.mod.Error:", "pkg.mod.Error: with: colons", "not an: exc line",
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
    "", " ", "\t", "\r", "\u3000", "\x1c", "\u00a0x", "\u200bzero width", "   indented", "\tTabbed",
    "INFO:     127.0.0.1:5000 - \"GET / HTTP/1.1\" 200 OK", "WARN: x", "WARNING:x", '{"a":1}', "{a}",
    "continued message line", "١٢٣٤ arabic-indic digits", "²³ superscripts", "12ab", "1", "[1] start", "[x] no",
    "Ünïcode_Error: x", "_private.Error", "Eä\u0345x: mark", "ok\r", "x" * 40,
]
#: Start patterns are read by the core's regex engine, whose `\s` is Unicode White_Space: the
#: separators U+001C..U+001F, which Python's `re` also counts, are left out of those lines.
SEPARATORS = "\x1c\x1d\x1e\x1f"
PATTERNS = [r"\[\d+\]", r"\d{4}-", r"(?:INFO|ERROR)", r"[A-Z]+:", r"Trace", r"\S", r"$", r"(a|b)*c?"]

line = st.sampled_from(PIECES) | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
                                         max_size=12)


def feed_both(lines: list[str], cuts: list[int], fmt: str, cfg: MultilineConfig) -> None:
    core, ref = MultilineJoiner(cfg, fmt), ReferenceJoiner(cfg, fmt)
    assert core._core is not None or core.passthrough  # the core road is what runs here
    at, fed, got, want = 0, [], [], []
    for text in lines:
        end = at + len(text.encode()) + 1
        fed.append((at, end, text))
        at = end
    bounds = sorted({0, len(fed), *(c % (len(fed) + 1) for c in cuts)})
    for a, b in zip(bounds, bounds[1:], strict=False):  # chunks as reads hand them over
        got += core.feed(fed[a:b])
        want += ref.feed(fed[a:b])
        assert got == want
        assert core.pending_start == ref.pending_start
    got += core.flush()
    want += ref.flush()
    assert got == want
    assert core.pending_start is None and core.idle_for(1e12) == 0.0


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line, min_size=1, max_size=30), cuts=st.lists(st.integers(0, 40), max_size=4),
       fmt=st.sampled_from(FORMATS), max_lines=st.sampled_from([1, 2, 5, 500]),
       max_bytes=st.sampled_from([1, 60, 262_144]))
def test_builtin_rules_match_the_reference(lines: list[str], cuts: list[int], fmt: str, max_lines: int,
                                           max_bytes: int) -> None:
    feed_both(lines, cuts, fmt, MultilineConfig(max_lines=max_lines, max_bytes=max_bytes))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(line, min_size=1, max_size=20), cuts=st.lists(st.integers(0, 30), max_size=3),
       fmt=st.sampled_from(FORMATS), pattern=st.sampled_from(PATTERNS), max_lines=st.sampled_from([2, 500]))
def test_start_patterns_match_the_reference(lines: list[str], cuts: list[int], fmt: str, pattern: str,
                                            max_lines: int) -> None:
    lines = [t.translate({ord(c): "_" for c in SEPARATORS}) for t in lines]
    feed_both(lines, cuts, fmt, MultilineConfig(start_pattern=pattern, max_lines=max_lines))


def test_every_python_whitespace_and_digit_reads_as_python_reads_it() -> None:
    """The core's character classes are Python's (`str.isspace`, `isdigit`, `\\w`) for every code point
    that has one of them."""
    special = [chr(c) for c in range(0x110000)
               if chr(c).isspace() or chr(c).isdigit() or (chr(c).isalnum() and not chr(c).isascii() and c % 7 == 0)]
    lines = ["2026-11-24 07:00:00,123 - app - ERROR - boom", "Traceback (most recent call last):"]
    for ch in special:
        lines += [ch, ch * 4 + " x", f"E{ch}rr: x", "Traceback (most recent call last):"]
    feed_both(lines, [], "python", MultilineConfig(max_lines=10_000_000, max_bytes=1 << 40))
    feed_both(lines, [], "raw", MultilineConfig(max_lines=10_000_000, max_bytes=1 << 40))


@pytest.mark.parametrize("pattern", [r"(?<=\d)x", r"(\w)\1", r"(?=ERROR)"])
def test_a_start_pattern_the_core_cannot_take_is_a_start_up_error(tmp_path: Path, pattern: str) -> None:
    (tmp_path / "app.log").write_text("x\n")
    (tmp_path / "cfg.toml").write_text(
        f'[[inputs]]\npaths = ["app.log"]\nformat = "python"\n[inputs.multiline]\nstart_pattern = \'{pattern}\'\n')
    proc = subprocess.run([sys.executable, "-m", "logpipe", "tail", "--once", "--config", "cfg.toml", "--sink", "-"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "cfg.toml: inputs[0]" in proc.stderr and "multiline.start_pattern" in proc.stderr
    assert repr(pattern) in proc.stderr and "not supported" in proc.stderr
    with pytest.raises(ValueError, match="native core's regex engine"):
        MultilineJoiner(MultilineConfig(start_pattern=pattern), "raw")
