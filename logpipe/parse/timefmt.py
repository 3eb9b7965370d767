"""Timestamp conversion to the record format's UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`.

Log lines arrive in time order, so many share the same second: conversions are cached
per whole-second key and only the fraction is spliced in per line. The zone arithmetic
(DST, offsets) therefore runs about once per second of log, not once per line.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_CACHE_MAX = 8192

_ISO = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})[Tt ](\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,](\d+))?"
    r"\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


def now_iso() -> str:
    """The current UTC time in the record format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fmt_seconds(dt: datetime) -> str:
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
            f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}")


def load_zone(tz: str) -> ZoneInfo | timezone:
    """Resolve an IANA zone name (or UTC); ValueError naming it when unknown."""
    if not tz or tz.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def _offset(text: str | None) -> timezone | None:
    """Parse 'Z', 'UTC', '+05', '+0530', '-07:00' into a fixed zone; None when absent."""
    if not text:
        return None
    if text in ("Z", "z", "UTC", "GMT"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) >= 4 else 0
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


class TimeConverter:
    """Converts the timestamp shapes logpipe's parsers meet, with naive times in `tz`."""

    def __init__(self, tz: str = "UTC") -> None:
        self.zone = load_zone(tz)
        self._utc = self.zone is UTC
        self._cache: dict[object, str | None] = {}

    # -- helpers ---------------------------------------------------------------------
    def _store(self, key: object, value: str | None) -> str | None:
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = value
        return value

    def _to_utc_prefix(self, y: int, mo: int, d: int, h: int, mi: int, s: int,
                       off: timezone | None) -> str | None:
        try:
            if s == 60:  # leap second: clamp rather than fail
                s = 59
            dt = datetime(y, mo, d, h, mi, s, tzinfo=off if off is not None else self.zone)
            if dt.tzinfo is not UTC:
                dt = dt.astimezone(UTC)
            return _fmt_seconds(dt)
        except (ValueError, OverflowError):
            return None

    # -- shapes ----------------------------------------------------------------------
    def asctime(self, ts: str) -> str | None:
        """Python `asctime` ('2026-11-24 06:50:49,123'), or anything ISO-like."""
        if len(ts) == 23 and ts[19] in ",." and ts[10] == " ":
            key = ts[:19]
            prefix = self._cache.get(key, False)
            if prefix is False:
                prefix = self._store(key, self._iso_prefix(key, None))
            if prefix is None:
                return None
            return f"{prefix}.{ts[20:]}000Z"
        return self.iso(ts)

    def _iso_prefix(self, seconds: str, off: str | None) -> str | None:
        m = _ISO.match(seconds)
        if m is None:
            return None
        y, mo, d, h, mi, s = m.group(1, 2, 3, 4, 5, 6)
        try:
            zone = _offset(off)
        except ValueError:
            return None
        return self._to_utc_prefix(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), zone)

    def iso(self, ts: str) -> str | None:
        """ISO-8601 / RFC 3339 text with optional fraction and offset; None when not a time."""
        if len(ts) == 27 and ts[26] == "Z" and ts[10] == "T" and ts[19] == ".":
            return ts
        m = _ISO.match(ts)
        if m is None:
            return self._numeric_text(ts)
        frac = m.group(7)
        key = (m.group(1, 2, 3, 4, 5, 6), m.group(8))
        prefix = self._cache.get(key, False)
        if prefix is False:
            y, mo, d, h, mi, s = key[0]
            try:
                zone = _offset(m.group(8))
            except ValueError:
                zone = None
                prefix = None
            else:
                prefix = self._to_utc_prefix(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), zone)
            self._store(key, prefix)
        if prefix is None:
            return None
        if frac is None:
            return prefix + ".000000Z"
        return f"{prefix}.{frac[:6]:0<6}Z"

    def _numeric_text(self, ts: str) -> str | None:
        stripped = ts.strip()
        if stripped and stripped.replace(".", "", 1).isdigit():
            return self.epoch(float(stripped))
        return None

    def epoch(self, value: float) -> str | None:
        """Unix time in s, ms or µs (guessed by magnitude)."""
        v = float(value)
        if v != v:  # NaN
            return None
        if abs(v) > 1e14:
            v /= 1e6
        elif abs(v) > 1e11:
            v /= 1e3
        try:
            dt = datetime.fromtimestamp(v, UTC)
            return f"{_fmt_seconds(dt)}.{dt.microsecond:06d}Z"
        except (ValueError, OverflowError, OSError):
            return None

    def clf(self, ts: str) -> str | None:
        """Apache/nginx `10/Oct/2000:13:55:36 -0700` (offset optional: then `tz`)."""
        prefix = self._cache.get(ts, False)
        if prefix is False:
            prefix = None
            try:
                if len(ts) >= 20 and ts[2] == "/" and ts[6] == "/" and ts[11] == ":":
                    mon = _MONTHS.get(ts[3:6].title())
                    if mon is not None:
                        off = _offset(ts[21:].strip()) if len(ts) > 21 else None
                        prefix = self._to_utc_prefix(int(ts[7:11]), mon, int(ts[0:2]), int(ts[12:14]),
                                                     int(ts[15:17]), int(ts[18:20]), off)
            except ValueError:
                prefix = None
            self._store(ts, prefix)
        if prefix is None:
            return None
        return prefix + ".000000Z"

    def any(self, value: object) -> str | None:
        """Whatever a JSON producer put in its time field: ISO text or epoch number."""
        if value.__class__ is str:
            return self.iso(value)  # type: ignore[arg-type]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self.epoch(value)
        return None
