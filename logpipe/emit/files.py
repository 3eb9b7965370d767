"""Rotated log files: append batches, rotate by size (app.log) or at UTC midnight
(error.log, access.log), gzip rotated generations.

A generation is compressed under a temporary name and renamed into place, so a reader
never sees a half-written `.gz`; if compression fails the generation is kept
uncompressed rather than lost.

A failed write (full disk, quota) raises `WriteFailed` with the number of lines that did
not make it whole, and the next write starts on a fresh line, so a record written once
space returns is never glued onto the torn end of a lost one.
"""

from __future__ import annotations

import errno
import gzip
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import IO

DAY = 86400.0

def _now() -> float:
    """Indirection so tests can move time forward for rotation."""
    return time.time()


class WriteFailed(OSError):
    """A batch was not (completely) written: `lost_lines` lines are not in the file whole;
    the first `written` bytes of the batch are."""

    def __init__(self, path: Path, lost_lines: int, cause: OSError, written: int = 0) -> None:
        super().__init__(cause.errno, f"{cause.strerror or cause}")
        self.path = path
        self.lost_lines = lost_lines
        self.cause = cause
        self.written = written


class LogFile:
    """An append-only file; `write` takes a batch of lines.

    Unbuffered on purpose: a short write must be seen here, not retried later by a buffer
    that would append the rest of a torn line after newer records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None
        self.size = 0
        self._line_start = True  # the file ends with a newline (or is empty)
        self._open()

    def _open(self) -> None:
        self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the writer
        self.size = self._fh.tell()
        self._line_start = self.size == 0 or _last_byte(self.path, self.size) == b"\n"

    def write(self, data: bytes | bytearray) -> None:
        """Append complete lines (one write per batch); WriteFailed says how many were lost."""
        self._append(data)

    def _append(self, data: bytes | bytearray | memoryview) -> None:
        if self._fh is None:
            self._open()
        assert self._fh is not None
        fresh_line = not self._line_start  # a previous write tore a line: end it first
        view = memoryview(b"\n" + bytes(data)) if fresh_line else memoryview(data)
        done = 0
        try:
            while done < len(view):
                n = self._fh.write(view[done:])
                if not n:
                    raise OSError(errno.EIO, "write wrote nothing")
                done += n
                self._line_start = view[done - 1] == 0x0A
        except OSError as exc:
            lost = view[done:].tobytes().count(b"\n") - (1 if fresh_line and done == 0 else 0)
            raise WriteFailed(self.path, lost, exc, max(0, done - fresh_line)) from None
        finally:
            self.size += done

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _last_byte(path: Path, size: int) -> bytes:
    """The byte before `size` (a file left by a crash or a full disk may end mid-line)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(size - 1)
            return fh.read(1)
    except OSError:
        return b"\n"


def gzip_file(src: Path, dst: Path) -> None:
    """Compress `src` into `dst` atomically (temp name + rename), then remove `src`."""
    tmp = dst.with_name(dst.name + ".tmp")
    with open(src, "rb") as fin, gzip.open(tmp, "wb", compresslevel=6) as fout:
        shutil.copyfileobj(fin, fout, 1024 * 1024)
    os.replace(tmp, dst)
    os.unlink(src)


def _compress(src: Path, dst: Path) -> None:
    """gzip a rotated generation; on failure keep it uncompressed (never lose lines) and say so."""
    try:
        gzip_file(src, dst)
    except OSError as exc:
        try:
            Path(str(dst) + ".tmp").unlink(missing_ok=True)
        except OSError:
            pass
        warn_once(f"logpipe: could not compress {src} (kept uncompressed): {exc}")


class SizeRotatingFile(LogFile):
    """Rotates when the next line would pass `max_bytes`: name.1.gz (newest) .. name.N.gz."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.max_bytes = max_bytes
        self.backups = backups
        super().__init__(path)

    def write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while len(view):
            room = self.max_bytes - self.size
            if len(view) <= room:
                self._append(view)
                return
            cut = data.rfind(b"\n", len(data) - len(view), len(data) - len(view) + room) if room > 0 else -1
            if cut >= 0:
                done = cut + 1 - (len(data) - len(view))
                self._append_part(view, done)
                view = view[done:]
            elif self.size == 0:  # one line longer than max_bytes: it gets a file of its own
                end = data.find(b"\n", len(data) - len(view))
                done = (end + 1 if end >= 0 else len(data)) - (len(data) - len(view))
                self._append_part(view, done)
                view = view[done:]
            self.rotate()

    def _append_part(self, view: memoryview, done: int) -> None:
        """Append view[:done]; a failure also counts the lines of the batch after it as lost."""
        try:
            self._append(view[:done])
        except WriteFailed as exc:
            raise WriteFailed(self.path, exc.lost_lines + view[done:].tobytes().count(b"\n"), exc.cause,
                              exc.written) from None

    def generation(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}.gz")

    def rotate(self) -> None:
        self.close()
        oldest = self.generation(self.backups)
        if oldest.exists():
            oldest.unlink()
        for n in range(self.backups - 1, 0, -1):
            src = self.generation(n)
            if src.exists():
                os.replace(src, self.generation(n + 1))
        moved = self.path.with_name(f"{self.path.name}.1")
        try:
            os.replace(self.path, moved)
        except FileNotFoundError:  # removed behind our back: just start a new file
            self._open()
            return
        self._open()
        _compress(moved, self.generation(1))


class TimedRotatingFile(LogFile):
    """Rotates at each UTC midnight (or every `interval_s`): name.YYYY-MM-DD.gz, `backups` kept."""

    def __init__(self, path: Path, backups: int, interval_s: float = DAY) -> None:
        self.backups = backups
        self.interval_s = interval_s
        super().__init__(path)
        started = path.stat().st_mtime if self.size > 0 else _now()
        self._period_start = self._floor(started)

    def _floor(self, ts: float) -> float:
        return ts - (ts % self.interval_s)

    def write(self, data: bytes | bytearray) -> None:
        now = _now()
        if now >= self._period_start + self.interval_s:
            if self.size > 0:
                self.rotate()
            self._period_start = self._floor(now)
        self._append(data)

    def _suffix(self) -> str:
        fmt = "%Y-%m-%d" if self.interval_s >= DAY else "%Y-%m-%dT%H-%M-%S"
        return time.strftime(fmt, time.gmtime(self._period_start))

    def rotate(self) -> None:
        self.close()
        base = f"{self.path.name}.{self._suffix()}"
        target = self.path.with_name(base + ".gz")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{base}.{n}.gz")
            n += 1
        moved = self.path.with_name(base + ".rotating")
        try:
            os.replace(self.path, moved)
        except FileNotFoundError:
            self._open()
            return
        self._open()
        _compress(moved, target)
        self._prune()

    def _prune(self) -> None:
        pattern = re.compile(re.escape(self.path.name) + r"\.\d{4}-\d{2}-\d{2}.*\.gz$")
        gens = sorted(p for p in self.path.parent.iterdir() if pattern.match(p.name))
        for old in gens[: max(0, len(gens) - self.backups)]:
            try:
                old.unlink()
            except OSError:
                pass


_warned: set[str] = set()


def warn_once(message: str) -> None:
    """One stderr line per distinct problem (a full disk must not flood stderr)."""
    if message not in _warned:
        _warned.add(message)
        try:
            sys.stderr.write(message + "\n")
        except Exception:
            pass
