"""Durable offsets: content fingerprint -> byte offset acknowledged by the sink.

Stored as one small JSON file replaced atomically (temp file, fsync, rename, fsync of the
directory), so a `kill -9` at any moment leaves either the old or the new version, never
a torn one. A lock file keeps two tailers from sharing (and corrupting) one store.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from logpipe.durable import atomic_write

MAX_ENTRIES = 10_000  # oldest entries beyond this are forgotten (files long gone)


class CheckpointError(RuntimeError):
    """The checkpoint file cannot be used; the message names it and says what to do."""


class CheckpointStore:
    """fingerprint -> {"offset", "path", "updated"}; `set` then `save` (thread-safe)."""

    def __init__(self, path: str | os.PathLike[str], reset: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        self._lock_fh = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        if reset:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        else:
            self._entries = self._load()

    def _take_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fh = open(lock_path, "a+")  # noqa: SIM115 - held for the store's lifetime
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise CheckpointError(
                f"checkpoint {self.path} is in use by another logpipe process (lock {lock_path})"
            ) from None
        self._lock_fh = fh

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CheckpointError(f"checkpoint {self.path} cannot be read: {exc.strerror}") from None
        hint = "fix or delete it, or run with --reset-checkpoint to start over"
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CheckpointError(f"checkpoint {self.path} is corrupt ({exc}); {hint}") from None
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("offset"), int) and v["offset"] >= 0
            for v in files.values()
        ):
            raise CheckpointError(f"checkpoint {self.path} is corrupt (unexpected structure); {hint}")
        return files

    def get(self, key: str) -> int | None:
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else int(entry["offset"])

    def set(self, key: str, offset: int, path: str = "") -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry["offset"] == offset and entry.get("path") == path:
                return
            self._entries[key] = {"offset": offset, "path": path, "updated": round(time.time(), 3)}
            self._dirty = True

    def entries(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._entries.items()}

    def save(self) -> None:
        """Write the store if it changed: temp + fsync + rename + directory fsync."""
        with self._lock:
            if not self._dirty:
                return
            if len(self._entries) > MAX_ENTRIES:
                keep = sorted(self._entries.items(), key=lambda kv: kv[1].get("updated", 0))[-MAX_ENTRIES:]
                self._entries = dict(keep)
            payload = orjson.dumps({"version": 1, "files": self._entries}, option=orjson.OPT_INDENT_2)
            self._dirty = False
        atomic_write(self.path, payload)

    def close(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None
