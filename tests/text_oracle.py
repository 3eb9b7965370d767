"""The reference the core's text parsers are held to, written out plainly (no caches, no fast
paths): what `logpipe.parse.clf.ClfParser` means a common/combined access line to become.

`clf_record(text, now, tz)` is one line -> its record (dict, in the parser's key order) or None
when the line is not an access line. `reference_road` is a chunk of lines through it, with the
Python road for what it rejects (second chances, `_parse_failure`) and `Enricher` after, as
`logpipe tail` did before the core.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from logpipe.enrich import Enricher
from logpipe.parse import make_parser
from logpipe.ship.stdout import encode_ndjson
from logpipe.tail.lines import LineBlock

HOST = "text-oracle-host"
PATH = "/var/log/nginx/access.log"
FP = "0c1f0a2b3c4d6e7f"

# The access line, as the product's regex reads it (a request is `METHOD URI[ PROTO]` or any quoted text).
_Q = r'(?:[^"\\]|\\.)*'
ACCESS = re.compile(
    r'(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<ts>[^\]]+)\] '
    r'"(?:(?P<method>[A-Za-z]+) (?P<uri>[^\s"\\]+(?:\\.[^\s"\\]*)*)(?: [^\s"]+)?|(?P<req>' + _Q + r'))" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<ref>' + _Q + r')" "(?P<ua>' + _Q + r')")?'
    r'(?: (?P<rt>\d+\.\d+)(?=\s*$))?(?P<extra>.*)'
)
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def clf_time(ts: str, tz: str) -> str | None:
    """`10/Oct/2000:13:55:36 -0700` -> UTC record time; None when it is not a valid time."""
    if len(ts) < 20 or ts[2] != "/" or ts[6] != "/" or ts[11] != ":" or ts[3:6].title() not in MONTHS:
        return None
    try:
        zone: Any = UTC if tz == "UTC" else ZoneInfo(tz)
        rest = ts[21:].strip() if len(ts) > 21 else ""
        if rest in ("Z", "z", "UTC", "GMT"):
            zone = UTC
        elif rest:
            sign = -1 if rest[0] == "-" else 1
            digits = rest[1:].replace(":", "")
            zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4]) if len(digits) >= 4 else 0))
        second = int(ts[18:20])
        second = 59 if second == 60 else second  # a leap second is clamped, not refused
        local = datetime(int(ts[7:11]), MONTHS.index(ts[3:6].title()) + 1, int(ts[0:2]), int(ts[12:14]),
                         int(ts[15:17]), second, tzinfo=zone)
        return local.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    except (ValueError, OverflowError):
        return None


def seconds_to_ms(text: str) -> float:
    return round(float(text) * 1000.0, 3)


def clf_record(text: str, now: str, tz: str = "UTC") -> dict[str, Any] | None:
    m = ACCESS.match(text)
    if m is None:
        return None
    rec: dict[str, Any] = {"@timestamp": clf_time(m["ts"], tz) or now, "message": text}
    if m["method"] is not None:
        rec["method"] = m["method"].upper()
        rec["path"] = m["uri"].split("?", 1)[0]
    rec["status"] = int(m["status"])
    if m["rt"] is not None:
        rec["duration_ms"] = seconds_to_ms(m["rt"])
    else:
        token = m["extra"].rstrip().rpartition(" ")[2]
        if token.count(".") >= 1 and token.replace(".", "", 1).isdigit():
            rec["duration_ms"] = seconds_to_ms(token)
    rec["client_ip"] = m["ip"]
    if m["ua"] not in (None, "-"):
        rec["user_agent"] = m["ua"]
    rec["bytes"] = 0 if m["bytes"] == "-" else int(m["bytes"])
    if m["ref"] not in (None, "-"):
        rec["referrer"] = m["ref"]
    if m["user"] != "-":
        rec["remote_user"] = m["user"]
    return rec


def reference_road(block: LineBlock, scrubber: Any, now: str, *, fmt: str = "combined", tz: str = "UTC",
                   service: str = "", tags: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]], int]:
    """Records of the block's non-blank lines, and how many were `_parse_failure`. Access lines
    go through `clf_record`; the Python logging formats through the product's parser (their
    reference until it moves here)."""
    keep = [i for i, t in enumerate(block.texts) if t and not t.isspace()]
    texts = [block.texts[i] for i in keep]
    starts = [block.starts[i] for i in keep]
    python = make_parser(fmt, tz=tz, service=service)  # what the reference rejects: second chances, failures
    records = []
    for text in texts:
        rec = clf_record(text, now, tz) if fmt in ("common", "combined") else None
        if rec is None:
            (rec,) = python([text])
        elif service:
            rec["service"] = service
        records.append(rec)
    failed = sum("_parse_failure" in r.get("tags", ()) for r in records)
    Enricher(HOST, scrubber).apply(records, texts, starts, PATH, FP, block.tags, list(tags))
    # as the sink writes them (a value JSON cannot carry is written in the safe form)
    return [orjson.loads(encode_ndjson([r])[0]) for r in records], failed
