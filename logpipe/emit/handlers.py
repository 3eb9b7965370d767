"""The writer side: the root QueueHandler, the hand-off queue, and a listener that renders batches.

The caller's thread only captures an entry and appends it to the Handoff (EntryQueueHandler,
or the middleware's direct path); one background thread takes the queued entries in batches
(BatchListener), so a slow disk never blocks a request, and the Writer scrubs, renders and
routes each batch: access records to access.log, others to app.log (and error.log from ERROR
up), plus the console. Each file gets one write + flush per batch instead of per record.

Records a file could not take (full disk) are counted per file, said on stderr when the
failures start and when they stop, and reported by a warning record with
`dropped_records` written into app.log with the first batch that goes through.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import orjson

from logpipe import fields as F
from logpipe.emit import render
from logpipe.emit.files import LogFile, WriteFailed, warn_once
from logpipe.emit.processors import Entry, entry_from_record, message_text
from logpipe.emit.scrubbing import EmitScrubber
from logpipe.scrub import Scrubber

BATCH_MAX = 2048
PRECHECK = 64  # entries scrub-checked together; a group with anything suspicious is checked per record
DAY = 86400.0


BROWSER_LOGGER = "logpipe.browser"  # its event.kind=browser records go to browser.log


class Console:
    """stdout, looked up at write time (tests and daemons swap sys.stdout)."""

    def __init__(self, pretty: bool, colour: bool) -> None:
        self.pretty = pretty
        self.colour = colour

    def write(self, data: str | bytes | bytearray) -> None:
        out = sys.stdout
        if out is None:
            return
        if isinstance(data, str):
            out.write(data)
        else:
            buf = getattr(out, "buffer", None)
            if buf is not None:
                out.flush()
                buf.write(data)
                buf.flush()
                return
            out.write(bytes(data).decode("utf-8", "replace"))
        out.flush()

    def close(self) -> None:
        return None


class _Flush:
    """Queue marker: set once everything queued before it has been written."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Writer:
    """Renders entries and routes lines: access -> access.log; others -> app.log (+ error.log)."""

    def __init__(self, *, static: Mapping[str, Any], schema: str, scrubber: Scrubber | None,
                 app: LogFile | None, error: LogFile | None, access: LogFile | None,
                 console: Console | None, file_level: int, console_level: int,
                 browser: Callable[[], LogFile] | None = None) -> None:
        self.static = dict(static)
        # browser.log is opened on the first browser event (services without them get no file)
        self._browser_factory = browser
        self.browser: LogFile | None = None
        self.ecs = schema == "ecs"
        self.scrubber = scrubber
        self.guard = EmitScrubber(scrubber) if scrubber is not None else None
        if scrubber is not None:
            self.static = scrubber.scrub_value(self.static)
        self.app, self.error, self.access, self.console = app, error, access, console
        self.file_level = file_level
        self.console_level = console_level
        self.stamp = render.TimestampFormatter()
        self.failures = 0
        self.lost_total = 0  # records a log file could not take, since start
        self._lost: dict[str, tuple[int, str]] = {}  # file name -> (records, last error) not yet reported
        self._failing: set[str] = set()  # files whose last write failed

    def record(self, entry: Entry, known_clean: bool = False) -> dict[str, Any]:
        """Entry -> scrubbed record dict in schema order (logpipe field names).
        `known_clean`: `EmitScrubber.all_clean` already passed the entry's parts."""
        rec, exc_fields = self._build(entry)
        created, _levelno, level, logger, message, ctx, extra, exc = entry
        if message.__class__ is not str:
            message = message_text(message)
        guard = self.guard
        if guard is not None:
            sc = guard.scrubber
            if (exc_fields is not None or not known_clean) and guard.dirty(logger, message, ctx, extra, exc_fields):
                # Render first so custom objects are scrubbed as the text that will be written.
                rec = sc.scrub_value(orjson.loads(render.dumps(rec)))
            if sc.mask_client_ip:
                ip = rec.get(F.CLIENT_IP)
                if isinstance(ip, str) and ip:
                    rec[F.CLIENT_IP] = sc.mask_ip(ip)
        return rec

    def _build(self, entry: Entry) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Entry -> unscrubbed record dict in schema order, and its exception fields (if added)."""
        created, _levelno, level, logger, message, ctx, extra, exc = entry
        if message.__class__ is not str:  # (format, args), left for this thread by the caller
            message = message_text(message)
        rec = render.build_record(self.stamp(created), level, logger, message, self.static, ctx, extra)
        exc_fields = None
        if exc is not None and F.EXCEPTION not in rec:
            exc_fields = render.exception_fields(exc)
            if exc_fields is not None:
                rec[F.EXCEPTION] = exc_fields
        return rec, exc_fields

    def scrubbed_line(self, entry: Entry) -> tuple[dict[str, Any], bytes]:
        """The record (unscrubbed: for routing only) and its scrubbed JSON line, rendered by orjson and
        scrubbed by the core in one call (`Scrubber.scrub_json`: the same bytes `line(record(entry))`
        gives). Needs a scrubber and the logpipe schema."""
        rec, _ = self._build(entry)
        data = self.scrubber.scrub_json(render.dumps(rec))  # type: ignore[union-attr]
        if data is None:  # a line the core does not vouch for: the Python road
            return rec, self.line(self.record(entry))
        return rec, data

    def line(self, rec: dict[str, Any]) -> bytes:
        return render.dumps(F.to_ecs(rec) if self.ecs else rec)

    def process(self, entries: Iterable[Entry]) -> None:
        # Lines go into one bytearray per sink: keeping thousands of freshly rendered bytes
        # objects alive until the batch is written was measured at +4 µs per record
        # (allocator churn); copying into a buffer lets each line's memory be reused.
        app = bytearray()
        err = bytearray()
        acc = bytearray()
        brw = bytearray()
        browser_on = self._browser_factory is not None
        con: list[str] = []
        console = self.console
        pretty = console is not None and console.pretty
        con_bytes = bytearray()
        file_level, console_level = self.file_level, self.console_level
        entries = [e if e[4].__class__ is str else (*e[:4], message_text(e[4]), *e[5:]) for e in entries]
        # logpipe schema to files (and a JSON console): the core scrubs each rendered line
        native = self.scrubber is not None and not self.ecs and not pretty
        clean_upto = -1
        for i, entry in enumerate(entries):
            levelno = entry[1]
            to_console = console is not None and levelno >= console_level
            to_file = levelno >= file_level
            if not (to_console or to_file):
                continue
            if not native and i > clean_upto and self.guard is not None:
                clean_upto = self._precheck(entries, i)
            try:
                if native:
                    rec, data = self.scrubbed_line(entry)
                else:
                    rec = self.record(entry, i <= clean_upto)
                    data = self.line(rec)
            except Exception as exc:  # a bad record must never stop the writer
                self.failures += 1
                rec = {F.TIMESTAMP: self.stamp(time.time()), F.LEVEL: "error", F.LOGGER: "logpipe.emit",
                       F.MESSAGE: "logpipe: failed to render a record", **self.static,
                       "error": render.safe_repr(exc)}
                data = render.dumps(rec)
                levelno, to_file, to_console = logging.ERROR, True, console is not None
            if to_file:
                if F.STATUS in rec and F.METHOD in rec:
                    acc += data
                elif browser_on and entry[3] == BROWSER_LOGGER and rec.get(F.EVENT_KIND) == F.KIND_BROWSER:
                    brw += data
                else:
                    app += data
                    if levelno >= logging.ERROR:
                        err += data
            if to_console:
                if pretty:
                    con.append(render.pretty(rec, console.colour))  # type: ignore[union-attr]
                else:
                    con_bytes += data
        notice_names, notice = self._lost_notice() if self.app is not None else ([], b"")
        if notice:
            app[:0] = notice
        if brw and self.browser is None and self._browser_factory is not None:
            try:
                self.browser = self._browser_factory()
            except OSError as exc:
                self.failures += 1
                warn_once(f"logpipe: cannot open browser.log: {exc}")
        sinks: tuple[tuple[Any, Any], ...] = ((self.browser, brw),
            (self.app, app), (self.error, err), (self.access, acc), (console, "".join(con) if pretty else con_bytes))
        for sink, chunk in sinks:
            if sink is not None and chunk:
                noticed = bool(notice) and sink is self.app
                try:
                    sink.write(chunk)
                except WriteFailed as exc:
                    reported = noticed and exc.written >= len(notice)
                    if reported:
                        self._reported(notice_names)
                    self._write_failed(sink, exc.lost_lines - (1 if noticed and not reported else 0), exc.cause)
                except Exception as exc:
                    self.failures += 1
                    warn_once(f"logpipe: cannot write to {getattr(sink, 'path', 'stdout')}: {exc}")
                else:
                    if noticed:
                        self._reported(notice_names)
                    self._write_ok(sink)

    def _reported(self, names: list[str]) -> None:
        for name in names:
            self._lost.pop(name, None)

    def _write_failed(self, sink: LogFile, lost: int, cause: OSError) -> None:
        """Count the records and say so at once on stderr (once per failing spell, not per batch)."""
        name = sink.path.name
        self.failures += 1
        self.lost_total += lost
        n, _ = self._lost.get(name, (0, ""))
        self._lost[name] = (n + lost, str(cause))
        if name not in self._failing:
            self._failing.add(name)
            _stderr(f"logpipe: cannot write to {sink.path}: {cause}; log records are being lost "
                    f"({lost} so far); a record with dropped_records will count them once it can be written")

    def _write_ok(self, sink: Any) -> None:
        name = getattr(sink, "path", None)
        if name is not None and name.name in self._failing:
            self._failing.discard(name.name)
            _stderr(f"logpipe: {sink.path} is writable again; {self.lost_total} log records lost in all")

    def _lost_notice(self) -> tuple[list[str], bytes]:
        """The warning line for records lost so far, to go first into app.log, and the file
        names it covers; nothing when nothing was lost."""
        if not self._lost:
            return [], b""
        names = sorted(self._lost)
        n = sum(self._lost[name][0] for name in names)
        record = logging.LogRecord(
            "logpipe", logging.WARNING, __file__, 0, "logpipe: %d log records lost: %s could not be written (%s)",
            (n, ", ".join(names), "; ".join(sorted({self._lost[name][1] for name in names}))), None)
        record.dropped_records = n
        record.dropped_from = names
        return names, self.line(self.record(entry_from_record(record)))

    def _precheck(self, entries: list[Entry], start: int) -> int:
        """Scrub-check entries[start:start+PRECHECK] at once; the last index known clean (start-1: none)."""
        group = entries[start:start + PRECHECK]
        try:
            ok = self.guard.all_clean([(e[3], e[4], e[5], e[6]) for e in group])  # type: ignore[union-attr]
        except Exception:  # odd keys or values: each record is checked (and rendered safely) on its own
            ok = False
        return start + len(group) - 1 if ok else start - 1

    def close(self) -> None:
        if self._lost and self.app is not None:
            self.process([])  # last chance for the dropped_records record
        for sink in (self.app, self.error, self.access, self.console, self.browser):
            if sink is not None:
                try:
                    sink.close()
                except Exception:
                    pass


def _stderr(message: str) -> None:
    try:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    except Exception:
        pass


class EntryQueue(Protocol):
    """What QueueGate needs from the queue it bounds."""

    def put_nowait(self, item: Any) -> None: ...

    def qsize(self) -> int: ...

    def wake(self) -> None: ...


class Handoff:
    """The queue between the app's threads and the writer: one deque append per entry.

    Why: `SimpleQueue.put` wakes a writer blocked in `get()` for every entry, so at everyday
    request rates each request pays a thread switch and the writer takes the GIL from the
    request thread once per record. Here only the first entry after an idle spell wakes the
    writer; it then lets entries gather for up to `interval_s` (less once `wake_at` are
    waiting, or when a flush or stop asks via `wake`) and takes them all at once.
    Thread-safe without a lock: deque appends and pops are atomic.
    """

    def __init__(self, interval_s: float = 0.02, wake_at: int = 512) -> None:
        self.interval_s = interval_s
        self.wake_at = max(1, wake_at)
        self._items: deque[Any] = deque()
        self._event = threading.Event()
        self._sleeping = False  # the writer found nothing and waits for the next entry
        self._urgent = False
        self.qsize: Callable[[], int] = self._items.__len__  # a C call: QueueGate asks on every put

    def put_nowait(self, item: Any) -> None:
        items = self._items
        items.append(item)
        if self._sleeping or len(items) == self.wake_at:
            self._event.set()

    def wake(self) -> None:
        """Make the writer take what is queued now (flush markers, the stop sentinel)."""
        self._urgent = True
        self._event.set()

    def get_nowait(self) -> Any:
        try:
            return self._items.popleft()
        except IndexError:
            raise queue.Empty from None

    def take(self, max_items: int) -> list[Any]:
        """Writer thread: wait for entries, let a batch gather, return up to `max_items` of them."""
        items, event = self._items, self._event
        if not items:
            event.clear()
            self._sleeping = True  # set before the re-check: an append after it sets the event
            if not items:
                event.wait()
            self._sleeping = False
        if not self._urgent and len(items) < self.wake_at:
            event.clear()
            if not self._urgent and len(items) < self.wake_at:
                event.wait(self.interval_s)
        self._urgent = False
        pop = items.popleft
        return [pop() for _ in range(min(max_items, len(items)))]


class QueueGate:
    """Bounds the queue between the app's threads and the writer.

    Why: with a disk that stays slow, an unbounded queue grows until the process runs out of
    memory. Below `limit` queued entries a put costs one size check. Above it the caller
    waits for the writer to catch up, as it would with a plain FileHandler on a slow disk,
    but for at most `max_wait_s`. If that passes, the gate sheds: entries are dropped and
    counted until the queue is back under half the limit. The writer then writes one
    warning record saying how many were dropped, so nothing goes missing unnoticed.
    """

    def __init__(self, q: EntryQueue, limit: int = 100_000, max_wait_s: float = 1.0) -> None:
        self.queue = q
        self.limit = max(1, limit)
        self.max_wait_s = max(0.0, max_wait_s)
        self._put = q.put_nowait
        self._size = q.qsize
        self._lock = threading.Lock()
        self._shedding = False
        self._dropped = 0
        self.dropped_total = 0

    def put(self, entry: Any) -> None:
        if not self._shedding and self._size() < self.limit:
            self._put(entry)
            return
        self._put_slow(entry)

    def _put_slow(self, entry: Any) -> None:
        if not self._shedding:
            self.queue.wake()  # the writer may be letting a batch gather: it is needed now
            deadline = time.monotonic() + self.max_wait_s
            while self._size() >= self.limit and time.monotonic() < deadline:
                time.sleep(0.001)
            if self._size() < self.limit:
                self._put(entry)
                return
        with self._lock:
            if self._shedding and self._size() < self.limit // 2:  # caught up: accept and wait again next time
                self._shedding = False
                self._put(entry)
                return
            self._shedding = True
            self._dropped += 1
            self.dropped_total += 1

    def take_dropped(self) -> int:
        """Entries dropped since the last call (the writer reports them)."""
        with self._lock:
            n, self._dropped = self._dropped, 0
            return n


def dropped_notice(n: int, gate: QueueGate) -> Entry:
    """The warning record written in place of `n` dropped entries."""
    record = logging.LogRecord(
        "logpipe", logging.WARNING, __file__, 0,
        "logpipe: %d log records dropped: the log writer was more than %d entries behind for over %.1fs",
        (n, gate.limit, gate.max_wait_s), None)
    record.dropped_records = n
    return entry_from_record(record)


class BatchListener(logging.handlers.QueueListener):
    """QueueListener that takes the Handoff's entries in batches and hands them to a Writer."""

    def __init__(self, q: Handoff, writer: Writer, gate: QueueGate | None = None) -> None:
        super().__init__(q)  # type: ignore[arg-type]
        self.handoff = q
        self.writer = writer
        self.gate = gate

    def enqueue_sentinel(self) -> None:
        self.handoff.put_nowait(self._sentinel)
        self.handoff.wake()

    def _monitor(self) -> None:
        take = self.handoff.take
        sentinel = self._sentinel
        while True:
            batch = take(BATCH_MAX)
            if batch and not self._run(batch, sentinel):
                return

    def _run(self, batch: list[Any], sentinel: Any) -> bool:
        """Process a batch; False once the sentinel was seen."""
        entries: list[Entry] = []
        keep_going = True
        flushes: list[_Flush] = []
        for item in batch:
            if item is sentinel:
                keep_going = False
            elif isinstance(item, _Flush):
                flushes.append(item)
            else:
                entries.append(item)
        dropped = self.gate.take_dropped() if self.gate is not None else 0
        if dropped:
            assert self.gate is not None
            entries.append(dropped_notice(dropped, self.gate))
        if entries:
            try:
                self.writer.process(entries)
            except Exception as exc:  # never let the writer thread die: later records still need it
                warn_once(f"logpipe: writer failed on a batch of {len(entries)} records: {exc!r}")
        for f in flushes:
            f.done.set()
        return keep_going

    def drain(self) -> None:
        """Write whatever is still queued (called after the thread stopped)."""
        leftovers: list[Any] = []
        while True:
            try:
                leftovers.append(self.queue.get_nowait())
            except queue.Empty:
                break
        self._run(leftovers, self._sentinel)  # also reports drops not yet written

    def stop(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Ask the thread to finish what is queued; False if it is still busy after `timeout`
        (a hung disk): the thread is a daemon, so it cannot keep the process alive."""
        thread = self._thread
        if thread is None:
            return True
        self.enqueue_sentinel()
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until everything queued so far is written (True) or `timeout` passes."""
        marker = _Flush()
        self.handoff.put_nowait(marker)
        self.handoff.wake()
        return marker.done.wait(timeout)


class EntryQueueHandler(logging.handlers.QueueHandler):
    """Root handler: turns a LogRecord into an entry in the caller's thread and queues it."""

    logpipe = True  # marker so setup_logging can find and replace its own handler

    def __init__(self, q: Handoff, gate: QueueGate | None = None) -> None:
        super().__init__(q)  # type: ignore[arg-type]
        self._put: Callable[[Any], None] = gate.put if gate is not None else q.put_nowait

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._put(entry_from_record(record))
        except Exception:
            self.handleError(record)

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        # No handler lock: the queue is thread-safe, and entry capture must stay cheap.
        if self.filters and not self.filter(record):
            return False
        self.emit(record)
        return True
