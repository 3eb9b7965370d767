"""Add where a record came from, its deterministic id and the reader's tags; scrub PII.

The id is the content fingerprint of the source file followed by the byte offset of the
event's first byte (fixed-width hex). It depends on content, not on the inode, so a
restart, a retry or a replay of a `.gz` copy of the same file gives the same `_id`, and a
sink that stores by id (Elasticsearch `create`) never makes a second document.

The id is always ours, with one exception: records read back from our own archive segments
(`keep_ids`, what makes `replay logpipe-archive/` idempotent) keep their `_id` and origin
fields. Any other input `_id` is the producer's: it moves to `_source_id` (two different
records sharing one would otherwise become one document).
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from logpipe import fields
from logpipe.config import ScrubConfig
from logpipe.memtune import child_env

log = logging.getLogger("logpipe.enrich")


def make_id(fp: str, offset: int) -> str:
    """Deterministic record id: 16 hex chars of content fingerprint + 12 of byte offset."""
    return f"{fp}{offset:012x}"


def load_scrubber(cfg: ScrubConfig) -> Any | None:
    """The shared scrubber, or None when scrubbing is off."""
    if not cfg.enabled:
        return None
    from logpipe.scrub import Scrubber

    return Scrubber.from_config(cfg)


def suspicious_lines(scrubber: Any, texts: list[str], batch_guard: bool = True) -> list[int]:
    """Indices of the texts the scrubber's guard flags (one batched pass; exact per line)."""
    batched = getattr(scrubber, "suspicious_indices", None)
    if batched is not None:
        return batched(texts)
    if batch_guard and not scrubber.suspicious("\n".join(texts)):
        return []
    suspicious = scrubber.suspicious
    return [i for i, t in enumerate(texts) if suspicious(t)]


def scrub_keeping_id(scrubber: Any, rec: dict[str, Any]) -> None:
    """Scrub a record in place; a replayed record's `_id` is ours, not PII."""
    kept = rec.pop(fields.ID, None)
    scrubber.scrub_record(rec)
    if kept is not None:
        rec[fields.ID] = kept


#: Pipe buffer asked for (Linux F_SETPIPE_SZ). A batch of texts is ~0.5-1 MB; through the
#: default 64 KB buffer every send is a dozen sleep/wake round trips between the two
#: processes, which on a VM cost ~1.5 ms per batch (the reader blocked ~0.8 us per line).
PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031


def widen_pipe(fd: int) -> None:
    """Grow a pipe's buffer to PIPE_BYTES where the OS allows (else leave it as it is)."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", _F_SETPIPE_SZ), PIPE_BYTES)
    except (ImportError, OSError):
        pass  # not Linux, or above /proc/sys/fs/pipe-max-size: the default still works


def _send(fh: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(struct.pack("<Q", len(data)))
    fh.write(data)
    fh.flush()


def _recv(fh: BinaryIO) -> Any:
    head = fh.read(8)
    if len(head) < 8:
        raise EOFError("scrub helper pipe closed")
    (size,) = struct.unpack("<Q", head)
    data = fh.read(size)
    if len(data) < size:
        raise EOFError("scrub helper pipe closed")
    return pickle.loads(data)


#: Separates texts in the blob sent to the helper: the line splitter removes NUL bytes, so no
#: text holds one (a batch that does is sent as a pickled list instead).
_SEP = "\x00"


def pack_texts(texts: list[str]) -> bytes | list[str]:
    """The texts as one UTF-8 blob when they can be (pickling a list of strings costs the
    reader ~2x more), else the list itself."""
    joined = _SEP.join(texts)
    if joined.count(_SEP) != len(texts) - 1:
        return texts
    return joined.encode("utf-8", "surrogatepass")


def unpack_texts(packed: bytes | list[str], sep: bytes = b"\x00") -> list[bytes] | list[str]:
    """The texts of a `pack_texts` blob (sep NUL) or of a file's raw lines (sep newline)."""
    return packed.split(sep) if isinstance(packed, bytes) else packed


#: Gives the file's raw bytes of the first k texts of a slice (newline-joined), or None.
RawSpan = Callable[[int], "bytes | None"]


