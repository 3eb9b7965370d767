"""Join continuation lines (Python tracebacks, multi-line messages) to the event they belong to.

Lines come in with their byte offsets; events go out with the start of their first line and
the end of their last, so the follower can checkpoint exactly past whole events. The last
event is always held back (the next line might continue it) until another event starts,
`flush()` is called, or the caller sees `idle_for()` exceed its quiet timeout.

Built-in rules (no start pattern): a line joins the event before it when it is indented, a
traceback header, a chained-exception separator, blank, or the `Type: message` line that
ends a traceback; for Python text formats also any line not starting with a timestamp
(except lines that are plainly other writers' records: `INFO:` prefixes, JSON objects).
Formats whose writers never emit multi-line events (JSON, nginx) pass straight through.

The joining runs in the native core (`logpipe._core.Joiner`, the same rules; a start pattern
compiles in its regex engine, and one it cannot take is refused here, at start-up) unless
`LOGPIPE_CORE=off`; the Python joiner below is then used. tests/multiline_oracle.py holds the
reference both are held to. Start patterns are read with the core's regex syntax (Rust `regex`:
no look-around or back-references; a space class is Unicode White_Space, without U+001C..U+001F).
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Any

from logpipe import fields as F
from logpipe.parse.exc import EXC_LINE

if TYPE_CHECKING:
    from logpipe.config import MultilineConfig

Line = tuple[int, int, str]
Event = tuple[int, int, str, list[str]]

_PASSTHROUGH_FORMATS = frozenset({"json", "common", "combined"})
_TIMESTAMPED_FORMATS = frozenset({"python", "python_short"})
_CHAIN_PREFIXES = ("During handling of the above exception",
                   "The above exception was the direct cause")
_TB_PREFIX = "Traceback (most recent call last)"
_FOREIGN_START = re.compile(r'(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL|TRACE):|\{"')


def _native_joiner(cfg: MultilineConfig, fmt: str) -> Any | None:
    """The core's joiner for this configuration, or None when the core is not built. A start
    pattern the core's regex engine cannot take is a ValueError whichever road runs (the
    configuration must not be valid or not depending on LOGPIPE_CORE)."""
    try:
        from logpipe import _core
    except ImportError:
        return None
    try:
        joiner = _core.Joiner(cfg.start_pattern or None, fmt in _TIMESTAMPED_FORMATS,
                              max(1, int(cfg.max_lines)), max(1, int(cfg.max_bytes)))
    except ValueError as exc:
        reason = str(exc).strip().splitlines()[-1].strip().removeprefix("error: ")
        raise ValueError(f"multiline.start_pattern {cfg.start_pattern!r} is not a pattern the native core's "
                         f"regex engine takes: {reason}") from None
    if os.environ.get("LOGPIPE_CORE", "").strip().lower() in ("off", "0", "false", "no"):
        return None
    return joiner


class MultilineJoiner:
    """Stateful per-file joiner: `feed` complete lines, get back completed events."""

    def __init__(self, cfg: MultilineConfig, fmt: str) -> None:
        self._py = _PythonJoiner(cfg, fmt)
        self.passthrough = self._py.passthrough
        self._core = None if self.passthrough else _native_joiner(cfg, fmt)
        self._since = 0.0

    @property
    def pending_start(self) -> int | None:
        """Start offset of the event held back (None: nothing held)."""
        return self._core.pending_start if self._core is not None else self._py.pending_start

    def feed(self, lines: list[Line]) -> list[Event]:
        """Add complete lines (file order); return the events they completed."""
        if self._core is None:
            return self._py.feed(lines)
        if not lines:
            return []
        out = [(s, e, t, [F.TAG_MULTILINE_CAPPED] if capped else []) for s, e, t, capped in self._core.feed(lines)]
        self._since = time.monotonic()
        return out

    def flush(self) -> list[Event]:
        """Force the pending event out (quiet timeout, EOF with --once, shutdown)."""
        if self._core is None:
            return self._py.flush()
        return [(s, e, t, [F.TAG_MULTILINE_CAPPED] if capped else []) for s, e, t, capped in self._core.flush()]

    def idle_for(self, now: float) -> float:
        """Seconds (time.monotonic clock) since the feed that left the pending event; 0 if none."""
        if self._core is None:
            return self._py.idle_for(now)
        if self._core.pending_start is None:
            return 0.0
        return max(0.0, now - self._since)


class _PythonJoiner:
    """The Python road's joiner (LOGPIPE_CORE=off)."""

    def __init__(self, cfg: MultilineConfig, fmt: str) -> None:
        self.max_lines = max(1, int(cfg.max_lines))
        self.max_bytes = max(1, int(cfg.max_bytes))
        self._start: re.Pattern[str] | None = None
        if cfg.start_pattern:
            try:
                self._start = re.compile(cfg.start_pattern)
            except re.error as exc:
                raise ValueError(f"multiline start_pattern {cfg.start_pattern!r} is not a valid regex: {exc}") from exc
        #: True when lines are never joined: callers may skip `feed` and treat each line as an event.
        self.passthrough = fmt == "json" or (fmt in _PASSTHROUGH_FORMATS and self._start is None)
        self._timestamped = fmt in _TIMESTAMPED_FORMATS
        self._lines: list[str] = []
        self._first = 0
        self._last = 0
        self._in_tb = False
        self._since = 0.0
        self.pending_start: int | None = None

    # -- public ----------------------------------------------------------------------
    def feed(self, lines: list[Line]) -> list[Event]:
        """Add complete lines (file order); return the events they completed."""
        if self.passthrough:
            return [(s, e, t, []) for s, e, t in lines]
        if not lines:
            return []
        out: list[Event] = []
        held = self._lines
        start = self._start
        for s, e, t in lines:
            if held:
                joins = (start.match(t) is None) if start is not None else self._continues(t)
                if joins:
                    if len(held) >= self.max_lines or e - self._first > self.max_bytes:
                        out.append(self._take(capped=True))
                        held = self._begin(s, e, t)
                    else:
                        held.append(t)
                        self._last = e
                        self._track(t)
                    continue
                out.append(self._take(capped=False))
            held = self._begin(s, e, t)
        self._since = time.monotonic()
        return out

    def flush(self) -> list[Event]:
        """Force the pending event out (quiet timeout, EOF with --once, shutdown)."""
        if not self._lines:
            return []
        return [self._take(capped=False)]

    def idle_for(self, now: float) -> float:
        """Seconds (time.monotonic clock) since the feed that left the pending event; 0 if none."""
        if not self._lines:
            return 0.0
        return max(0.0, now - self._since)

    # -- internals -------------------------------------------------------------------
    def _begin(self, s: int, e: int, t: str) -> list[str]:
        self._lines = [t]
        self._first = s
        self._last = e
        self.pending_start = s
        self._in_tb = False
        self._track(t)
        return self._lines

    def _take(self, *, capped: bool) -> Event:
        lines = self._lines
        if len(lines) == 1:
            text = lines[0]
        else:
            while len(lines) > 1 and not lines[-1].strip():
                lines.pop()  # trailing blank lines are kept in the offsets, not the text
            text = "\n".join(lines)
            if "\r" in text:  # CRLF files: one line ending inside the joined text
                text = text.replace("\r\n", "\n").removesuffix("\r")
        event = (self._first, self._last, text, [F.TAG_MULTILINE_CAPPED] if capped else [])
        self._lines = []
        self.pending_start = None
        self._in_tb = False
        return event

    def _track(self, t: str) -> None:
        """Remember whether we are inside a traceback (so its `Type: msg` line joins too)."""
        if t.startswith(_TB_PREFIX):
            self._in_tb = True
        elif t.strip() and t[0] not in " \t" and not t.startswith(_CHAIN_PREFIXES):
            self._in_tb = False

    def _continues(self, t: str) -> bool:
        if not t or t[0] in " \t\r" or not t.strip():
            return True
        if t.startswith(_TB_PREFIX) or t.startswith(_CHAIN_PREFIXES):
            return True
        if self._in_tb and EXC_LINE.match(t) is not None:
            return True
        # Python text formats: untimestamped lines continue a multi-line message, unless they
        # are plainly another writer's records (uvicorn/basicConfig `LEVEL:` lines, JSON).
        return self._timestamped and not t[:4].isdigit() and _FOREIGN_START.match(t) is None
