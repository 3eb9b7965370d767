"""`--sink file:DIR`: a local archive of gzip NDJSON segments, one per batch.

Each batch becomes DIR/YYYY-MM-DD/<UTC time>-<pid>-<seq>.ndjson.gz, written under a hidden
temporary name, fsynced, renamed into place and the directory fsynced: a segment is either
complete or absent, and a batch is acknowledged only once it is on disk. Names sort in
write order, so `logpipe replay DIR` reads segments back in the order they were written.
Write errors (disk full, I/O) are retried with backoff until shutdown; the reader is held
back meanwhile by the pipeline's in-flight window.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from logpipe.config import SinkConfig
from logpipe.durable import atomic_write
from logpipe.ship.base import SendResult, Sink, SinkConfigError, SinkStopped
from logpipe.ship.ndjson import NdjsonSink
from logpipe.ship.stdout import encode_ndjson

log = logging.getLogger("logpipe.archive")

SEGMENT_SUFFIX = ".ndjson.gz"


def archive_dir(url: str) -> Path:
    """DIR of a `file:DIR` URL (`file:///abs/dir` accepted too)."""
    rest = url.strip()[len("file:"):] if url.strip().startswith("file:") else url.strip()
    if rest.startswith("//"):
        rest = rest[2:]
    if not rest:
        raise SinkConfigError(f"archive sink URL {url!r} names no directory: use file:DIR")
    return Path(rest)


def is_segment(path: Path) -> bool:
    return path.name.endswith(SEGMENT_SUFFIX) and not path.name.startswith(".")


#: The names `_write_segment` gives: `<UTC time>Z-<pid>-<seq>.ndjson.gz`.
_SEGMENT_NAME = re.compile(r"\d{8}T\d{12}Z-\d{7,}-\d{8,}" + re.escape(SEGMENT_SUFFIX))


def is_own_segment(path: Path) -> bool:
    """A segment this sink wrote (by its name): its records carry ids we gave them, which a
    replay keeps. Any other file's `_id` is the input's own (see logpipe.enrich)."""
    return _SEGMENT_NAME.fullmatch(path.name) is not None


class ArchiveSink(Sink, NdjsonSink):
    name = "archive"

    def __init__(self, cfg: SinkConfig, compresslevel: int = 1) -> None:
        super().__init__()
        self.root = archive_dir(cfg.url)
        self.schema = cfg.schema
        self.level = compresslevel
        self._seq = 0
        self._lock = threading.Lock()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkConfigError(f"archive directory {self.root}: {exc.strerror}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise SinkConfigError(f"archive directory {self.root} is not writable")

    def describe(self) -> str:
        return f"file:{self.root}"

    def send(self, records: list[dict[str, Any]]) -> SendResult:
        if not records:
            return SendResult()
        data, reduced = encode_ndjson(records, self.schema)
        result = self.send_ndjson(data, len(records))
        result.encode_failures += reduced
        return result

    def accepts_ndjson(self) -> bool:
        return self.schema == "logpipe"

    def send_ndjson(self, data: bytes, count: int) -> SendResult:
        if not count:
            return SendResult()
        payload = gzip.compress(data, compresslevel=self.level, mtime=0)
        result = SendResult(delivered=count)
        delay = 0.2
        while True:
            try:
                self._write_segment(payload)
                return result
            except OSError as exc:
                result.retries += 1
                result.errors.append(f"{self.describe()}: {exc.strerror or exc}")
                log.warning("archive %s: write failed (%s); retrying in %.1fs", self.root,
                            exc.strerror or exc, delay)
                if self.stop_event.wait(delay):
                    raise SinkStopped(f"{self.describe()}: stopped while retrying") from None
                delay = min(delay * 2, 5.0)

    def _write_segment(self, payload: bytes) -> Path:
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            self._seq += 1
            seq = self._seq
        day = self.root / now.strftime("%Y-%m-%d")
        day.mkdir(parents=True, exist_ok=True)
        name = f"{now:%Y%m%dT%H%M%S%f}Z-{os.getpid():07d}-{seq:08d}{SEGMENT_SUFFIX}"
        final = day / name
        atomic_write(final, payload)
        return final
