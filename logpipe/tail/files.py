"""Opening log files whatever their compression, and ordering rotated generations.

Shared by `replay`, `report` and `query --archive`, which read files once; lines come from
the tail's own LineSplitter (`read_blocks`), so there is one reader for all. A rotated set such as access.log, access.log.1, access.log.2.gz is returned
oldest first so that records come out in time order.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from logpipe.tail.lines import LineBlock, LineSplitter

GZIP_MAGIC = b"\x1f\x8b"
_GENERATION = re.compile(r"^(?P<base>.*?)(?:[.-](?P<gen>\d{1,4}))?(?P<gz>\.gz)?$")
_DATE_SUFFIX = re.compile(r"[.-](\d{4}-?\d{2}-?\d{2}(?:[_T-]?\d{2}(?:-?\d{2})?)?)")


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the gzip magic (names lie; bytes do not)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == GZIP_MAGIC
    except OSError:
        return False


def open_any(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a plain or gzip file for binary reading; gzip is recognised by its magic bytes."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def rotation_key(path: str | os.PathLike[str]) -> tuple[str, int, str, float]:
    """Sort key that puts a rotated set oldest first.

    Numbered generations (app.log.3.gz, app.log.2, app.log.1, app.log) sort by descending
    number with the live file last; date-suffixed ones (error.log.2026-11-20.gz) by date;
    ties fall back to modification time.
    """
    p = Path(path)
    name = p.name
    date = _DATE_SUFFIX.search(name)
    match = _GENERATION.match(name)
    base = match.group("base") if match else name
    gen = int(match.group("gen")) if match and match.group("gen") else 0
    if date:
        base = name[: date.start()]
        gen = 0
    try:
        mtime = p.stat().st_mtime
    except OSError:
        mtime = 0.0
    date_key = date.group(1).replace("-", "") if date else "99999999"
    return (str(p.parent / base), -gen, date_key, mtime)


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Expand files, directories (recursively) and globs into a rotation-ordered file list."""
    import glob

    found: list[Path] = []
    seen: set[str] = set()
    for item in inputs:
        candidates: list[str]
        if any(ch in item for ch in "*?["):
            candidates = sorted(glob.glob(item, recursive=True))
        else:
            candidates = [item]
        for cand in candidates:
            p = Path(cand)
            if p.is_dir():
                files = [q for q in p.rglob("*") if q.is_file()]
            else:
                files = [p]
            for f in files:
                key = str(f.resolve())
                if key not in seen:
                    seen.add(key)
                    found.append(f)
    return sorted(found, key=rotation_key)


def read_blocks(path: str | os.PathLike[str], *, max_line_bytes: int = 1_048_576,
                chunk_bytes: int = 1 << 20) -> Iterator[LineBlock]:
    """Every line of a plain or gzip file read once, as the tail reads it: the same
    LineSplitter (over-long lines truncated and tagged, NULs removed, invalid UTF-8 replaced
    and tagged, CRLF ends stripped), so every command that reads a file sees the same lines.

    A final line without a newline is included (the file is read once, nothing follows).
    Offsets are into the decompressed stream, so a .gz copy of a file gives the same
    offsets, and hence the same record ids, as the original.
    """
    splitter = LineSplitter(0, max_line_bytes)
    with open_any(path) as fh:
        while chunk := fh.read(chunk_bytes):
            block = splitter.feed(chunk)
            if block.texts:
                yield block
    last = splitter.finish()
    if last.texts:
        yield last
