"""`logpipe tail --once` on access logs and a multi-line Python log: the same output with the
native core on (LOGPIPE_CORE=on, text road through TextCore) and off (the Python road)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LOGPIPE = [sys.executable, "-m", "logpipe"]


def access_log(n: int = 120) -> str:
    out = []
    for i in range(n):
        ref = "https://shop.example/" if i % 4 else "-"
        line = (f'10.0.{i % 7}.{i} - {"-" if i % 3 else "frank"} [24/Nov/2026:07:{i // 60:02d}:{i % 60:02d} +0100] '
                f'"{"GET" if i % 2 else "post"} /api/items/{i}?q={i} HTTP/1.1" {200 if i % 9 else 503} {i * 17} '
                f'"{ref}" "curl/8.{i}" 0.{i:03d}')
        if i % 10 == 0:
            line = line.replace("curl", "mail bob@example.com")  # scrubbed: the Python road
        if i % 17 == 0:
            line = f"::1 - - [24/Nov/2026:07:00:00 +0000] \"\\x16\\x03\\x01\" 400 {i}"  # escaped request
        if i % 23 == 0:
            line = "not an access line"  # _parse_failure, counted
        out.append(line)
        if i % 31 == 0:
            out.append("")
    return "\n".join(out) + "\n"


def tail(tmp: Path, name: str, fmt: str, core: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOGPIPE_CORE=core)
    return subprocess.run([*LOGPIPE, "tail", name, "--once", "--format", fmt, "--config", "cfg.toml",
                           "--checkpoint", f"ck-{name}-{core}.json", "--sink", "-", "--no-metrics"],
                          cwd=tmp, capture_output=True, text=True, timeout=120, env=env)


def records(stdout: str) -> list[dict]:
    """The records, the read time of those that carry it masked (`_parse_failure`: no time in the line)."""
    recs = [json.loads(x) for x in stdout.splitlines()]
    for r in recs:
        if "_parse_failure" in r.get("tags", ()):
            r["@timestamp"] = "<read time>"
    return recs


@pytest.mark.parametrize(("name", "fmt", "text"), [
    ("access.log", "combined", access_log()),
    ("crlf.log", "combined", access_log(40).replace("\n", "\r\n")),
    ("app.log", "python", "2026-11-24 07:00:00,123 - app - ERROR - boom\nTraceback (most recent call last):\n"
                          '  File "a.py", line 1, in <module>\nValueError: bad\n'
                          "2026-11-24 07:00:01,000 - app - INFO - next\n"),
])
def test_tail_output_is_the_same_with_and_without_the_core(tmp_path: Path, name: str, fmt: str, text: str) -> None:
    (tmp_path / name).write_text(text, newline="")
    (tmp_path / "cfg.toml").write_text('[pipeline]\nbatch_max_records = 16\nhost = "h1"\n')
    on, off = tail(tmp_path, name, fmt, "on"), tail(tmp_path, name, fmt, "off")
    assert on.returncode == 0 and off.returncode == 0, (on.stderr, off.stderr)
    assert records(on.stdout) == records(off.stdout)
    assert on.stdout.count("\n") == off.stdout.count("\n") > 0
    assert on.stderr == off.stderr  # lines read, delivered, unparsed, dropped
    if name == "access.log":
        recs = records(on.stdout)
        assert len(recs) == 120 and "unparsed" in on.stderr and "empty_line" in on.stderr
        assert recs[1]["@timestamp"] == "2026-11-24T06:00:01.000000Z" and recs[2]["method"] == "POST"
        assert "[REDACTED:email]" in recs[10]["user_agent"]
        assert [r["log_offset"] for r in recs] == sorted(r["log_offset"] for r in recs)
