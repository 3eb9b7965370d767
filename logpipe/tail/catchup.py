"""Catch-up from a `.gz` generation: the only time a compressed file is read while tailing.

`.gz` files are never tailed: they are copies of data already read. The exception is a
generation that was compressed before the tailer finished reading it (it was down or far
behind when logrotate ran): its content fingerprint matches a checkpoint whose offset is
short of its end. Then exactly the unread rest is read, under the same stream key, so the
records get the same ids they would have had from the plain file. A generation never
seen is read from 0 only when TailFront judges it new (see `TailFront._discover_gz`).
"""

from __future__ import annotations

import gzip
from typing import BinaryIO

from logpipe.tail.fingerprint import HEAD_READ, fingerprint
from logpipe.tail.lines import LineBlock, LineSplitter


def gz_head(path: str, size: int = HEAD_READ) -> bytes:
    """The first `size` decompressed bytes (fewer when the file is shorter or damaged)."""
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError, gzip.BadGzipFile):
        return b""


def gz_fingerprint(path: str) -> str | None:
    """Content fingerprint of the decompressed head (None if unreadable or empty)."""
    return fingerprint(gz_head(path), at_eof=True)


class GzCatchup:
    """Reads a gzip file from decompressed `offset` to its end, chunk by chunk."""

    def __init__(self, path: str, ident: tuple[int, int], key: str, offset: int, max_line_bytes: int) -> None:
        self.path = path
        self.ident = ident
        self.key = key
        self._fh: BinaryIO | None = gzip.open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
        self._skip = offset
        self.splitter = LineSplitter(offset, max_line_bytes)
        self.done = False
        self.lines = 0

    def read(self, max_bytes: int) -> tuple[LineBlock, int, bool]:
        """(lines, bytes read, at end). A damaged stream ends the file where it breaks."""
        assert self._fh is not None
        try:
            while self._skip > 0:  # decompress up to where the checkpoint left off
                got = self._fh.read(min(self._skip, 1 << 20))
                if not got:
                    break
                self._skip -= len(got)
            data = self._fh.read(max_bytes)
        except (OSError, EOFError):
            data = b""
        if data:
            return self.splitter.feed(data), len(data), False
        block = self.splitter.finish()
        self.close()
        return block, 0, True

    def close(self) -> None:
        self.done = True
        if self._fh is not None:
            self._fh.close()
            self._fh = None
