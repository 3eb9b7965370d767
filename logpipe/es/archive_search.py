"""`logpipe query --archive DIR`: the Lucene subset evaluated over archived NDJSON segments.

The archive is `DIR/YYYY-MM-DD/*.ndjson.gz` (the day a segment was written); day directories
that end before the time window are skipped without being opened. Only the best `limit` matches are kept (a heap), so memory stays
bounded whatever the archive size.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from logpipe.es.lucene import compile_query
from logpipe.es.timerange import iso
from logpipe.fields import LOG_OFFSET, REQUEST_ID, TIMESTAMP
from logpipe.tail.files import expand_inputs, read_blocks

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# An archived record holds a log line of up to [pipeline] max_line_bytes plus its fields and
# JSON escapes, so its line may be several times longer than any log line was.
ARCHIVE_MAX_LINE = 16 * 1_048_576


@dataclass
class ArchiveResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    lines: int = 0
    bad_lines: int = 0


def _day_files(root: Path, lower: datetime | None) -> list[Path]:
    """Segments worth reading. Day directories are named by *write* date, so a directory older
    than the window's start (minus a day of clock skew) cannot hold matches; newer ones can
    (a replay archives old records today), so they are always read. Hidden temporaries skipped."""
    if not root.is_dir():
        raise FileNotFoundError(f"archive directory {root} does not exist")
    lo = (lower - timedelta(days=1)).strftime("%Y-%m-%d") if lower else None
    picked: list[str] = []
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        if lo and child.is_dir() and _DAY.match(child.name) and child.name < lo:
            continue
        picked.append(str(child))
    return [p for p in expand_inputs(picked)
            if not p.name.startswith(".") and (".ndjson" in p.name or p.suffix in (".json", ".log", ".gz"))]


def _key(rec: dict[str, Any]) -> tuple[str, int]:
    ts = rec.get(TIMESTAMP)
    off = rec.get(LOG_OFFSET)
    return (ts if isinstance(ts, str) else "", off if isinstance(off, int) else 0)


def search_archive(directory: str | Path, query: str = "", *, lower: datetime | None = None,
                   upper: datetime | None = None, limit: int = 100, request_id: str | None = None,
                   oldest_first: bool = False) -> ArchiveResult:
    """Matching records, newest first (oldest first for a request's story)."""
    match = compile_query(query)
    lo = iso(lower) if lower else None
    hi = iso(upper) if upper else None
    needle = request_id
    result = ArchiveResult()
    heap: list[tuple[Any, int, dict[str, Any]]] = []
    seq = 0
    for path in _day_files(Path(directory), lower):
        result.files += 1
        for line in (text for block in read_blocks(path, max_line_bytes=ARCHIVE_MAX_LINE) for text in block.texts):
            result.lines += 1
            if needle is not None and needle not in line:
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:  # a truncated over-long line, or not JSON at all
                result.bad_lines += 1
                continue
            if not isinstance(rec, dict):
                result.bad_lines += 1
                continue
            if request_id is not None and rec.get(REQUEST_ID) != request_id:
                continue
            ts = rec.get(TIMESTAMP)
            if (lo or hi) and not isinstance(ts, str):
                continue
            if (lo and ts < lo) or (hi and ts > hi):
                continue
            if not match(rec):
                continue
            seq += 1
            if oldest_first:  # a request's story: few records, keep them all, sort at the end
                heap.append((_key(rec), seq, rec))
                continue
            entry = (_key(rec), seq, rec)  # keep the `limit` newest in a min-heap
            if len(heap) < limit:
                heapq.heappush(heap, entry)
            elif entry[0] > heap[0][0]:
                heapq.heapreplace(heap, entry)
    if oldest_first:
        result.records = [e[2] for e in sorted(heap, key=lambda e: (e[0], e[1]))[:limit]]
    else:
        result.records = [e[2] for e in sorted(heap, key=lambda e: (e[0], e[1]), reverse=True)]
    return result