def serve_guard() -> None:
    """The helper process: scrub config first (answered with "ready" once imports are done),
    then (seq, packed texts, separator, batch_guard, fmt) requests; replies (seq, [(index, scrubbed
    record), ...]). Exits when its stdin closes, which is also what happens when the parent
    is killed."""
    from logpipe.parse import make_parser
    from logpipe.scrub import Scrubber

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    try:
        scrubber = Scrubber.from_config(_recv(inp))
        scrubber.suspicious_indices(["warm-up"] * 16)  # build the prefilter table before "ready"
        _send(out, (0, "ready"))
        parsers: dict[tuple[str, str, str], Any] = {}
        while True:
            seq, packed, sep, batch_guard, fmt = _recv(inp)
            texts = unpack_texts(packed, sep)
            hits = suspicious_lines(scrubber, texts, batch_guard)
            result: list[tuple[int, dict[str, Any]]] = []
            if hits:
                parse = parsers.get(fmt)
                if parse is None:
                    parse = parsers[fmt] = make_parser(fmt[0], tz=fmt[1], service=fmt[2])
                records = parse([_text(texts[i]) for i in hits])
                for rec in records:
                    scrub_keeping_id(scrubber, rec)
                result = list(zip(hits, records, strict=True))
            _send(out, (seq, result))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return


def _text(t: bytes | str) -> str:
    return t.decode("utf-8", "surrogatepass") if isinstance(t, bytes) else t


class Guard:
    """A pending answer from the helper for texts[:split] (read when the caller needs it);
    the caller scrubs texts[split:] itself meanwhile."""

    def __init__(self, pool: GuardPool, seq: int, split: int) -> None:
        self.pool = pool
        self.seq = seq
        self.split = split

    def result(self) -> list[tuple[int, dict[str, Any]]]:
        return self.pool.collect(self.seq)


class GuardPool:
    """One helper process (the second core) that finds the lines needing scrubbing and
    scrubs them: the scrubber's guard and record scrub cost more than everything else.

    A plain child on pipes rather than multiprocessing: it dies with its parent (EOF on
    stdin, even after kill -9) and never re-runs the CLI's __main__.
    """

    MIN_LINES = 256  # below this the round trip costs more than it saves

    def __init__(self, cfg: ScrubConfig) -> None:
        self.cfg = cfg
        self._proc: subprocess.Popen[bytes] | None = None
        self._seq = 0
        self._ready = False  # the helper answered "ready" (until then the caller scrubs alone)
        self._failed = False
        self.share = 0.75  # fraction of each batch the helper scrubs
        self.waited = 0.0  # seconds the caller spent waiting for answers (tuning, tests)

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from logpipe.enrich import serve_guard; serve_guard()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, env=child_env(),
        )
        assert proc.stdin is not None and proc.stdout is not None
        for pipe in (proc.stdin, proc.stdout):
            widen_pipe(pipe.fileno())
        _send(proc.stdin, self.cfg)
        return proc

    def submit(self, texts: list[str], batch_guard: bool, fmt: tuple[str, str, str],
               raw: RawSpan | None = None) -> Guard | None:
        """Hand the first `share` of `texts` to the helper; the caller keeps the rest, so
        both cores stay busy (the share adapts to who waits for whom). `raw` gives the
        file's own bytes of those texts when it has them: cheaper than encoding them."""
        if self._failed:
            return None
        try:
            if self._proc is None:
                self._proc = self._start()
            if not self._ready and not self._check_ready():
                return None  # still importing: this batch is scrubbed here, nobody waits
            self._seq += 1
            split = int(len(texts) * self.share)
            assert self._proc.stdin is not None
            blob = raw(split) if raw is not None else None
            packed, sep = (blob, b"\n") if blob is not None else (pack_texts(texts[:split]), b"\x00")
            t0 = time.monotonic()
            _send(self._proc.stdin, (self._seq, packed, sep, batch_guard, fmt))
            # A write that blocks means the helper is still on an earlier batch: it is the
            # slower side, so it gets a smaller share (as when the caller waits in collect).
            self._adapt(time.monotonic() - t0)
            return Guard(self, self._seq, split)
        except (OSError, EOFError, pickle.PicklingError) as exc:
            self._give_up(exc)
            return None

    def wait_ready(self, timeout: float) -> bool:
        """Start the helper and wait up to `timeout` s for it to be ready (tests, warm-up)."""
        if self._failed:
            return False
        if self._proc is None:
            self._proc = self._start()
        return self._ready or self._check_ready(timeout)

    def _check_ready(self, timeout: float = 0.0) -> bool:
        """Has the helper finished starting (its "ready" is waiting in the pipe)? Non-blocking
        by default: the reader never sits out the helper's imports."""
        assert self._proc is not None and self._proc.stdout is not None
        readable, _, _ = select.select([self._proc.stdout], [], [], timeout)
        if readable:
            _recv(self._proc.stdout)
            self._ready = True
        return self._ready

    def collect(self, seq: int) -> list[tuple[int, dict[str, Any]]]:
        assert self._proc is not None and self._proc.stdout is not None
        t0 = time.monotonic()
        while True:
            got, result = _recv(self._proc.stdout)
            if got == seq:
                break
        self._adapt(time.monotonic() - t0)
        return result

    def _adapt(self, waited: float) -> None:
        """Move the helper's share towards the point where neither side waits."""
        self.waited += waited
        self.share = max(0.3, self.share - 0.02) if waited > 0.0005 else min(1.0, self.share + 0.01)

    def _give_up(self, exc: BaseException) -> None:
        log.warning("scrub helper process unavailable (%s); scrubbing in-process", exc)
        self._failed = True
        self.close()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(5)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


