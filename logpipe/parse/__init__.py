"""Parse stage: text events → records in the shared record format.

`detect_format` picks a format from a file's first lines; `make_parser` returns a batch
function that never raises (unparseable text becomes a raw record tagged `_parse_failure`).
Multi-line joining lives in `logpipe.parse.multiline` and runs before parsing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logpipe.parse.clf import ClfParser
from logpipe.parse.detect import classify_line, detect_format
from logpipe.parse.jsonfmt import JsonParser
from logpipe.parse.textfmt import (
    AccessTextParser,
    PythonParser,
    PythonShortParser,
    RawParser,
    UvicornParser,
)

FORMATS: tuple[str, ...] = (
    "json", "python", "python_short", "access_text", "common", "combined", "uvicorn", "raw",
)

_PARSERS: dict[str, Callable[..., Any]] = {
    "json": JsonParser,
    "python": PythonParser,
    "python_short": PythonShortParser,
    "access_text": AccessTextParser,
    "common": ClfParser,
    "combined": ClfParser,
    "uvicorn": UvicornParser,
    "raw": RawParser,
}

ParseBatch = Callable[[list[str]], list[dict[str, Any]]]


class _SecondChance:
    """A format's parser, plus a retry for lines that plainly belong to another known format.

    Files are often mixed (an app's text log with uvicorn's console lines in one container
    stream). A line the file's parser rejects is classified on its own and, when it fits
    another format, parsed with that format instead of being shipped as `_parse_failure`.
    Costs nothing while every line parses (the primary parser counts its failures).
    """

    def __init__(self, fmt: str, tz: str, service: str) -> None:
        self.fmt = fmt
        self.primary = _PARSERS[fmt](tz=tz, service=service)
        self.tz = tz
        self.service = service
        self._others: dict[str, Any] = {}
        self.failed = 0  # lines shipped as _parse_failure so far (after second chances)

    @property
    def coerced(self) -> int:
        """Records whose non-string level became text so far (JSON only; 0 for text formats)."""
        return sum(getattr(p, "coerced", 0) for p in (self.primary, *self._others.values()))

    def parse_batch(self, texts: list[str]) -> list[dict[str, Any]]:
        primary = self.primary
        before = primary.failed
        out: list[dict[str, Any]] = primary.parse_batch(texts)
        if primary.failed != before:
            rescued = 0
            try:
                rescued = self._retry_failures(texts, out)
            except Exception:  # a second chance must never cost the first answer
                pass
            self.failed += primary.failed - before - rescued
        return out

    def _retry_failures(self, texts: list[str], out: list[dict[str, Any]]) -> int:
        """Re-parse failures that fit another format; returns how many were rescued."""
        rescued = 0
        mine = _PARSERS[self.fmt]
        for i, rec in enumerate(out):
            tags = rec.get("tags")
            if not tags or "_parse_failure" not in tags or rec.get("message") is not texts[i]:
                continue
            other = classify_line(texts[i].partition("\n")[0])
            if other is None or _PARSERS[other] is mine:
                continue
            parser = self._others.get(other)
            if parser is None:
                parser = self._others[other] = _PARSERS[other](tz=self.tz, service=self.service)
            before = parser.failed
            (again,) = parser.parse_batch([texts[i]])
            if parser.failed == before:
                out[i] = again
                rescued += 1
        return rescued


def make_parser(fmt: str, *, tz: str = "UTC", service: str = "") -> ParseBatch:
    """Batch parser for `fmt`: one record per text, same order, never raises.

    Raises ValueError (at construction) for an unknown format or time zone; "auto" is not a
    format here — detect first with `detect_format`. A line that does not fit `fmt` but
    clearly fits another format is parsed as that format (see `_SecondChance`).
    """
    if fmt not in _PARSERS:
        hint = " (call detect_format first)" if fmt == "auto" else ""
        raise ValueError(f"unknown log format {fmt!r}{hint}; expected one of: {', '.join(FORMATS)}")
    if fmt == "raw":
        return RawParser(tz=tz, service=service).parse_batch
    return _SecondChance(fmt, tz, service).parse_batch


__all__ = ["FORMATS", "ParseBatch", "classify_line", "detect_format", "make_parser"]
