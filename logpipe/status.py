"""A one-line live status on a terminal: lines/s, bytes behind, delivered, sink health."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from logpipe.stages import PipelineStats


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def render(stats: PipelineStats, rate: float, target: str) -> str:
    dropped = sum(stats.dropped.values())
    parts = [
        f"{rate:,.0f} lines/s",
        f"lag {human_bytes(stats.bytes_behind())}",
        f"delivered {stats.delivered:,}",
        f"files {len(stats.files)}",
    ]
    if dropped:
        parts.append(f"dropped {dropped:,}")
    if stats.skipped_files:
        parts.append(f"skipped {len(stats.skipped_files)}")
    if stats.sink_error:
        parts.append(f"sink error: {stats.sink_error[:60]}")
    return f"logpipe → {target}: " + " · ".join(parts)


class StatusLine:
    """Redraws one terminal line every `interval` seconds from a background thread."""

    def __init__(self, stats: PipelineStats, target: str, out: TextIO | None = None,
                 interval: float = 1.0) -> None:
        self.stats = stats
        self.target = target
        self.out = out if out is not None else sys.stderr
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="logpipe-status", daemon=True)

    @staticmethod
    def wanted(out: TextIO | None = None) -> bool:
        stream = out if out is not None else sys.stderr
        return hasattr(stream, "isatty") and stream.isatty()

    def start(self) -> StatusLine:
        self._thread.start()
        return self

    def _loop(self) -> None:
        last_lines, last_t = self.stats.lines_read, time.monotonic()
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            lines = self.stats.lines_read
            rate = (lines - last_lines) / max(1e-6, now - last_t)
            last_lines, last_t = lines, now
            self.out.write("\r\x1b[K" + render(self.stats, rate, self.target))
            self.out.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
            self.out.write("\r\x1b[K")
            self.out.flush()
