"""Stateful property test: random writes, partial writes, rename and copytruncate rotations,
gzip of old generations (delayed or at once), truncation, delete + recreate (inode reuse),
restarts from the checkpoint and rotations while the tailer is down, checked against a model
of what was written: every complete line exactly once. Every new file starts with the same
header line (W3C/CSV style), so all generations share their first line."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from logpipe.config import Config, InputConfig
from logpipe.stages import PipelineStats
from logpipe.tail.checkpoint import CheckpointStore
from logpipe.tail.source import TailFront

HEADER = "#Fields: date time cs-method cs-uri-stem sc-status"


class FollowerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="lp-model-"))
        self.log = self.dir / "app.log"
        self.log.touch()
        self.cfg = Config()
        self.cfg.inputs = [InputConfig(paths=[str(self.dir / "app.log*")], format="raw")]
        p = self.cfg.pipeline
        p.rotate_wait_s = 0.0
        p.read_chunk_bytes = 97  # small reads: rotations land in the middle of files
        p.max_line_bytes = 4096
        self.ckpt = self.dir / "state" / "ckpt.json"
        self.expected: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()
        self.down = False
        self.gz_n = 0
        self.ids: Counter[tuple[str, int]] = Counter()
        self.partial: str | None = None
        self.n = 0
        self._open_front()

    def _open_front(self) -> None:
        self.store = CheckpointStore(self.ckpt)
        self.front = TailFront(self.cfg, PipelineStats(), store=self.store, use_events=False)

    def teardown(self) -> None:
        if not self.down:
            self.front.close()
            self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the reader ---------------------------------------------------------------------
    def _turn(self) -> int:
        self.front.watcher.request_scan()
        got = 0
        for chunk in self.front.read():
            got += 1
            for start, text in zip(chunk.lines.starts, chunk.lines.texts, strict=True):
                self.ids[(chunk.stream.fp, start)] += 1
                self.seen[text] += 1
            self.front.acknowledge({chunk.stream.key: chunk.safe_offset})
        return got

    def _drain(self) -> None:
        idle = 0
        for _ in range(500):
            idle = idle + 1 if self._turn() == 0 else 0
            if idle >= 3:
                return

    # -- the writer ---------------------------------------------------------------------
    def _line(self, size: int) -> str:
        self.n += 1
        return f"line-{self.n:05d}-" + "x" * size

    def _fresh(self) -> list[str]:
        """A writer opening an empty file starts it with the shared header line."""
        if self.partial is None and (not self.log.exists() or self.log.stat().st_size == 0):
            return [HEADER]
        return []

    @rule(count=st.integers(1, 8), size=st.integers(0, 60))
    def write(self, count: int, size: int) -> None:
        lines = self._fresh() + [self._line(size) for _ in range(count)]
        with open(self.log, "a") as fh:
            fh.write("".join(line + "\n" for line in lines))
        if self.partial is not None:
            lines[0] = self.partial + lines[0]
            self.partial = None
        self.expected.update(lines)

    @precondition(lambda self: self.partial is None)
    @rule(size=st.integers(1, 150))
    def write_partial(self, size: int) -> None:
        self.partial = f"partial-{self.n:05d}-" + "p" * size
        self.n += 1
        with open(self.log, "a") as fh:
            fh.write(self.partial)

    @precondition(lambda self: self.partial is None)
    @rule(extra=st.integers(1, 5000))
    def write_overlong(self, extra: int) -> None:
        line = self._line(4096 + extra)
        head = self._fresh()
        with open(self.log, "a") as fh:
            fh.write("".join(h + "\n" for h in head) + line + "\n")
        self.expected.update([*head, line[:4096]])  # max_line_bytes: truncated, rest skipped

    @precondition(lambda self: self.partial is None and (self.dir / "app.log.1").exists())
    @rule(count=st.integers(1, 3))
    def late_write_to_rotated(self, count: int) -> None:
        """A writer that has not reopened yet appends to the renamed generation."""
        lines = [self._line(10) for _ in range(count)]
        with open(self.dir / "app.log.1", "a") as fh:
            fh.write("".join(line + "\n" for line in lines))
        self.expected.update(lines)

    @precondition(lambda self: not self.down)
    @rule()
    def read_turn(self) -> None:
        self._turn()

    def _shift_generations(self, drain: bool) -> None:
        g1, g2 = self.dir / "app.log.1", self.dir / "app.log.2"
        if g2.exists():
            # Either the reader had its chance (delaycompress), or it is behind and only saw the
            # file (one turn): then a restart must catch up from the .gz.
            if self.down:
                pass  # rotated while the tailer is down: a restart must find it all
            elif drain:
                self._drain()
            else:
                self._turn()
            self.gz_n += 1  # a name of its own: never overwrite an older compressed generation
            with open(g2, "rb") as src, gzip.open(self.dir / f"app.log.g{self.gz_n:03d}.gz", "wb") as dst:
                dst.write(src.read())
            g2.unlink()
        if g1.exists():
            os.rename(g1, g2)

    @precondition(lambda self: self.partial is None)
    @rule(drain=st.booleans())
    def rotate_rename(self, drain: bool) -> None:
        self._shift_generations(drain)
        os.rename(self.log, self.dir / "app.log.1")
        self.log.touch()

    @precondition(lambda self: self.partial is None)
    @rule(drain=st.booleans())
    def rotate_copytruncate(self, drain: bool) -> None:
        self._shift_generations(drain)
        shutil.copyfile(self.log, self.dir / "app.log.1")
        with open(self.log, "r+") as fh:
            fh.truncate(0)

    @precondition(lambda self: self.partial is None)
    @rule(drain=st.booleans())
    def rotate_compress_at_once(self, drain: bool) -> None:
        """logrotate `compress` without `delaycompress`: the file is gzipped as it is rotated."""
        if drain and not self.down:
            self._drain()
        self.gz_n += 1
        with open(self.log, "rb") as src, gzip.open(self.dir / f"app.log.z{self.gz_n:03d}.gz", "wb") as dst:
            dst.write(src.read())
        self.log.unlink()
        self.log.touch()

    @precondition(lambda self: not self.down)
    @rule()
    def go_down(self) -> None:
        self.front.close()
        self.store.close()
        self.down = True

    @precondition(lambda self: self.down)
    @rule()
    def come_up(self) -> None:
        self._open_front()
        self.down = False

    @precondition(lambda self: self.partial is None and not self.down)
    @rule()
    def truncate_after_reading(self) -> None:
        self._drain()
        with open(self.log, "r+") as fh:
            fh.truncate(0)

    @precondition(lambda self: self.partial is None and not self.down)
    @rule()
    def delete_and_recreate(self) -> None:
        self._drain()
        for p in self.dir.glob("app.log*"):
            p.unlink()
        self._drain()  # closes the deleted files, freeing their inodes for reuse
        self.log.touch()

    @precondition(lambda self: not self.down)
    @rule()
    def restart(self) -> None:
        self.front.close()
        self.store.close()
        self._open_front()

    @invariant()
    def never_twice(self) -> None:
        assert not [k for k, v in self.ids.items() if v > 1]
        assert not self.seen - self.expected, "read more often than written"

    @rule()
    def check_everything_delivered(self) -> None:
        if self.down:
            self.come_up()
        self._drain()
        assert self.seen == self.expected


EXAMPLES = int(os.environ.get("LOGPIPE_MODEL_EXAMPLES", "40"))  # raise locally for a deeper search
FollowerMachine.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=30, deadline=None)
TestFollower = FollowerMachine.TestCase
