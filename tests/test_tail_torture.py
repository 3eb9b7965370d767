"""Torture: a writer at ~10,000 lines/s rotating by rename and by copytruncate and gzipping old
generations, while `logpipe tail` is kill -9'ed and restarted; the archive must end up with
every written line exactly once (duplicates only as the same record with the same `_id`)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

WRITER = r'''
import gzip, os, shutil, sys, time
d, seconds, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
log = os.path.join(d, "app.log")
keep_plain, rotate_every = 3, 1.5
fh = open(log, "a", buffering=1 << 16)
seq, gz, rotations = 0, 0, 0
start = last_rot = time.monotonic()

def shift():
    global gz
    last = f"{log}.{keep_plain}"
    if os.path.exists(last):
        gz += 1
        with open(last, "rb") as src, gzip.open(f"{log}.old{gz:04d}.gz", "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst)
        os.unlink(last)
    for n in range(keep_plain - 1, 0, -1):
        if os.path.exists(f"{log}.{n}"):
            os.rename(f"{log}.{n}", f"{log}.{n + 1}")

while True:
    now = time.monotonic()
    if now - start >= seconds:
        break
    target = int((now - start) * rate)
    out = []
    while seq < target:
        seq += 1
        out.append('{"@timestamp":"2026-11-24T07:00:00.000000Z","level":"info","message":"w-%07d"}\n' % seq)
    fh.write("".join(out))
    if now - last_rot >= rotate_every:
        fh.flush()
        shift()
        rotations += 1
        if rotations % 2:
            fh.close()
            os.rename(log, f"{log}.1")
            fh = open(log, "a", buffering=1 << 16)
        else:
            shutil.copyfile(log, f"{log}.1")
            os.truncate(log, 0)
        last_rot = now
    else:
        fh.flush()
    time.sleep(0.01)
fh.close()
print(seq, rotations, gz, flush=True)
'''


def start_tail(tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "logpipe", "tail", str(tmp / "logs" / "app.log*"), "--sink", f"file:{tmp / 'arch'}",
         "--checkpoint", str(tmp / "ck.json"), "--format", "json", "--no-scrub"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_kill_9_restarts_during_rotations_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    seconds = 12.0
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(logs), str(seconds), "10000"],
                              stdout=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    tail = start_tail(tmp_path)
    try:
        for at in (2.0, 4.5, 7.0, 9.5):  # kill -9 four times while the writer rotates
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            os.kill(tail.pid, signal.SIGKILL)
            tail.wait(10)
            tail = start_tail(tmp_path)
        out, _ = writer.communicate(timeout=60)
        written, rotations, gzipped = map(int, out.split())
        assert rotations >= 6 and gzipped >= 2

        def caught_up() -> bool:
            ck = tmp_path / "ck.json"
            if not ck.exists():
                return False
            entries = json.loads(ck.read_text())["files"]
            live = logs / "app.log"
            return any(e["path"] == str(live) and e["offset"] == live.stat().st_size for e in entries.values())

        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not caught_up():
            time.sleep(0.2)
        time.sleep(1.0)
        tail.send_signal(signal.SIGTERM)
        _, err = tail.communicate(timeout=30)
        assert tail.returncode == 0, err.decode()[-2000:]
        assert b"Traceback" not in err
    finally:
        for proc in (writer, tail):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    ids_of: dict[str, set[str]] = defaultdict(set)
    count = 0
    for seg in sorted((tmp_path / "arch").rglob("*.ndjson.gz")):
        for line in gzip.decompress(seg.read_bytes()).splitlines():
            rec = json.loads(line)
            if "event.kind" in rec:  # the sidecar's own metric/alert records
                continue
            ids_of[rec["message"]].add(rec["_id"])
            count += 1
    expected = {f"w-{i:07d}" for i in range(1, written + 1)}
    missing = expected - set(ids_of)
    assert not missing, f"{len(missing)} of {written} lines lost, e.g. {sorted(missing)[:5]}"
    assert set(ids_of) == expected, f"unexpected records: {sorted(set(ids_of) - expected)[:5]}"
    assert all(len(ids) == 1 for ids in ids_of.values()), "a line came back under a second _id"
    duplicates = count - written
    print(f"torture: {written} lines, {rotations} rotations, {gzipped} gzipped, {duplicates} duplicates")
    assert duplicates <= written * 0.05, f"{duplicates} duplicates: more than lost acks explain"
