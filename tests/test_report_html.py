"""`logpipe report --html` opens in headless Chromium without console errors and shows charts."""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest
from browser import find_chromium
from click.testing import CliRunner

from logpipe.cli import cli
from logpipe.metrics.synth import combined_lines, traffic


def _chromium(page: Path, tmp: Path, name: str) -> tuple[Path, str]:
    shot = tmp / f"{name}.png"
    proc = subprocess.run(
        [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp / ('profile-' + name)}", f"--screenshot={shot}", "--window-size=1280,2000",
         "--enable-logging=stderr", "--v=0", page.as_uri()],
        capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return shot, proc.stderr


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    t = traffic(6000, seed=9, rps=20)  # five minutes of traffic: several points per chart
    log = tmp_path / "access.log"
    log.write_text("\n".join(combined_lines(t)) + "\n")
    page = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(log), "--html", str(page)], terminal_width=160)
    assert result.exit_code == 0, result.output
    html = page.read_text()

    # self-contained: nothing to fetch
    assert not re.search(r"<script[^>]*\bsrc=|<link\b|<img\b|url\(|@import", html)
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html)
    # the charts are there: four time series and two bar charts
    assert html.count("<svg") == 6 and html.count("<polyline") == 4
    assert "/api/users/{id}" in html and "Slowest requests" in html

    shot, stderr = _chromium(page, tmp_path, "report")
    assert _console_lines(stderr) == []
    assert _png_size(shot) == (1280, 2000)
    assert shot.stat().st_size > 40_000  # a blank or error page compresses to a few KB

    # the console check itself works: a page that throws is caught
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>throw new Error("boom")</script></body></html>')
    _shot, bad_err = _chromium(bad, tmp_path, "bad")
    assert any("boom" in line for line in _console_lines(bad_err))


def test_a_missing_browser_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOGPIPE_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(pytest.fail.Exception, match="LOGPIPE_CHROMIUM=.*no-such-chromium"):
        find_chromium()
    monkeypatch.delenv("LOGPIPE_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install chromium\) or set LOGPIPE_CHROMIUM"):
        find_chromium()
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_chromium() == str(fake)  # found on PATH, wherever it is
