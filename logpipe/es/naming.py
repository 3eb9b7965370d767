"""Daily index names from a record's UTC @timestamp, cached so the hot path is a dict lookup."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from logpipe.fields import EVENT_KIND, SERVICE, TIMESTAMP
from logpipe.safeform import render_text

METRICS_PATTERN = "logpipe-metrics-%Y.%m.%d"
ALERTS_PATTERN = "logpipe-alerts-%Y.%m.%d"
BROWSER_PATTERN = "logpipe-browser-%Y.%m.%d"
_BAD_CHARS = re.compile(r"[^a-z0-9._-]+")


def clean_service(service: Any) -> str:
    """Make a service name safe inside an index name (lower case, no spaces or slashes)."""
    text = _BAD_CHARS.sub("-", str(service or "").lower()).strip("-_.+")
    return text[:100] or "unknown"


def utc_day(timestamp: Any) -> str:
    """`YYYY-MM-DD` of a timestamp in UTC; today when it is missing or unreadable."""
    if isinstance(timestamp, str) and len(timestamp) >= 10:
        if timestamp.endswith("Z") or timestamp.endswith("+00:00") or len(timestamp) == 10:
            return timestamp[:10]
        try:
            parsed = datetime.fromisoformat(timestamp)
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                return timestamp[:10]
            return parsed.astimezone(UTC).strftime("%Y-%m-%d")
    elif isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        secs = timestamp / 1000 if timestamp > 1e11 else timestamp
        return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%d")
    return datetime.now(UTC).strftime("%Y-%m-%d")


class IndexNamer:
    """Maps records to index names: `pattern` for logs, fixed patterns for metrics/alerts."""

    def __init__(self, pattern: str, metrics_pattern: str = METRICS_PATTERN,
                 alerts_pattern: str = ALERTS_PATTERN) -> None:
        self.pattern = pattern
        self.metrics_pattern = metrics_pattern
        self.alerts_pattern = alerts_pattern
        self._cache: dict[tuple[str, Any, str], str] = {}

    def index_for(self, record: dict[str, Any]) -> str:
        kind = record.get(EVENT_KIND)
        day = utc_day(record.get(TIMESTAMP))
        service = record.get(SERVICE)
        if service is not None and not isinstance(service, str | int | float):
            service = render_text(service, 200)  # a list or object from a JSON log: by its text
        key = (day, service, kind if kind in ("metric", "alert", "browser") else "")
        name = self._cache.get(key)
        if name is None:
            name = self._render(*key)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = name
        return name

    def _render(self, day: str, service: Any, kind: str) -> str:
        pattern = {"metric": self.metrics_pattern, "alert": self.alerts_pattern,
                   "browser": BROWSER_PATTERN}.get(kind, self.pattern)
        try:
            d = date.fromisoformat(day)
        except ValueError:
            d = datetime.now(UTC).date()
        text = pattern.replace("{service}", clean_service(service)).replace("{kind}", kind or "logs")
        return d.strftime(text).lower()


def deadletter_index(pattern: str) -> str:
    """Today's dead-letter index name."""
    return datetime.now(UTC).strftime(pattern).lower()
