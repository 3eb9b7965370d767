"""Guess a file's format from its first lines: each line votes, the majority wins.

Continuation lines (traceback frames, blank lines) do not vote. A format must win more than
half of the voting lines, otherwise the file is "raw" — shipping text unparsed is better
than tagging most of a file `_parse_failure` because one line happened to fit a pattern.
"""

from __future__ import annotations

from collections import Counter

import orjson

from logpipe.parse.clf import CLF_RE
from logpipe.parse.exc import EXC_LINE
from logpipe.parse.textfmt import ACCESS_TEXT_RE, PYTHON_RE, PYTHON_SHORT_RE, UVICORN_RE


def classify_line(line: str) -> str | None:
    """The format one line looks like; None for a line that fits none."""
    if line.endswith("\r"):
        line = line[:-1]
    stripped = line.lstrip("\ufeff \t")
    if stripped.startswith("{"):
        try:
            if isinstance(orjson.loads(stripped), dict):
                return "json"
        except Exception:
            # A truncated/long JSON object still says "this is a JSON file".
            return "json" if stripped.startswith(('{"', "{ ")) else None
    if PYTHON_RE.match(line):
        return "python"
    m = ACCESS_TEXT_RE.match(line)
    if m is not None:
        # With an asctime + level prefix it is a python_short line whose message is an access line
        # (that parser extracts the access fields too).
        return "python_short" if m.group("level") else "access_text"
    if PYTHON_SHORT_RE.match(line):
        return "python_short"
    m2 = CLF_RE.match(line)
    if m2 is not None:
        return "combined" if m2.group("ua") is not None else "common"
    if UVICORN_RE.match(line):
        return "uvicorn"
    return None


def _is_continuation(line: str) -> bool:
    if not line.strip():
        return True
    if line[0] in " \t":
        return True
    if line.startswith(("Traceback (most recent call last)", "During handling of the above",
                        "The above exception was the direct cause")):
        return True
    return EXC_LINE.match(line) is not None


def detect_format(sample_lines: list[str]) -> str:
    """Most likely format of a file from its first lines; "raw" when nothing fits."""
    votes: Counter[str] = Counter()
    voters = 0
    clf_combined = False
    for raw in sample_lines:
        line = raw.rstrip("\n")
        fmt = classify_line(line)
        if fmt is not None:
            votes[fmt] += 1
            clf_combined = clf_combined or fmt == "combined"
            voters += 1
        elif not _is_continuation(line):
            voters += 1
    if not votes:
        return "raw"
    # common and combined lines share one parser: count them together.
    clf = votes.pop("common", 0) + votes.pop("combined", 0)
    if clf:
        votes["combined" if clf_combined else "common"] = clf
    (best, n), = votes.most_common(1)
    return best if n * 2 > voters else "raw"
