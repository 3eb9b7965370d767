"""A sidecar with a shared key pointed at a forward server without <security> (issue 13, #13).

Such a server accepts the connection and waits for data without a word (as a real Fluentd does:
tests/data/fluentd_captures/no_security.json), so a client waiting for the HELO used to time
out and retry for ever, even with --once. Now: a clear error naming the server; --once exits
non-zero in bounded time; follow mode backs off and says it once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fluentd_receiver import FluentdReceiver


def _setup(tmp_path: Path, port: int, ack_timeout_s: float | None = None) -> tuple[Path, Path, Path]:
    log = tmp_path / "app.log"
    log.write_text("".join(json.dumps({"level": "info", "message": f"line {i}", "service": "api"}) + "\n"
                           for i in range(5)), encoding="utf-8")
    checkpoint = tmp_path / "cp.json"
    conf = tmp_path / "sidecar.toml"
    conf.write_text(f"""
[pipeline]
checkpoint_path = "{checkpoint}"

[sink]
url = "forward://127.0.0.1:{port}"
shared_key = "a-key-the-server-does-not-know-about"
{f"ack_timeout_s = {ack_timeout_s}" if ack_timeout_s else ""}
""", encoding="utf-8")
    return log, conf, checkpoint


def _cmd(log: Path, conf: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "logpipe", "tail", str(log), "--config", str(conf), *extra]


def test_once_exits_nonzero_within_30s_naming_the_server(tmp_path: Path) -> None:
    with FluentdReceiver() as rx:  # no shared_key: no <security>, no HELO
        log, conf, checkpoint = _setup(tmp_path, rx.port)  # default ack timeout (30 s)
        t0 = time.monotonic()
        proc = subprocess.run(_cmd(log, conf, "--once"), capture_output=True, text=True, timeout=90,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        elapsed = time.monotonic() - t0
        received = rx.count
    assert proc.returncode != 0
    assert elapsed < 30, f"--once took {elapsed:.1f}s"
    assert f"forward://127.0.0.1:{rx.port}" in proc.stderr
    assert "no HELO" in proc.stderr and "<security>" in proc.stderr, proc.stderr
    assert received == 0
    assert not checkpoint.exists(), "nothing was delivered, so nothing may be checkpointed"


def test_follow_mode_backs_off_and_says_it_once(tmp_path: Path) -> None:
    with FluentdReceiver() as rx:
        log, conf, _ = _setup(tmp_path, rx.port, ack_timeout_s=0.5)
        stderr_path = tmp_path / "stderr.txt"
        with stderr_path.open("w") as err:
            proc = subprocess.Popen(_cmd(log, conf), stdout=subprocess.DEVNULL, stderr=err,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            try:
                deadline = time.monotonic() + 60
                while rx.connections < 4 and time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.1)
                tries = rx.connections
                assert proc.poll() is None, "follow mode must keep waiting for the server to be fixed"
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    text = stderr_path.read_text()
    assert tries >= 4, f"only {tries} connection attempts in 60 s"
    assert text.count("no HELO") == 1, text
    assert f"forward://127.0.0.1:{rx.port}" in text
    assert rx.count == 0
