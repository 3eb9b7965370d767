"""Discovery: which paths match the inputs now, and when to look again.

File events (watchdog, inotify on Linux) wake the reader as soon as something changes;
when they cannot be had (inotify limits: ENOSPC/EMFILE, or a file system that sends
none) the watcher falls back to stat polling with a warning. A periodic reconcile runs
in either mode, so a missed event never stalls a file.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from logpipe.tail.walk import walk_glob

log = logging.getLogger("logpipe.tail")

#: Compressed generations are never tailed: they are copies of data already read. Temp
#: files (a rotator's `app.log.1.gz.tmp` while it compresses) are never logs.
ALWAYS_EXCLUDED = ("*.gz", "*.bz2", "*.xz", "*.zst", "*.zip", "*.tmp", "*.part", "*.swp", "*~")


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def watch_root(pattern: str) -> tuple[str, bool]:
    """The directory to watch for a path or glob, and whether recursively."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts:
        if _is_glob(part):
            break
        fixed.append(part)
    recursive = "**" in pattern
    if len(fixed) == len(parts):  # a plain path: watch its directory
        fixed = fixed[:-1]
    root = str(Path(*fixed)) if fixed else "."
    return root, recursive


def excluded(path: str, patterns: list[str]) -> bool:
    name = os.path.basename(path)
    for pat in (*ALWAYS_EXCLUDED, *patterns):
        if fnmatch.fnmatch(name, pat) or fnmatch.fnmatch(path, pat):
            return True
    return False


def expand(pattern: str, exclude: list[str], gz: bool = False,
           on_loop: Callable[[str], None] | None = None) -> list[str]:
    """Regular files the pattern matches now (plain paths included only if they exist).

    `gz=True` lists the `.gz` generations instead (never tailed; see TailFront catch-up).
    A `**` pattern enters each directory once (`on_loop` hears of a directory met again)."""
    if "**" in pattern:
        candidates = walk_glob(pattern, on_loop)
    elif _is_glob(pattern):
        candidates = sorted(glob.glob(pattern))
    else:
        candidates = [pattern]
    out = []
    for path in candidates:
        if gz:
            if not path.endswith(".gz") or excluded(path[:-3], exclude):
                continue
        elif excluded(path, exclude):
            continue
        try:
            if os.path.isfile(path):
                out.append(path)
        except OSError:
            continue
    return out


class Watcher:
    """Wakes the reader on file events and says when a discovery scan is due."""

    def __init__(self, patterns: list[str], poll_interval_s: float, reconcile_interval_s: float,
                 use_events: bool = True) -> None:
        self.patterns = patterns
        self.poll_interval = max(0.01, poll_interval_s)
        self.reconcile_interval = max(self.poll_interval, reconcile_interval_s)
        self._wake = threading.Event()
        self._scan_requested = True
        self._events = 0  # file events seen (the handler thread only increments)
        self._last_scan = 0.0
        self._observer = None
        self._watched: set[str] = set()
        self.polling = not use_events
        if use_events:
            self._start_events()

    # -- events -------------------------------------------------------------------------
    def _start_events(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - watchdog is a dependency
            self._fallback("watchdog is not installed")
            return

        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # type: ignore[no-untyped-def]
                if event.event_type in ("created", "moved", "deleted"):
                    watcher._scan_requested = True
                watcher._events += 1
                watcher._wake.set()

        self._handler = _Handler()
        try:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        except OSError as exc:
            self._fallback(self._reason(exc))
            return
        self._schedule_roots()

    def _schedule_roots(self) -> None:
        if self._observer is None:
            return
        for pattern in self.patterns:
            root, recursive = watch_root(pattern)
            if root in self._watched or not os.path.isdir(root):
                continue
            try:
                self._observer.schedule(self._handler, root, recursive=recursive)
                self._watched.add(root)
            except OSError as exc:
                self._fallback(self._reason(exc))
                return

    @staticmethod
    def _reason(exc: OSError) -> str:
        if exc.errno in (errno.ENOSPC, errno.EMFILE):
            return f"inotify limit reached ({errno.errorcode.get(exc.errno or 0, exc.errno)})"
        return f"file events unavailable ({exc})"

    def _fallback(self, reason: str) -> None:
        log.warning("%s; polling files every %.2fs instead", reason, self.poll_interval)
        self.polling = True
        self.stop()

    def events_missed(self) -> None:
        """Data appeared that no event announced: this file system sends none; poll."""
        if not self.polling:
            self._fallback("file changes arrive without file events")

    # -- timing -------------------------------------------------------------------------
    def scan_due(self, now: float) -> bool:
        interval = self.poll_interval if self.polling else self.reconcile_interval
        return self._scan_requested or now - self._last_scan >= interval

    def scanned(self, now: float) -> None:
        self._scan_requested = False
        self._last_scan = now
        if self._observer is not None and len(self._watched) < len(self.patterns):
            self._schedule_roots()

    def request_scan(self) -> None:
        self._scan_requested = True

    def wake(self) -> None:
        self._wake.set()

    def wait(self, timeout: float) -> bool:
        """Sleep until an event, a `wake()` or `timeout`; True when a file event came."""
        cap = self.poll_interval if self.polling else self.reconcile_interval
        before = self._events
        self._wake.wait(max(0.0, min(timeout, cap)))
        self._wake.clear()
        return self._events != before

    def stop(self) -> None:
        obs, self._observer = self._observer, None
        if obs is not None:
            try:
                obs.stop()
                obs.join(timeout=2)
            except Exception:  # noqa: BLE001 - stopping is best effort
                pass
