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
        self.loaded_mtime: float | None = None  # when the loaded file was last written
        self.previous_start: float | None = None  # when a tailer last started on this store
        # Wall time of the start of the last discovery scan after which every file found was
        # identified (its key is in the store): files that appeared later were never seen.
        self.surveyed: float | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        if reset:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        else:
            self._entries = self._load()

    def _take_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            previous = lock_path.stat().st_mtime
        except FileNotFoundError:
            previous = None
        fh = open(lock_path, "a+")  # noqa: SIM115 - held for the store's lifetime
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise CheckpointError(
                f"checkpoint {self.path} is in use by another logpipe process (lock {lock_path})"
            ) from None
        self._lock_fh = fh
        self.previous_start = previous
        os.utime(lock_path)  # the next start learns when this one ran, even if nothing gets saved

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
            self.loaded_mtime = self.path.stat().st_mtime
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
        surveyed = data.get("surveyed")
        if isinstance(surveyed, int | float) and not isinstance(surveyed, bool):
            self.surveyed = float(surveyed)
        return files

    def get(self, key: str) -> int | None:
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else int(entry["offset"])

    def set(self, key: str, offset: int, path: str = "", check: tuple[int, str] | None = None) -> None:
        """`check` (length, hash of the file's first bytes) tells apart files with the same
        first line (logpipe.tail.identity); an entry keeps its last one when none is given."""
        with self._lock:
            entry = self._entries.get(key)
            old_check = entry.get("check") if entry is not None else None
            new_check = list(check) if check is not None else old_check
            if (entry is not None and entry["offset"] == offset and entry.get("path") == path
                    and old_check == new_check):
                return
            self._entries[key] = {"offset": offset, "path": path, "updated": round(time.time(), 3)}
            if new_check is not None:
                self._entries[key]["check"] = new_check
            self._dirty = True

    def mark_surveyed(self, when: float) -> None:
        """Saved with the next write (never forces one)."""
        with self._lock:
            self.surveyed = when

    def check(self, key: str) -> tuple[int, str] | None:
        with self._lock:
            entry = self._entries.get(key)
        raw = entry.get("check") if entry is not None else None
        if isinstance(raw, list) and len(raw) == 2 and isinstance(raw[0], int) and isinstance(raw[1], str):
            return (raw[0], raw[1])
        return None

    def keys_for(self, fp: str) -> list[str]:
        """Keys of this content fingerprint: the bare one and those of colliding files."""
        with self._lock:
            return [k for k in self._entries if k == fp or k.startswith(fp + ".")]

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
            doc: dict[str, Any] = {"version": 1, "files": self._entries}
            if self.surveyed is not None:
                doc["surveyed"] = self.surveyed
            payload = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
            self._dirty = False
        atomic_write(self.path, payload)

    def close(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None
