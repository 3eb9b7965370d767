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


def test_tail_and_replay_tune_malloc_at_start(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    import logpipe.commands.replay as replay_cmd
    import logpipe.commands.tail as tail_cmd
    from logpipe.cli import cli

    calls: list[str] = []
    for module in (tail_cmd, replay_cmd):
        monkeypatch.setattr(module, "tune_malloc", lambda name=module.__name__: calls.append(name) or True)
        monkeypatch.setattr(module, "quiet_gc", lambda: None)  # keep this test process's GC settings
    log = tmp_path / "app.log"
    log.write_text('{"message": "x"}\n')
    runner = CliRunner()
    tail = runner.invoke(cli, ["tail", str(log), "--once", "--sink", "null:", "--no-metrics",
                               "--checkpoint", str(tmp_path / "ck.json")])
    assert tail.exit_code == 0, tail.output
    replay = runner.invoke(cli, ["replay", str(log), "--sink", "null:"])
    assert replay.exit_code == 0, replay.output
    assert calls == ["logpipe.commands.tail", "logpipe.commands.replay"]


def test_freed_memory_up_to_128_mb_is_kept_in_this_process_and_its_helpers(monkeypatch) -> None:
    """README: freed memory is returned to the kernel lazily, trim threshold 128 MB."""
    import ctypes

    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1

    class FakeLibc:
        def __init__(self) -> None:
            self.mallopt = mallopt  # a plain function takes the `argtypes` attribute ctypes sets

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    assert tune_malloc() is True
    assert (-1, 128 * 1024 * 1024) in calls  # M_TRIM_THRESHOLD
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert child_env()["MALLOC_TRIM_THRESHOLD_"] == str(128 * 1024 * 1024)
