"""One followed file: an open descriptor, its identity, read offset and line splitter.

The descriptor stays open across renames and deletion, so a rotated-away file can be
drained to its end. Identity is (device, inode) while open plus the content fingerprint,
which is re-checked every turn: a file that shrank below the read offset or whose first
bytes changed was truncated (copytruncate) and is read again from 0 as new content.
"""

from __future__ import annotations

import os
import time

from logpipe.tail.fingerprint import HEAD_READ, fingerprint, prefix_length, read_head
from logpipe.tail.identity import CHECK_BYTES
from logpipe.tail.lines import LineBlock, LineSplitter

_BINARY_MAGIC = (
    b"\x1f\x8b", b"PK\x03\x04", b"\x7fELF", b"\x89PNG", b"\xff\xd8\xff", b"%PDF", b"BZh",
    b"\xfd7zXZ", b"(\xb5/\xfd", b"SQLite format 3",
)
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\b\x1b")
LAST_BYTES = 64
FIRST_EXTRA = 512  # bytes past the first line compared each turn


def looks_binary(head: bytes) -> str | None:
    """A reason when the first bytes are not a text log (NUL runs alone are tolerated:
    copytruncate leaves them)."""
    for magic in _BINARY_MAGIC:
        if head.startswith(magic):
            return "binary file (compressed or executable data)"
    sample = head[:8192].replace(b"\x00", b"")
    if not sample:
        return None
    controls = sum(1 for b in sample if b < 32 and b not in _TEXT_CONTROLS)
    if controls * 10 > len(sample):
        return "binary file (control characters)"
    return None


class Follower:
    """An open file being followed. Not thread-safe: only the reader thread touches it."""

    def __init__(self, path: str, fd: int, st: os.stat_result, max_line_bytes: int) -> None:
        self.path = path
        self.fd = fd
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.size = st.st_size
        self.max_line_bytes = max_line_bytes
        self.key: str | None = None  # content fingerprint once the head is long enough
        self.head = b""  # the fingerprinted prefix, re-checked to spot rewrites
        self.first = bytearray()  # the file's first bytes as read, up to CHECK_BYTES (identity check)
        self.last = b""  # the last bytes read, just before the offset (rewrite check)
        self.splitter: LineSplitter | None = None
        self.last_growth = time.monotonic()
        self.gone = False  # the path no longer leads to this file (renamed away / deleted)
        self.closing = False  # final lines handed over; close once acknowledged
        self.at_eof = False

    @classmethod
    def open(cls, path: str, max_line_bytes: int) -> Follower:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        return cls(path, fd, st, max_line_bytes)

    @property
    def ident(self) -> tuple[int, int]:
        return (self.dev, self.ino)

    def head_bytes(self, size: int = HEAD_READ) -> bytes:
        return read_head(self.fd, size)

    def identify(self, at_eof: bool = False) -> str | None:
        """Compute the fingerprint once enough of the file exists; None until then."""
        head = self.head_bytes()
        n = prefix_length(head, at_eof)
        if n is None:
            return None
        self.head = head[:n]
        self.key = fingerprint(head, at_eof)
        return self.key

    def start(self, offset: int) -> None:
        self.splitter = LineSplitter(offset, self.max_line_bytes)
        self.first = bytearray(read_head(self.fd, min(offset, CHECK_BYTES)) if offset else b"")
        n = min(offset, LAST_BYTES)
        self.last = os.pread(self.fd, n, offset - n) if n else b""

    @property
    def offset(self) -> int:
        return self.splitter.offset if self.splitter else 0

    @property
    def consumed(self) -> int:
        return self.splitter.consumed if self.splitter else 0

    def stat_size(self) -> int:
        self.size = os.fstat(self.fd).st_size
        return self.size

    def rewritten(self) -> bool:
        """True when the file was truncated or its beginning replaced since we identified it."""
        if self.splitter is None:
            return False
        if self.stat_size() < self.splitter.offset:
            return True
        first = self.head if len(self.first) <= len(self.head) else bytes(self.first[: len(self.head) + FIRST_EXTRA])
        if first and read_head(self.fd, len(first)) != first:
            return True  # the beginning changed (beyond the first line: headers are shared)
        # Truncated and written past our offset again between two looks, with the same first
        # line (a header): the bytes just before the offset are no longer the ones we read.
        end = self.splitter.offset
        return bool(self.last) and os.pread(self.fd, len(self.last), end - len(self.last)) != self.last

    def reset(self) -> None:
        """Forget the old content after a truncation; the next turn identifies the new one."""
        self.key = None
        self.head = b""
        self.first = bytearray()
        self.last = b""
        self.splitter = None
        self.at_eof = False

    def read(self, max_bytes: int) -> tuple[LineBlock, int]:
        """Read up to `max_bytes` at the current offset; return complete lines and bytes read."""
        assert self.splitter is not None
        start = self.splitter.offset
        data = os.pread(self.fd, max_bytes, start)
        if start == len(self.first) < CHECK_BYTES:
            self.first += data[: CHECK_BYTES - start]
        if data:
            self.last = (self.last + data[-LAST_BYTES:])[-LAST_BYTES:]
        self.at_eof = len(data) < max_bytes
        if data:
            self.last_growth = time.monotonic()
        return self.splitter.feed(data), len(data)

    def finish(self) -> LineBlock:
        assert self.splitter is not None
        return self.splitter.finish()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