class Enricher:
    """Batch enrichment for one pipeline; cheap per record (a few dict stores).

    The scrubber's per-line guard is the costliest step of the whole pipeline, and a pure
    function of the text: for big batches it runs in a helper process (`GuardPool`) on the
    second core while this one parses.
    """

    def __init__(self, host: str = "", scrubber: Any | None = None, scrub_cfg: ScrubConfig | None = None,
                 parallel: bool | None = None) -> None:
        self.host = host or socket.gethostname()
        self.scrubber = scrubber
        # A guard over a whole batch's text is only equivalent to per-line guards when no
        # user pattern could be anchored to line edges.
        self._batch_guard = scrubber is not None and not (scrub_cfg and scrub_cfg.extra_patterns)
        if parallel is None:
            parallel = (os.cpu_count() or 1) >= 2
        self.pool = GuardPool(scrub_cfg) if (parallel and scrubber is not None and scrub_cfg) else None

    def start_guard(self, texts: list[str], fmt: tuple[str, str, str], raw: RawSpan | None = None) -> Guard | None:
        """Begin scrubbing in the helper process (when worth it): it finds the lines that need
        it and returns their records (parsed as `fmt` = (format, tz, service)) scrubbed."""
        if self.pool is None or len(texts) < GuardPool.MIN_LINES:
            return None
        return self.pool.submit(texts, self._batch_guard, fmt, raw)

    def apply(self, records: list[dict[str, Any]], texts: list[str], starts: list[int], path: str,
              fp: str, tags: dict[int, list[str]] | None = None, extra_tags: list[str] | None = None,
              guard: Guard | None = None, *, keep_ids: bool = False) -> None:
        """Enrich `records` in place; `texts`/`starts` are their raw events and offsets.
        `keep_ids`: they come from our own archive, so an `_id` they carry is ours."""
        self.scrub(records, texts, guard)  # before our own fields: an id must never look like a card number
        host = self.host
        H, F, O, I = fields.HOST, fields.LOG_FILE, fields.LOG_OFFSET, fields.ID  # noqa: E741, N806
        S = fields.SOURCE_ID  # noqa: N806
        for rec, start in zip(records, starts, strict=True):
            if I in rec:
                if keep_ids and rec[I].__class__ is str and rec[I]:  # enriched before by us: keep it all
                    continue
                rec[S] = rec.pop(I)  # the producer's id: kept as data, never used as ours
            rec[H] = host
            rec[F] = path
            rec[O] = start
            rec[I] = f"{fp}{start:012x}"
        if tags or extra_tags:
            self._merge_tags(records, starts, tags or {}, extra_tags or [])

    def scrub(self, records: list[dict[str, Any]], texts: list[str], guard: Guard | None = None) -> None:
        scrubber = self.scrubber
        if scrubber is None or not records:
            return
        if guard is not None:
            split = guard.split
            for i in suspicious_lines(scrubber, texts[split:], self._batch_guard):
                scrub_keeping_id(scrubber, records[split + i])
            try:
                for i, rec in guard.result():
                    records[i] = rec
                return
            except Exception as exc:  # noqa: BLE001 - the helper died: scrub here instead
                if self.pool is not None:
                    self.pool._give_up(exc)
                self.pool = None
            texts = texts[:split]  # the helper's share, now done here
        for i in suspicious_lines(scrubber, texts, self._batch_guard):
            scrub_keeping_id(scrubber, records[i])

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    @staticmethod
    def _merge_tags(records: list[dict[str, Any]], starts: list[int], tags: dict[int, list[str]],
                    extra: list[str]) -> None:
        T = fields.TAGS  # noqa: N806
        for rec, start in zip(records, starts, strict=True):
            add = tags.get(start)
            if not add and not extra:
                continue
            have = rec.get(T)
            merged = list(have) if isinstance(have, list) else ([have] if have else [])
            for tag in (*(add or ()), *extra):
                if tag not in merged:
                    merged.append(tag)
            rec[T] = merged
