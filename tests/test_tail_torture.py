"""Torture: a writer at ~10,000 lines/s rotating by rename and by copytruncate and gzipping old
generations, while `logpipe tail` is kill -9'ed and restarted; the archive must end up with
every written line exactly once (duplicates only as the same record with the same `_id`).

Nothing here runs on fixed times: a tailer is killed only once it has shown it is working
(its checkpoint advanced) and the writer has rotated since it started, and the writer runs
until the test has made its kills, so a loaded machine makes the test slower, not weaker."""

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

KILLS = 4
MIN_ROTATIONS = 7  # keep_plain = 3: generations start being gzipped at the 4th
BATCH_RECORDS, INFLIGHT_BATCHES = 2000, 8  # the pipeline's defaults: what one kill can leave unacknowledged

WRITER = r'''
import gzip, os, shutil, sys, time
d, stop_file, status, rate = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
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
    if os.path.exists(stop_file):
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
        with open(status + ".new", "w") as st:
            st.write(str(rotations))
        os.replace(status + ".new", status)
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


def start_tail(tmp: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "logpipe", "tail", str(tmp / "logs" / "app.log*"), "--sink", f"file:{tmp / 'arch'}",
         "--checkpoint", str(tmp / "ck.json"), "--format", "json", "--no-scrub", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def rotations(status: Path) -> int:
    try:
        return int(status.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def wait_until(pred, what: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    """Bounded wait on a condition; a tailer that died meanwhile fails the test with its stderr."""
    deadline = time.monotonic() + timeout
    while not pred():
        if proc.poll() is not None:
            pytest.fail(f"tailer exited ({proc.returncode}) while waiting for {what}: "
                        f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s")
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill_9_restarts_during_rotations_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    stop, status, ck = tmp_path / "stop", tmp_path / "rotations", tmp_path / "ck.json"
    (logs / "app.log").write_text('{"message":"start"}\n')
    tail = start_tail(tmp_path)  # running before the writer: what it writes is not old history
    writer: subprocess.Popen[str] | None = None
    try:
        wait_until(ck.exists, "first checkpoint", tail)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(logs), str(stop), str(status), "10000"],
                                  stdout=subprocess.PIPE, text=True)
        before_ck = mtime_ns(ck)
        for _ in range(KILLS):
            before_rot = rotations(status)
            # Ready: this tailer has delivered and checkpointed something, and a rotation
            # happened during its life. Then kill -9 it in the middle of its work.
            wait_until(lambda: mtime_ns(ck) != before_ck, "checkpoint write by the new tailer", tail)  # noqa: B023
            wait_until(lambda: rotations(status) > before_rot, "rotation", tail)  # noqa: B023
            os.kill(tail.pid, signal.SIGKILL)
            tail.wait(30)
            before_ck = mtime_ns(ck)
            tail = start_tail(tmp_path)
        wait_until(lambda: rotations(status) >= MIN_ROTATIONS, f"{MIN_ROTATIONS} rotations", tail)
        # SIGTERM only once this tailer is running (before that it dies of the signal, as any program).
        wait_until(lambda: mtime_ns(ck) != before_ck, "checkpoint write by the last tailer", tail)
        stop.touch()
        out, _ = writer.communicate(timeout=120)
        written, rotated, gzipped = map(int, out.split())
        assert rotated >= MIN_ROTATIONS and gzipped >= 2
        tail.send_signal(signal.SIGTERM)  # a graceful stop in the middle of catching up
        _, err = tail.communicate(timeout=120)
        assert tail.returncode == 0, err.decode()[-2000:]
        assert b"Traceback" not in err
        # The last restart reads whatever is left and exits: no deadline, no fixed wait.
        tail = start_tail(tmp_path, "--once")
        _, err = tail.communicate(timeout=300)
        assert tail.returncode == 0, err.decode()[-2000:]
        assert b"Traceback" not in err
    finally:
        stop.touch()
        for proc in (writer, tail):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)

    ids_of: dict[str, set[str]] = defaultdict(set)
    count = 0
    for seg in sorted((tmp_path / "arch").rglob("*.ndjson.gz")):
        for line in gzip.decompress(seg.read_bytes()).splitlines():
            rec = json.loads(line)
            if "event.kind" in rec or rec["message"] == "start":  # the sidecar's own records; our marker
                continue
            ids_of[rec["message"]].add(rec["_id"])
            count += 1
    expected = {f"w-{i:07d}" for i in range(1, written + 1)}
    missing = expected - set(ids_of)
    assert not missing, f"{len(missing)} of {written} lines lost, e.g. {sorted(missing)[:5]}"
    assert set(ids_of) == expected, f"unexpected records: {sorted(set(ids_of) - expected)[:5]}"
    assert all(len(ids) == 1 for ids in ids_of.values()), "a line came back under a second _id"
    duplicates = count - written
    print(f"torture: {written} lines, {rotated} rotations, {gzipped} gzipped, {duplicates} duplicates")
    assert duplicates <= KILLS * INFLIGHT_BATCHES * BATCH_RECORDS, f"{duplicates} duplicates: more than lost acks explain"
