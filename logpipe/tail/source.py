"""The live front of the pipeline: follows every input file, fairly, across rotations.

Per turn each open file gives at most `read_chunk_bytes`, so one busy file cannot starve
the others. Rotation handling:
  * rename-and-create: the open descriptor keeps reading the old file (found again under
    its new name if the glob matches it); the new file at the path is a new follower.
  * copytruncate: size below the read offset or a changed beginning -> the old content
    ends, the file is read again from 0 as new content. If the copy (app.log.1) is in the
    glob it is recognised by its fingerprint and read on from where the original stopped.
  * deletion / renamed out of the glob: read to the end, kept open until everything read
    is acknowledged and `rotate_wait_s` passed without growth, then closed.
  * `.gz` generations are not tailed: they are copies of data already read. One compressed
    before it was fully read (tailer down or behind) has its unread rest read, recognised
    by fingerprint and checkpoint (logpipe.tail.catchup); one never seen is read whole if
    it was written after the checkpoint's last survey, else skipped as old history.
  * rotated while down and out of the globs: at start, each checkpointed file no longer at
    its path is looked for among its rotated siblings (logpipe.tail.siblings).
  * files sharing their first line get told apart by a check of their first bytes
    (logpipe.tail.identity).
Acknowledged offsets go to the checkpoint store (sink thread); a restart resumes there.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Collection
from itertools import islice

from logpipe.config import Config, InputConfig
from logpipe.stages import FileStats, PipelineStats
from logpipe.tail import siblings
from logpipe.tail import watcher as discovery
from logpipe.tail.catchup import GzCatchup, gz_fingerprint, gz_head
from logpipe.tail.checkpoint import CheckpointStore
from logpipe.tail.files import is_gzip
from logpipe.tail.fingerprint import HEAD_READ, fingerprint
from logpipe.tail.follower import Follower, looks_binary
from logpipe.tail.identity import CHECK_BYTES, Check, fp_of, make_check, resolve, verifies
from logpipe.tail.lines import LineBlock
from logpipe.tail.stream import LineChunk, Stream

log = logging.getLogger("logpipe.tail")

SAMPLE_BYTES = 65_536
CLOCK_SLACK_S = 0.02  # file times use the kernel's coarse clock (one tick behind at most)
TURN_BYTES = 8 * 1024 * 1024
SAMPLE_LINES = 50


def _gz_seen_id(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _plain_head(path: str, size: int = HEAD_READ) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


def _is_content(head: bytes, key: str, check: Check | None) -> bool:
    """Whether a file starting with `head` is the one checkpointed under `key`."""
    if check is None:  # an entry from before checks: the fingerprint alone, as before
        return key == fp_of(key) and fingerprint(head, at_eof=True) == key
    return fingerprint(head, at_eof=True) == fp_of(key) and verifies(check, lambda n: head[:n])


def sample_lines(head: bytes, limit: int = SAMPLE_LINES) -> list[str]:
    """Complete first lines of a file, for format detection."""
    cut = head.rfind(b"\n")
    if cut < 0:
        return []
    raws = head[:cut].replace(b"\x00", b"").split(b"\n")
    return [r.decode("utf-8", "replace").rstrip("\r") for r in islice(raws, limit) if r.strip()]


class TailFront:
    """Follows the configured inputs; `read()` one fair turn, `acknowledge()` from the sink."""

    def __init__(self, cfg: Config, stats: PipelineStats, store: CheckpointStore | None = None,
                 once: bool = False, use_events: bool = True) -> None:
        self.cfg = cfg
        self.pcfg = cfg.pipeline
        self.stats = stats
        self.store = store
        self.once = once
        self.inputs: list[InputConfig] = cfg.inputs
        patterns = [p for inp in self.inputs for p in inp.paths]
        self.watcher = discovery.Watcher(
            patterns, self.pcfg.poll_interval_s, self.pcfg.reconcile_interval_s,
            use_events=use_events and not once,
        )
        self.followers: dict[tuple[int, int], Follower] = {}
        self.order: deque[Follower] = deque()
        self.streams: dict[tuple[int, int], Stream] = {}
        self.inputs_of: dict[tuple[int, int], InputConfig] = {}
        self.known: dict[str, int] = {}  # key -> consumed offset of streams ended this run
        self.paths: dict[str, str] = {}  # key -> latest path (for the checkpoint file's readers)
        self.acked: dict[str, int] = {}  # key -> acknowledged offset (written by the sink thread)
        self.skipped: dict[tuple[int, int], str] = {}  # binary files, by identity
        self._warned: set[str] = set()
        # .gz generations already considered, by (dev, inode, mtime, size): a rename keeps it,
        # a new file on a reused inode does not.
        self.gz_seen: set[tuple[int, int, int, int]] = set()
        self.catchups: list[GzCatchup] = []
        self.catchup_streams: dict[tuple[int, int], Stream] = {}
        self.checks: dict[str, Check] = {}  # key -> check of the file's first bytes (identity.py)
        # Compressed generations that appeared after this moment are new to us (read them);
        # older ones we never saw are history (skipped unless read_from_head).
        last = (store.surveyed or store.loaded_mtime or store.previous_start) if store is not None else None
        # File times come from a coarser clock than time.time(): slack errs on reading.
        self.cutoff = (last if last is not None else time.time()) - CLOCK_SLACK_S
        self._scan_wall: float | None = None  # wall time the last scan started
        self._scanned_once = False
        self._silent_wait = False  # the last wait ended without a file event
        self._missed = 0  # turns that found new data no event announced

    # -- discovery ----------------------------------------------------------------------
    def scan(self) -> None:
        seen: set[tuple[int, int]] = set()
        claimed: set[str] = set()
        for inp in self.inputs:
            for pattern in inp.paths:
                paths = discovery.expand(pattern, inp.exclude, on_loop=self._loop)
                if not paths and not discovery._is_glob(pattern) and self.once:
                    self._warn_once(pattern, f"{pattern}: no such file")
                for path in paths:
                    if path in claimed:
                        continue
                    claimed.add(path)
                    self._discover(path, inp, seen)
                for path in discovery.expand(pattern, inp.exclude, gz=True, on_loop=self._loop):
                    if path not in claimed:
                        claimed.add(path)
                        self._discover_gz(path, inp)
        for ident, f in self.followers.items():
            if ident not in seen:
                f.gone = True
        if not self._scanned_once:
            self._find_rotated_away(claimed)
        self._scanned_once = True
        self.watcher.scanned(time.monotonic())

    def _loop(self, directory: str) -> None:
        self._warn_once(f"loop:{directory}", f"{directory}: directory already read in this scan (a symlink "
                        "loop or a second link to it); each directory is read once")

    def _discover(self, path: str, inp: InputConfig, seen: set[tuple[int, int]]) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        ident = (st.st_dev, st.st_ino)
        seen.add(ident)
        f = self.followers.get(ident)
        if f is not None:
            if f.path != path:
                self.stats.files.pop(f.path, None)
                f.path = path
                if ident in self.streams:
                    self.streams[ident].path = path
                if f.key:
                    self.paths[f.key] = path
            f.gone = False
            return
        if ident in self.skipped:
            return
        try:
            f = Follower.open(path, self.pcfg.max_line_bytes)
        except PermissionError:
            self.stats.skipped_files[path] = "permission denied"
            self._warn_once(path, f"{path}: permission denied; will retry")
            return
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                self.stats.skipped_files[path] = "too many open files"
                self._warn_once("emfile", f"{path}: cannot open, too many open files ({len(self.followers)} "
                                "followed); raise the limit (ulimit -n) or narrow the globs; will retry")
            return
        if self.stats.skipped_files.get(path) in ("permission denied", "too many open files"):
            del self.stats.skipped_files[path]
            self._warned.discard(path)
        reason = looks_binary(f.head_bytes(8192))
        if reason:
            f.close()
            self.skipped[ident] = reason
            self.stats.skipped_files[path] = reason
            self._warn_once(path, f"{path}: skipped, {reason}")
            return
        self.followers[f.ident] = f
        self.inputs_of[f.ident] = inp
        self.order.append(f)

    def _discover_gz(self, path: str, inp: InputConfig) -> None:
        """Read what was never read of a compressed generation.

        Its content is a checkpointed file's: read on from that offset. Content never seen:
        read it all when it was written after the checkpoint's last survey (rotated and
        compressed while the sidecar was down or behind); older history is skipped, counted
        and logged once, unless the input sets `read_from_head`. The file's mtime, not its
        ctime, says when: logrotate renames old generations (.1.gz -> .2.gz), which changes
        their ctime but not their mtime."""
        try:
            st = os.stat(path)
        except OSError:
            return
        ident, seen_id = (st.st_dev, st.st_ino), _gz_seen_id(st)
        if seen_id in self.gz_seen:
            return
        fp = gz_fingerprint(path)
        if fp is None:
            return  # empty, or still being written: look again later
        key, seen = self._resolve(fp, lambda n: gz_head(path, n), f"{ident[0]:x}.{ident[1]:x}", ())
        if any(f.key == key and not f.closing for f in self.followers.values()):
            return  # the plain file is still being read: look again later
        self.gz_seen.add(seen_id)
        offset = self._offset_of(key) if seen else None
        if offset is None:
            if st.st_mtime < self.cutoff and not inp.read_from_head:
                self.stats.skipped_files[path] = "compressed history never read (older than the checkpoint)"
                self._warn_once("old-gz", f"{path}: compressed generation older than the checkpoint and never read "
                                "by this sidecar, skipped (and any others like it; they are counted in the summary); "
                                "set read_from_head = true on the input to ingest them")
                return
            offset = 0
            if self.store is not None and not any(c.key == key for c in self.catchups):
                # Known from now on: a restart before anything of it is acknowledged must not
                # take it for old history.
                head = gz_head(path, CHECK_BYTES)
                self.store.set(key, 0, path, make_check(head) if head else None)
                self.store.save()
        if any(c.key == key for c in self.catchups):
            return
        self._start_catchup(path, ident, key, offset, inp)

    def _find_rotated_away(self, claimed: set[str]) -> None:
        """Checkpointed files no longer at their path (rotated while we were down, out of the
        globs) are looked for among their rotated siblings and read to the end."""
        if self.store is None:
            return
        at_path: dict[str, bytes] = {}
        sibling_fp: dict[str, tuple[str | None, bool]] = {}
        for key, entry in self.store.entries().items():
            path = entry.get("path") or ""
            inp = self._input_covering(path)
            if inp is None:
                continue
            check = self.store.check(key)
            if path not in at_path:
                at_path[path] = _plain_head(path, CHECK_BYTES)
            if _is_content(at_path[path], key, check):
                continue  # still there: the normal scan reads it
            for sib in siblings.rotated_siblings(path):
                if sib in claimed:
                    continue  # in a glob: the normal scan handles it
                if sib not in sibling_fp:
                    gz = is_gzip(sib)
                    sibling_fp[sib] = (gz_fingerprint(sib) if gz else fingerprint(_plain_head(sib), at_eof=True), gz)
                fp, gz = sibling_fp[sib]
                if fp != fp_of(key):
                    continue
                head = gz_head(sib, CHECK_BYTES) if gz else _plain_head(sib, CHECK_BYTES)
                if _is_content(head, key, check):
                    self._finish_sibling(sib, gz, key, int(entry["offset"]), inp, was=path)
                    break

    def _finish_sibling(self, path: str, gz: bool, key: str, offset: int, inp: InputConfig, was: str) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        ident = (st.st_dev, st.st_ino)
        if ident in self.followers or _gz_seen_id(st) in self.gz_seen:
            return
        if gz:
            self.gz_seen.add(_gz_seen_id(st))
            if siblings.gz_size_hint(path) != offset % (1 << 32):
                self._start_catchup(path, ident, key, offset, inp)
            return
        if st.st_size <= offset:
            return  # read to its end before it was rotated
        try:
            f = Follower.open(path, self.pcfg.max_line_bytes)
        except OSError:
            return
        log.info("%s: finishing %s, rotated away while the sidecar was down (from offset %d)", path, was, offset)
        f.gone = True  # not in any glob: read to its end, then let go
        self.followers[f.ident] = f
        self.inputs_of[f.ident] = inp
        self.order.append(f)

    def _input_covering(self, path: str) -> InputConfig | None:
        if not path:
            return None
        for inp in self.inputs:
            for pattern in inp.paths:
                hit = pattern == path or (discovery._is_glob(pattern) and fnmatch.fnmatchcase(path, pattern))
                if hit and not discovery.excluded(path, inp.exclude):
                    return inp
        return None

    def _start_catchup(self, path: str, ident: tuple[int, int], key: str, offset: int, inp: InputConfig) -> None:
        try:
            catchup = GzCatchup(path, ident, key, offset, self.pcfg.max_line_bytes)
        except OSError:
            return
        if key not in self.checks:
            head = gz_head(path, CHECK_BYTES)
            if head:
                self.checks[key] = make_check(head)
        log.info("%s: reading what was not read before it was compressed (from offset %d)", path, offset)
        self.catchups.append(catchup)
        self.catchup_streams[ident] = Stream(key=key, path=path, fp=key, input=inp)
        self.paths[key] = path

    def _catch_up(self, budget: int, chunks: list[LineChunk]) -> None:
        for c in list(self.catchups):
            stream = self.catchup_streams[c.ident]
            block, n, end = c.read(budget)
            self.stats.bytes_read += n
            self.stats.lines_read += len(block)
            c.lines += len(block)
            if end:
                chunks.append(LineChunk(stream, block, c.splitter.offset, eof=True))
                self.known[c.key] = c.splitter.offset
                self.catchups.remove(c)
                del self.catchup_streams[c.ident]
                if c.lines:
                    log.warning("%s: read %d lines that were compressed before they were read", c.path, c.lines)
            elif block or n:
                chunks.append(LineChunk(stream, block, c.splitter.consumed, nbytes=n))
                return  # one catch-up chunk per turn: live files come first

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    # -- identification -----------------------------------------------------------------
    def _identify(self, f: Follower) -> bool:
        fp = f.identify(at_eof=self.once)
        if fp is None:
            return False
        if any(fp_of(c.key) == fp for c in self.catchups):
            f.key = None  # its compressed copy is being caught up: wait for that to end
            return False
        taken: set[str] = set()
        for other in self.followers.values():
            if other is f or not other.key or other.closing or fp_of(other.key) != fp:
                continue
            if other.rewritten() or self._same_content(f, other):
                # A copy of a file still being read (copytruncate): wait until the
                # original's follower has seen the truncation and let go of the content.
                f.key = None
                return False
            taken.add(other.key)  # same first line, different file
        key, _ = self._resolve(fp, f.head_bytes, f"{f.dev:x}.{f.ino:x}", taken)
        f.key = key
        offset = self._offset_of(key)
        size = f.stat_size()
        if offset is None or offset > size:
            offset = 0
        f.start(offset)
        self._update_check(f)
        if self.store is not None and self.store.get(key) is None:
            # Known from the moment it is identified: if it is rotated and compressed before
            # anything of it is acknowledged, a restart must not take it for old history.
            self.store.set(key, offset, f.path, self.checks.get(key))
        inp = self.inputs_of[f.ident]
        sample = sample_lines(f.head_bytes(SAMPLE_BYTES)) if inp.format == "auto" else []
        self.streams[f.ident] = Stream(key=key, path=f.path, fp=key, input=inp, sample=sample)
        self.acked.setdefault(key, offset)
        self.paths[key] = f.path
        return True

    def _resolve(self, fp: str, read_head: Callable[[int], bytes], suffix: str,
                 taken: Collection[str]) -> tuple[str, bool]:
        """The key of content with fingerprint `fp` (identity.resolve over what we know)."""
        cands: dict[str, Check | None] = {}
        if self.store is not None:
            for k in self.store.keys_for(fp):
                cands[k] = self.checks.get(k) or self.store.check(k)
        for k in (*self.known, *self.checks):
            if fp_of(k) == fp:
                cands[k] = self.checks.get(k)
        return resolve(fp, cands, read_head, suffix, taken)

    def _offset_of(self, key: str) -> int | None:
        offset = self.known.get(key)
        if offset is None and self.store is not None:
            offset = self.store.get(key)
        return offset

    def _update_check(self, f: Follower) -> None:
        """Extend the key's check over the first bytes read (as read: a copytruncate racing
        the read cannot slip another file's bytes into it), up to CHECK_BYTES."""
        if not f.key:
            return
        first = bytes(f.first) if len(f.first) > len(f.head) else f.head
        cur = self.checks.get(f.key)
        if cur is None or cur[0] < len(first):
            self.checks[f.key] = make_check(first)

    @staticmethod
    def _same_content(a: Follower, b: Follower) -> bool:
        n = min(a.stat_size(), b.stat_size(), SAMPLE_BYTES)
        return a.head_bytes(n) == b.head_bytes(n)

    # -- reading ------------------------------------------------------------------------
    def read(self) -> list[LineChunk]:
        """One fair turn over every open file."""
        now = time.monotonic()
        if not self._scanned_once or (not self.once and self.watcher.scan_due(now)):
            self._scan_wall = time.time()
            self.scan()
        chunks: list[LineChunk] = []
        budget = self.pcfg.read_chunk_bytes
        turn_budget = max(budget, TURN_BYTES)  # memory per turn stays bounded with many busy files
        taken = 0
        served = 0
        for f in list(self.order):
            served += 1
            before = len(chunks)
            try:
                self._turn(f, budget, now, chunks)
            except OSError as exc:
                self._warn_once(f"io:{f.path}", f"{f.path}: read failed ({exc.strerror}); closing it")
                self._end(f, chunks, finish=False)
                self._drop(f)
            taken += sum(c.nbytes for c in chunks[before:])
            if taken >= turn_budget:
                break
        if self.catchups and taken < turn_budget:
            self._catch_up(budget, chunks)
        if self._scan_wall is not None and self.store is not None and all(
                f.key or f.closing for f in self.followers.values()):
            self.store.mark_surveyed(self._scan_wall)  # everything that scan found is in the store
            self._scan_wall = None
        if served and len(self.order) > 1:
            self.order.rotate(-served)  # the next turn starts with the files not served now
        if self._silent_wait:
            self._silent_wait = False
            if any(c.nbytes for c in chunks):
                self._missed += 1
                if self._missed >= 3:
                    self.watcher.events_missed()
        return chunks

    def _turn(self, f: Follower, budget: int, now: float, chunks: list[LineChunk]) -> None:
        if f.closing:
            if self.acked.get(f.key or "", 0) >= f.offset:
                self._drop(f)
            return
        if f.splitter is not None and f.rewritten():
            log.info("%s was truncated or rewritten; reading it again from the start", f.path)
            self._end(f, chunks, finish=False)
            f.reset()
        if f.splitter is None and self._now_binary(f):
            return
        if f.splitter is None and not self._identify(f):
            if self.once or (f.gone and now - f.last_growth >= self.pcfg.rotate_wait_s):
                self._drop(f)
            return
        stream = self.streams[f.ident]
        block, n = f.read(budget)
        if n and len(f.first) < CHECK_BYTES:
            self._update_check(f)
        self._file_stats(f)
        if n:
            self.stats.bytes_read += n
            self.stats.lines_read += len(block)
        if block or n:
            chunks.append(LineChunk(stream, block, f.consumed, nbytes=n))
        if not f.at_eof:
            return
        if self.once or (f.gone and now - f.last_growth >= self.pcfg.rotate_wait_s):
            self._end(f, chunks, finish=True)
            f.closing = True

    def _now_binary(self, f: Follower) -> bool:
        """A file opened while empty is checked again once it has bytes (a rotator's temp file
        filling with gzip data must not be shipped as lines)."""
        reason = looks_binary(f.head_bytes(8192))
        if not reason:
            return False
        self.skipped[f.ident] = reason
        self.stats.skipped_files[f.path] = reason
        self._warn_once(f.path, f"{f.path}: skipped, {reason}")
        self._drop(f)
        return True

    def _end(self, f: Follower, chunks: list[LineChunk], finish: bool) -> None:
        """Hand over the stream's last lines and mark it ended."""
        stream = self.streams.pop(f.ident, None)
        if stream is None or f.splitter is None:
            return
        block = f.finish() if finish else LineBlock()
        if finish:
            self.stats.lines_read += len(block)
        chunks.append(LineChunk(stream, block, f.consumed, eof=True))
        self.known[stream.key] = f.consumed if not finish else f.offset

    def _drop(self, f: Follower) -> None:
        f.close()
        self.followers.pop(f.ident, None)
        self.inputs_of.pop(f.ident, None)
        self.streams.pop(f.ident, None)
        try:
            self.order.remove(f)
        except ValueError:
            pass
        self.stats.files.pop(f.path, None)

    def _file_stats(self, f: Follower) -> None:
        fs = self.stats.files.get(f.path)
        if fs is None:
            fs = self.stats.files[f.path] = FileStats(path=f.path)
        fs.size = max(f.size, f.offset)
        fs.read_offset = f.offset
        fs.acked_offset = self.acked.get(f.key or "", 0)

    # -- pipeline hooks -----------------------------------------------------------------
    def wait(self, timeout: float) -> None:
        woke = self.watcher.wait(timeout)
        self._silent_wait = not woke and not self.watcher.polling and not self.once
        if woke:
            self._missed = 0

    def wake(self) -> None:
        self.watcher.wake()

    def finished(self) -> bool:
        return self.once and self._scanned_once and not self.followers and not self.catchups

    def acknowledge(self, acks: dict[str, int]) -> None:
        """Called by the sink thread once a batch is acknowledged: advance checkpoints."""
        for key, offset in acks.items():
            if offset > self.acked.get(key, -1):
                self.acked[key] = offset
            if self.store is not None:
                self.store.set(key, offset, self._path_of(key), self.checks.get(key))
        if self.store is not None:
            self.store.save()
        self.watcher.wake()

    def _path_of(self, key: str) -> str:
        return self.paths.get(key, "")

    def close(self) -> None:
        self.watcher.stop()
        for c in self.catchups:
            c.close()
        self.catchups.clear()
        for f in list(self.followers.values()):
            f.close()
        self.followers.clear()
        self.order.clear()
