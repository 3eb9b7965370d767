"""`logpipe tail` as a user runs it: --once, config errors, bad input, signals."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

LOGPIPE = [sys.executable, "-m", "logpipe"]


def run(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(LOGPIPE + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def records(stdout: str) -> list[dict]:
    """Log records only: metric/alert records (event.kind) for the run ride along at the end."""
    parsed = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [r for r in parsed if "event.kind" not in r]


def derived(stdout: str) -> list[dict]:
    return [r for r in map(json.loads, filter(str.strip, stdout.splitlines())) if "event.kind" in r]


def test_once_to_stdout_with_autodetect_and_trailing_partial_line(tmp_path: Path) -> None:
    (tmp_path / "access.log").write_text(
        '127.0.0.1 - - [24/Nov/2026:07:00:00 +0000] "GET /api/users/1 HTTP/1.1" 200 512 "-" "curl/8"\n'
        '10.0.0.2 - - [24/Nov/2026:07:00:01 +0000] "POST /login HTTP/1.1" 401 12 "-" "curl/8"'
    )
    proc = run(["tail", "access.log", "--sink", "-", "--once"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    recs = records(proc.stdout)
    assert [(r["method"], r["path"], r["status"]) for r in recs] == [("GET", "/api/users/1", 200),
                                                                     ("POST", "/login", 401)]
    # The run's metric records (the unfinished interval) are flushed into the same sink at exit.
    metric = [r for r in derived(proc.stdout) if r["event.kind"] == "metric"]
    assert sum(r["count"] for r in metric if r.get("route") not in (None, "*") and r.get("method") != "*") == 2
    assert all(r["_id"] and r["log_file"] == "access.log" for r in recs)
    again = run(["tail", "access.log", "--sink", "-", "--once"], tmp_path)
    assert again.returncode == 0 and again.stdout == ""  # checkpointed: nothing twice


def test_default_sink_is_the_local_archive(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text('{"message": "to the archive"}\n')
    proc = run(["tail", "app.log", "--once"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    segments = sorted((tmp_path / "logpipe-archive").rglob("*.ndjson.gz"))
    archived = records("\n".join(gzip.decompress(p.read_bytes()).decode() for p in segments))
    assert [r["message"] for r in archived] == ["to the archive"]


def test_config_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    conf = tmp_path / "sidecar.toml"
    conf.write_text('[[inputs]]\npaths = ["x.log"]\nformatt = "json"\n')
    proc = run(["tail", "--config", str(conf), "--once"], tmp_path)
    assert proc.returncode == 2
    assert "unknown key 'inputs[0].formatt'" in proc.stderr or "formatt" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run(["tail", "x.log", "--tz", "Mars/Olympus", "--once"], tmp_path)
    assert proc.returncode == 2 and "Mars/Olympus" in proc.stderr and "Traceback" not in proc.stderr
    proc = run(["tail", "--once"], tmp_path)
    assert proc.returncode == 2 and "no inputs" in proc.stderr


def test_config_file_drives_everything(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("2026-11-24 07:00:00,123 - INFO - hello from a\n")
    conf = tmp_path / "sidecar.toml"
    conf.write_text(
        '[[inputs]]\npaths = ["logs/*.log"]\nformat = "python_short"\nservice = "billing"\ntags = ["edge"]\n'
        '[pipeline]\ncheckpoint_path = "state/ck.json"\n[sink]\nurl = "-"\n'
    )
    proc = run(["tail", "--config", str(conf), "--once"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    (rec,) = records(proc.stdout)
    assert rec["message"] == "hello from a" and rec["service"] == "billing" and "edge" in rec["tags"]
    assert (tmp_path / "state" / "ck.json").exists()


def test_corrupt_checkpoint_is_named_and_reset_recovers(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text('{"message": "x"}\n')
    ck = tmp_path / "ck.json"
    ck.write_text("{not json")
    proc = run(["tail", "app.log", "--sink", "-", "--once", "--checkpoint", str(ck)], tmp_path)
    assert proc.returncode == 2 and str(ck) in proc.stderr and "--reset-checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(["tail", "app.log", "--sink", "-", "--once", "--checkpoint", str(ck), "--reset-checkpoint"], tmp_path)
    assert proc.returncode == 0 and len(records(proc.stdout)) == 1


def test_bad_input_is_data_never_a_traceback(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "bad.log").write_bytes(
        b'{"message": "ok"}\n'
        b'{"message": "caf\xe9"}\n'
        b"\x00\x00\x00\x00{\"message\": \"after nul\"}\n"
        + b'{"message": "' + b"y" * 3_000_000 + b'"}\n'
        b'{"message": "truncated obj\n'
        b'{"message": "last"}\n'
    )
    (logs / "blob.log").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(4096))
    proc = run(["tail", str(logs / "*.log"), "--sink", "-", "--once", "--format", "json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "blob.log: skipped, binary" in proc.stderr
    recs = records(proc.stdout)
    assert len(recs) == 6
    tags = [r.get("tags", []) for r in recs]
    assert "_invalid_utf8" in tags[1]
    assert recs[2]["message"] == "after nul"
    assert "_truncated" in tags[3] and len(json.dumps(recs[3])) < 1_100_000
    assert "_parse_failure" in tags[4]
    assert recs[5]["message"] == "last"


@pytest.mark.timeout(60)
def test_sigterm_flushes_and_checkpoints(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f'{{"message": "m{i}"}}\n' for i in range(1000)))
    proc = subprocess.Popen(LOGPIPE + ["tail", "app.log", "--sink", "file:arch", "--checkpoint", "ck.json"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ck = tmp_path / "ck.json"
            if ck.exists() and list(json.loads(ck.read_text())["files"].values())[0]["offset"] == log.stat().st_size:
                break
            time.sleep(0.1)
        with open(log, "a") as fh:
            fh.write('{"message": "just before stop"}\n')
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    offsets = [e["offset"] for e in json.loads((tmp_path / "ck.json").read_text())["files"].values()]
    assert offsets == [log.stat().st_size]
    archived = records("\n".join(gzip.decompress(p.read_bytes()).decode() for p in (tmp_path / "arch").rglob("*.gz")))
    assert len(archived) == 1001


def test_format_is_detected_per_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text('{"@timestamp": "2026-11-24T07:00:00.000000Z", "level": "INFO", "message": "json"}\n')
    (logs / "access.log").write_text(
        '10.0.0.1 - - [24/Nov/2026:08:00:00 +0100] "GET /x HTTP/1.1" 404 10 "-" "curl/8"\n')
    (logs / "py.log").write_text("2026-11-24 07:00:00,500 - worker - WARNING - run:12 - slow job\n")
    proc = run(["tail", str(logs / "*.log"), "--sink", "-", "--once"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    by_file = {Path(r["log_file"]).name: r for r in records(proc.stdout)}
    assert by_file["app.log"]["level"] == "info" and by_file["app.log"]["message"] == "json"
    assert by_file["access.log"]["status"] == 404 and by_file["access.log"]["@timestamp"].startswith("2026-11-24T07:00:00")
    assert by_file["py.log"]["level"] == "warning" and by_file["py.log"]["logger"] == "worker"
