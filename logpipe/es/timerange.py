"""Parse `--since 1h`, `--from 2026-11-24T10:00`, `--until now-5m` into UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `2d`, `1w` -> timedelta; ValueError naming the text otherwise."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 15m, 1h, 2d)")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO-8601 time (naive = UTC), `now`, `now-1h`, or a bare duration meaning that long ago."""
    now = now or datetime.now(UTC)
    t = text.strip()
    if t.lower() == "now":
        return now
    if t.lower().startswith("now-"):
        return now - parse_duration(t[4:])
    if _DURATION.match(t):
        return now - parse_duration(t)
    try:
        parsed = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"invalid time {text!r} (use ISO-8601 like 2026-11-24T10:00:00Z, now-1h or 1h)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(dt: datetime) -> str:
    """The record format's timestamp form: UTC with microseconds and `Z`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_window(since: str | None, start: str | None, until: str | None,
                now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """Combine --since/--from/--until into (lower, upper); --since wins over --from."""
    now = now or datetime.now(UTC)
    lower = now - parse_duration(since) if since else (parse_time(start, now) if start else None)
    upper = parse_time(until, now) if until else None
    if lower and upper and lower > upper:
        raise ValueError(f"the time window is empty: {iso(lower)} is after {iso(upper)}")
    return lower, upper
