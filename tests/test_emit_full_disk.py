"""setup_logging on a full disk: lost records are counted and said (stderr at once, then a
`dropped_records` record once space returns), the record after a torn line starts a fresh
line, and a hung disk cannot keep the process from exiting (shutdown_logging's timeout).

The disk runs out for real: a size-limited tmpfs when this process may mount one (root),
and always a file-size limit (RLIMIT_FSIZE, no privileges needed). Both give the short
write and then the error that a full disk gives. Each scenario runs in a child process so
the limit never touches pytest's own files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BEFORE, DURING, AFTER = 50, 1000, 50

CHILD = r'''
import json, logging, os, resource, signal, sys
from pathlib import Path
from logpipe import setup_logging, shutdown_logging
from logpipe.emit.setup import flush_logging

mode, log_dir = sys.argv[1], Path(sys.argv[2])
before, during, after = map(int, sys.argv[3:6])
setup_logging(service="disk", log_dir=log_dir, console="off")
log = logging.getLogger("disk")

def phase(name, n):
    for i in range(n):
        log.info("%s record %d %s", name, i, "x" * 300)
    assert flush_logging(60)

phase("before", before)
filler = log_dir / "filler"
if mode == "fsize":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, ((log_dir / "app.log").stat().st_size + 20_000,
                                               resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
else:
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    os.ftruncate(fd, max(0, os.fstat(fd).st_size - 20_000))
    os.close(fd)
phase("during", during)
print("PHASE space returns", file=sys.stderr, flush=True)
if mode == "fsize":
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
else:
    filler.unlink()
phase("after", after)
print(json.dumps({"shutdown": shutdown_logging()}))
'''


@pytest.fixture(params=["fsize", "tmpfs"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    mode = request.param
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    if mode == "fsize":
        yield mode, log_dir
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(log_dir)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mode, log_dir
    finally:
        if subprocess.run(["umount", str(log_dir)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(log_dir)], check=True)


def test_full_disk_records_are_counted_said_and_never_glued(disk: tuple[str, Path]) -> None:
    mode, log_dir = disk
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(log_dir), str(BEFORE), str(DURING), str(AFTER)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr

    # stderr says so while it happens, not only at the end
    err = proc.stderr.splitlines()
    said = next(i for i, line in enumerate(err) if "cannot write to" in line and "app.log" in line)
    assert said < err.index("PHASE space returns")
    assert any("writable again" in line for line in err[said:])

    records, torn = [], []
    for line in (log_dir / "app.log").read_bytes().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            torn.append(line)
    # at most the one line the disk cut short; it ends where the disk filled, no record glued on
    assert len(torn) <= 1 and all(t.startswith(b'{"@timestamp"') and not t.endswith(b"}") for t in torn)

    def written(phase: str) -> int:
        return sum(1 for r in records if r["message"].startswith(f"{phase} record "))

    assert written("before") == BEFORE and written("after") == AFTER
    lost = DURING - written("during")
    assert lost > DURING // 2  # the disk really was full
    notices = [r for r in records if "dropped_records" in r]
    assert sum(r["dropped_records"] for r in notices) == lost, notices
    assert notices and notices[0]["level"] == "warning" and "app.log" in notices[0]["message"]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"shutdown": True}  # all written in time


HUNG = r'''
import logging, sys, threading
from logpipe import setup_logging
from logpipe.emit import files

setup_logging(service="hang", log_dir=sys.argv[1], console="off")
never = threading.Event()
files.LogFile._append = lambda self, data: never.wait()  # a disk that never answers
logging.getLogger("hang").info("this write hangs")
print("exiting", flush=True)
'''


def test_a_hung_disk_cannot_keep_the_process_from_exiting(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", HUNG, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=60)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0 and proc.stdout.strip() == "exiting", proc.stderr
    assert "did not finish within 5s" in proc.stderr
    assert elapsed < 45  # the default timeout is 5 s; 60 s would be the test's own limit
