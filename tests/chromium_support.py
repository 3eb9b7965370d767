"""Headless Chromium for browser tests, driven by its own command line (no extra driver).

Why the command line: `--dump-dom` after `--virtual-time-budget` gives the DOM once the page's
scripts and their fetches have run, and `--screenshot` writes a PNG; that is all the dashboard
and browser-event tests need, with nothing to install beyond Debian's `chromium`.
Chromium is found by `browser.find_chromium` ($LOGPIPE_CHROMIUM or PATH).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from browser import find_chromium

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")


def _run(args: list[str], budget_ms: int, timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="logpipe-chromium-") as profile:
        cmd = [find_chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args]
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise AssertionError(f"chromium exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return proc


def dump_dom(url: str, *, budget_ms: int = 3000, timeout_s: float = 90.0) -> str:
    """The page's DOM after its scripts ran for `budget_ms` of virtual time."""
    return _run(["--dump-dom", url], budget_ms, timeout_s).stdout.decode("utf-8", "replace")


def screenshot(url: str, path: Path, *, size: str = "1400,1400", budget_ms: int = 3000,
               timeout_s: float = 90.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--screenshot={path}", f"--window-size={size}", url], budget_ms, timeout_s)
    if not path.exists() or path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"chromium wrote no PNG at {path}")
    return path


def artifact_dir(default: Path) -> Path:
    """$LOGPIPE_TEST_ARTIFACTS (CI keeps it) or the test's tmp dir."""
    configured = os.environ.get("LOGPIPE_TEST_ARTIFACTS", "").strip()
    return Path(configured) if configured else default


class Elements(HTMLParser):
    """Collects elements carrying data-* attributes (with their text) from a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict] = []
        self._open: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = {"tag": tag, "attrs": {k: v or "" for k, v in attrs}, "text": "", "children": []}
        if self._open:
            self._open[-1]["children"].append(node)
        self.found.append(node)
        if tag not in ("meta", "link", "br", "img", "input"):
            self._open.append(node)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            node = self._open.pop()
            if node["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for node in self._open:
            node["text"] += data


def parse(html: str) -> list[dict]:
    p = Elements()
    p.feed(html)
    return p.found
