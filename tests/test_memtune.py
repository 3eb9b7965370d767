"""Malloc thresholds: applied on glibc, inherited by helpers, user settings respected."""

from __future__ import annotations

import subprocess
import sys

from logpipe.memtune import CHILD_ENV, child_env, tune_malloc


def test_tune_malloc_applies_on_glibc_linux() -> None:
    if sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver()):
        assert tune_malloc() is True
    else:  # musl, macOS: nothing to tune, and nothing breaks
        assert tune_malloc() in (True, False)


def test_helper_environment_carries_thresholds_but_user_values_win(monkeypatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "12345")
    env = child_env()
    assert env["MALLOC_TRIM_THRESHOLD_"] == "12345"
    assert env["MALLOC_MMAP_THRESHOLD_"] == CHILD_ENV["MALLOC_MMAP_THRESHOLD_"]
    out = subprocess.run([sys.executable, "-c", "import os; print(os.environ['MALLOC_TOP_PAD_'])"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == CHILD_ENV["MALLOC_TOP_PAD_"]
