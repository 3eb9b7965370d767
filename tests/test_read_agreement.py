"""`report`, `tail` and `query --archive` read a hostile corpus line for line alike.

Why: each used to read files its own way (report and query split and decoded bytes
themselves), so a NUL run, an over-long line or a byte that is not UTF-8 gave three different
answers. They now share the tail's reader; this pins that they agree on every line.
"""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from logpipe import fields as F

LOGPIPE = [sys.executable, "-m", "logpipe"]
MAX_LINE = 1_048_576  # the default [pipeline] max_line_bytes


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(LOGPIPE + args, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _access(i: int, rng: random.Random) -> dict[str, Any]:
    return {"@timestamp": f"2026-12-01T10:{i // 60 % 60:02d}:{i % 60:02d}.000000Z", "level": "info",
            "message": f"request {i}", "request_id": f"r-{i}", "method": rng.choice(["GET", "POST"]),
            "path": f"/api/v1/items/{rng.randint(1, 9999)}", "status": rng.choice([200, 200, 201, 404, 500]),
            "duration_ms": round(rng.uniform(1, 900), 3)}


def _corpus(logs: Path) -> int:
    """Mixed access/error/app JSON records in random order with hostile lines; a text log with
    tracebacks and CRLF. Returns the number of physical lines written."""
    rng = random.Random(13)
    lines: list[bytes] = []
    for i in range(400):
        lines.append(orjson.dumps(_access(i, rng)))
    for i in range(60):  # error records naming the request (no status): log lines, not requests
        lines.append(orjson.dumps({"@timestamp": f"2026-12-01T10:00:{i % 60:02d}.500000Z", "level": "error",
                                   "message": f"unhandled exception {i}", "method": "GET",
                                   "path": f"/api/v1/items/{i}", "exception": {"type": "KeyError"}}))
    for i in range(40):
        lines.append(orjson.dumps({"@timestamp": "2026-12-01T10:00:01.000000Z", "level": "warning",
                                   "message": f"slow query {i}"}))
    hostile = [
        orjson.dumps(_access(1000, rng)).replace(b'request 1000', b'request\x00 1000'),  # NUL inside
        b"\x00" * 5000 + orjson.dumps(_access(1001, rng)),  # a copytruncate hole before a record
        orjson.dumps(_access(1002, rng)).replace(b'request 1002', b'request \xff\xfe 1002'),  # not UTF-8
        orjson.dumps(_access(1003, rng)) + b"\r",  # CRLF
        orjson.dumps({**_access(1004, rng), "blob": "x" * (MAX_LINE + 200_000)}),  # over-long: truncated
        b"\xff\xfe\x00 not json at all \x00",
        orjson.dumps({"level": "info", "message": "x" * (MAX_LINE + 10)}) + b"\r",  # over-long and CRLF
    ]
    lines += hostile
    rng.shuffle(lines)
    (logs / "access.log").write_bytes(b"\n".join(lines))  # the last line has no newline
    text = []
    for i in range(30):
        text.append(f"2026-12-01 10:00:{i:02d},123 INFO worker.jobs: job {i} done")
        if i % 10 == 3:
            text += [f"2026-12-01 10:00:{i:02d},456 ERROR worker.jobs: job {i} failed",
                     "Traceback (most recent call last):", '  File "w.py", line 3, in run',
                     "ValueError: bad \udcff input"]
    raw = "\r\n".join(text).encode("utf-8", "surrogateescape") + b"\r\n"
    (logs / "worker.log").write_bytes(raw)
    return len(lines) + len(text)


def _archived(root: Path) -> list[dict[str, Any]]:
    out = []
    for seg in sorted(root.rglob("*.ndjson.gz")):
        out += [orjson.loads(x) for x in gzip.decompress(seg.read_bytes()).splitlines() if x.strip()]
    return [r for r in out if F.EVENT_KIND not in r]


def _query(args: list[str], cwd: Path) -> list[dict[str, Any]]:
    proc = _run(["query", *args, "--json", "--limit", "100000"], cwd)
    return [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]


def test_report_tail_and_query_agree_on_a_hostile_corpus(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    n_lines = _corpus(logs)

    _run(["tail", "logs/*.log", "--once", "--sink", "file:arch", "--checkpoint", "ck.json"], tmp_path)
    shipped = _archived(tmp_path / "arch")
    report = json.loads(_run(["report", "logs/*.log", "--json"], tmp_path).stdout)

    # the same records, the same requests, levels and markers
    assert report["lines"] == n_lines
    assert report["records"] == len(shipped)
    access = [r for r in shipped if F.is_access(r)]
    assert report["overall"]["count"] == len(access) == 400 + 4  # the truncated request is a parse failure
    assert report["status_codes"] == {str(k): v for k, v in Counter(r[F.STATUS] for r in access).items()}
    levels = Counter(r[F.LEVEL] for r in shipped if not F.is_access(r) and F.LEVEL in r)
    assert report["levels"] == dict(levels)
    tags = Counter(t for r in shipped for t in r.get(F.TAGS, []))
    assert report["tagged"] == dict(tags)
    assert tags["_truncated"] == 2 and tags["_nul_bytes"] == 3 and tags["_invalid_utf8"] >= 3
    assert report["parse_failures"] == tags["_parse_failure"]

    # query --archive finds every shipped record, and each marker as often as the report counts it
    found = [r for r in _query(["", "--archive", "arch"], tmp_path) if F.EVENT_KIND not in r]
    assert sorted(r[F.ID] for r in found) == sorted(r[F.ID] for r in shipped)
    for tag, n in tags.items():
        assert len(_query([f"tags:{tag}", "--archive", "arch"], tmp_path)) == n, tag

    # query --archive over the raw JSON log reads each line as the tail did: NULs dropped,
    # bytes that are not UTF-8 replaced, CR stripped. (Its line limit is an archive's, longer
    # than a log line's: an archived record is a whole log line plus fields.)
    raw = [r for r in _query(["", "--archive", "logs"], tmp_path) if len(orjson.dumps(r)) < MAX_LINE]
    json_shipped = [r for r in shipped if r.get(F.LOG_FILE, "").endswith("access.log")
                    and "_parse_failure" not in r.get(F.TAGS, [])]
    key = (F.MESSAGE, F.REQUEST_ID, F.STATUS, F.PATH, F.LEVEL)
    assert sorted(orjson.dumps([r.get(k) for k in key]) for r in raw) == \
        sorted(orjson.dumps([r.get(k) for k in key]) for r in json_shipped)
