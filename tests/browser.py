"""Finding the headless browser the browser tests (HTML report, dashboard, page events) run.

Why: the path differs by distribution (Debian `chromium`, Ubuntu snaps, Chrome), and a test that
cannot find it must say what to install, not die on a hard-coded path.
"""

from __future__ import annotations

import os
import shutil

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str:
    """$LOGPIPE_CHROMIUM, else the first Chromium/Chrome on PATH; a clear test failure when none."""
    configured = os.environ.get("LOGPIPE_CHROMIUM", "").strip()
    if configured:
        found = shutil.which(configured)
        if found is None:
            pytest.fail(f"LOGPIPE_CHROMIUM={configured} is not an executable Chromium or Chrome")
        return found
    for name in NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    pytest.fail("the browser tests (HTML report, dashboard, page events) need headless Chromium, and none was found on PATH "
                f"({', '.join(NAMES)}): install it (Debian/Ubuntu: apt-get install chromium) or set "
                "LOGPIPE_CHROMIUM to a Chromium or Chrome binary")
