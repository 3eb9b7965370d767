"""Pieces every parser shares: the `_parse_failure` record and small field helpers."""

from __future__ import annotations

from typing import Any

from logpipe import fields as F
from logpipe.parse.timefmt import now_iso

_LEVEL_ALIASES = {
    "warn": "warning", "err": "error", "crit": "critical", "information": "info",
    "informational": "info", "eror": "error", "dbug": "debug", "trce": "trace",
}
#: pino's numeric levels (the usual numeric `level` in JSON logs).
_NUMERIC_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warning", 50: "error", 60: "fatal"}


def level_name(value: Any) -> Any:
    """Lower-case level names and fold common aliases ('WARN' → 'warning')."""
    if value.__class__ is str:
        low = value.strip().lower()
        return _LEVEL_ALIASES.get(low, low)
    if isinstance(value, int) and not isinstance(value, bool):
        return _NUMERIC_LEVELS.get(value, str(value))
    return value


def failure(text: str, now: str | None = None, service: str = "") -> dict[str, Any]:
    """The raw record for text no parser understood: shipped, tagged, never dropped."""
    rec: dict[str, Any] = {F.TIMESTAMP: now or now_iso(), F.MESSAGE: text, F.TAGS: [F.TAG_PARSE_FAILURE]}
    if service:
        rec[F.SERVICE] = service
    return rec


def split_query(uri: str) -> str:
    """Request URI → path without the query string (the full line stays in `message`)."""
    if "?" in uri:
        return uri.partition("?")[0]
    return uri


def first_line(text: str) -> tuple[str, str]:
    """Split a joined event into its first line (without a trailing CR) and the rest."""
    head, _, rest = text.partition("\n")
    if head.endswith("\r"):
        head = head[:-1]
    return head, rest
