"""The read-once front: replay plain, `.gz` and archive-segment files through the pipeline.

Files come oldest first (`expand_inputs`: rotated sets by generation, archive segments by
name). Offsets are into the decompressed stream and the fingerprint is taken from the
decompressed head, so a `.gz` copy of a file yields the same record ids as the original,
and replaying the same input twice gives the same ids. Records of our own archive segments
keep their `_id` (`is_own_segment`); in any other file an `_id` is the input's, moved to
`_source_id`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import BinaryIO

from logpipe.config import Config, InputConfig
from logpipe.ship.archive import is_own_segment
from logpipe.stages import FileStats, PipelineStats
from logpipe.tail.files import expand_inputs, open_any
from logpipe.tail.fingerprint import HEAD_READ, fingerprint
from logpipe.tail.follower import looks_binary
from logpipe.tail.lines import LineSplitter
from logpipe.tail.source import sample_lines
from logpipe.tail.stream import LineChunk, Stream

log = logging.getLogger("logpipe.replay")


def replay_files(inputs: list[str]) -> list[Path]:
    """Files to replay in order; temporary/hidden files (unfinished segments) left out."""
    return [p for p in expand_inputs(inputs) if not p.name.startswith(".") and not p.name.endswith(".tmp")]


class ReplayFront:
    """Reads each file once, in order; `finished()` after the last one."""

    once = True

    def __init__(self, cfg: Config, files: list[Path], stats: PipelineStats, input_cfg: InputConfig | None = None,
                 chunk_bytes: int | None = None) -> None:
        self.cfg = cfg
        self.files = list(files)
        self.stats = stats
        self.input = input_cfg or (cfg.inputs[0] if cfg.inputs else InputConfig())
        self.chunk_bytes = chunk_bytes or cfg.pipeline.read_chunk_bytes
        self.total_bytes = sum(_size(p) for p in self.files)
        self.done_bytes = 0  # on-disk (compressed) bytes consumed, for progress/ETA
        self._index = 0
        self._fh: BinaryIO | None = None
        self._raw: BinaryIO | None = None
        self._stream: Stream | None = None
        self._splitter: LineSplitter | None = None
        self._file_done_base = 0

    def _open_next(self) -> bool:
        while self._index < len(self.files):
            path = self.files[self._index]
            self._index += 1
            try:
                fh = open_any(path)
                head = fh.read(HEAD_READ)
            except (OSError, EOFError) as exc:
                self.stats.skipped_files[str(path)] = f"unreadable: {exc}"
                log.warning("%s: skipped, cannot read it (%s)", path, exc)
                continue
            reason = looks_binary(head)
            if reason:
                fh.close()
                self.stats.skipped_files[str(path)] = reason
                log.warning("%s: skipped, %s", path, reason)
                self._account(path)
                continue
            fp = fingerprint(head, at_eof=True)
            if fp is None:  # empty file
                fh.close()
                self._account(path)
                continue
            self._fh = fh
            self._raw = getattr(fh, "fileobj", None) or fh
            sample = sample_lines(head) if self.input.format == "auto" else []
            self._stream = Stream(key=f"{fp}:{path}", path=str(path), fp=fp, input=self.input, sample=sample,
                                  keeps_ids=is_own_segment(path))
            self._splitter = LineSplitter(0, self.cfg.pipeline.max_line_bytes)
            self._pending_head = head
            self.stats.files[str(path)] = FileStats(path=str(path), size=_size(path))
            return True
        return False

    def _account(self, path: Path) -> None:
        self._file_done_base += _size(path)
        self.done_bytes = self._file_done_base

    def read(self) -> list[LineChunk]:
        if self._fh is None and not self._open_next():
            return []
        assert self._fh is not None and self._splitter is not None and self._stream is not None
        try:
            data = self._pending_head + self._fh.read(max(0, self.chunk_bytes - len(self._pending_head)))
        except (OSError, EOFError) as exc:  # a truncated .gz: keep what was read
            log.warning("%s: stopped reading (%s)", self._stream.path, exc)
            self.stats.skipped_files[self._stream.path] = f"read error: {exc}"
            data = b""
        self._pending_head = b""
        stream = self._stream
        block = self._splitter.feed(data)
        self.stats.bytes_read += len(data)
        chunks: list[LineChunk] = []
        if data:
            self.stats.lines_read += len(block)
            chunks.append(LineChunk(stream, block, self._splitter.consumed, nbytes=len(data)))
            try:
                pos = self._raw.tell() if self._raw is not None else 0
            except (OSError, ValueError):
                pos = 0
            self.done_bytes = self._file_done_base + pos
        else:
            last = self._splitter.finish()
            self.stats.lines_read += len(last)
            chunks.append(LineChunk(stream, last, self._splitter.consumed, eof=True))
            self._fh.close()
            self._fh = None
            self._account(Path(stream.path))
            self.stats.files.pop(stream.path, None)
        return chunks

    def wait(self, timeout: float) -> None:
        return None

    def finished(self) -> bool:
        return self._fh is None and self._index >= len(self.files)

    def acknowledge(self, acks: dict[str, int]) -> None:
        return None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
