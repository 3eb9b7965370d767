"""Alert delivery off the pipeline's thread: stderr lines and a webhook with retries.

Why a queue and a daemon thread: a webhook that is down or slow must cost the pipeline
nothing but a counted failure. `notify` never blocks (a full queue drops and counts).
"""

from __future__ import annotations

import queue
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from logpipe import fields as F


class StderrNotifier:
    """One line per alert state change on stderr, for the operator watching the sidecar."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def notify(self, record: dict[str, Any]) -> None:
        stream = self.stream or sys.stderr
        try:
            stream.write(f"logpipe alert: {record.get(F.MESSAGE, '')}\n")
            stream.flush()
        except (OSError, ValueError):
            pass

    def stop(self, timeout: float = 1.0) -> None:
        return None


class WebhookNotifier:
    """POST {"text": ..., "alert": record} as JSON; retried with exponential backoff."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, retries: int = 3, backoff_s: float = 0.5,
                 max_queue: int = 1000, opener: Callable[..., Any] | None = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._open = opener or urllib.request.urlopen
        self.sent = 0
        self.failed = 0  # alerts given up on after all retries
        self.attempt_failures = 0
        self.dropped = 0  # queue full
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="logpipe-alert-webhook", daemon=True)
        self._thread.start()

    def notify(self, record: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                record = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if record is None:
                break
            self._deliver(record)

    def _deliver(self, record: dict[str, Any]) -> None:
        body = orjson.dumps({"text": record.get(F.MESSAGE, ""), "alert": record}, default=str)
        for attempt in range(self.retries + 1):
            try:
                req = urllib.request.Request(self.url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
                with self._open(req, timeout=self.timeout_s) as resp:
                    resp.read()
                self.sent += 1
                return
            except (urllib.error.URLError, OSError, ValueError) as exc:  # HTTPError is a URLError
                self.attempt_failures += 1
                self.last_error = str(exc)
            if attempt < self.retries and self._stop.wait(self.backoff_s * (2 ** attempt)):
                break
        self.failed += 1

    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout: float = 2.0) -> None:
        """Let queued alerts go out for up to `timeout`, then give up (daemon thread)."""
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            self._stop.set()
        self._thread.join(timeout)
        self._stop.set()
