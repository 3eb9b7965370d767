"""The pipeline every front shares: lines -> join -> parse -> enrich -> tap -> throttle ->
batches -> sink thread, with acknowledgements flowing back to the front's checkpoints.

Two threads. The reader (the caller of `run`) pulls line chunks from a front (`TailFront`
follows files, `ReplayFront` reads archives once), turns them into records and cuts
batches. The sink thread sends batches in order and, only after `sink.send` returned,
hands each batch's offsets back to the front (`acknowledge`). Between them sits a bounded
in-flight window (batches and bytes): when the sink is slow or down the reader blocks, so
the log files stay the buffer and memory stays bounded whatever the outage.

Checkpoint safety: a batch carries, per stream, the offset before which every line has been
turned into records of this or an earlier batch; held-back multi-line events
(`MultilineJoiner.pending_start`) cap it, so a restart re-reads them whole.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import orjson

from logpipe import fields
from logpipe.config import Config
from logpipe.enrich import Enricher
from logpipe.safeform import render_text
from logpipe.ship.base import SendResult, Sink, SinkFatalError, SinkStopped
from logpipe.ship.ndjson import NdjsonSink
from logpipe.stages import ColumnTap, MetricsTap, PipelineStats, Throttle
from logpipe.tail.lines import LineBlock
from logpipe.tail.stream import LineChunk, Stream

if TYPE_CHECKING:
    from logpipe.metrics.columns import TapColumns  # numpy: imported only where the tap runs

log = logging.getLogger("logpipe.pipeline")

RecordFilter = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


class Front(Protocol):
    """Where lines come from (tail: followed files; replay: files read once)."""

    def read(self) -> list[LineChunk]:
        """One fair turn; [] when nothing new is there."""

    def wait(self, timeout: float) -> None:
        """Sleep until something may have changed (file event, poll tick) or `timeout`."""

    def finished(self) -> bool:
        """True once everything there is to read was returned (--once, replay)."""

    def acknowledge(self, acks: dict[str, int]) -> None:
        """Sink thread: every line of stream `key` before `offset` is acknowledged."""

    def close(self) -> None:
        """Release files and watchers."""


class NullSink(Sink, NdjsonSink):
    """Acknowledges everything at once and counts it delivered (`--sink null:`, benchmarks, dry runs)."""

    name = "null"

    def send(self, records: list[dict[str, Any]]) -> SendResult:
        return SendResult(delivered=len(records))

    def accepts_ndjson(self) -> bool:
        return True

    def send_ndjson(self, data: bytes, count: int) -> SendResult:
        return SendResult(delivered=count)


@dataclass
class Batch:
    records: list[dict[str, Any]] = field(default_factory=list)
    acks: dict[str, int] = field(default_factory=dict)
    nbytes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    derived: int = 0  # metric/alert/summary records among `records` (event.kind; not log lines)
    # Records the native core rendered (logpipe.coreroute): NDJSON bytes and how many.
    ndjson: bytearray = field(default_factory=bytearray)
    n_ndjson: int = 0

    def size(self) -> int:
        return len(self.records) + self.n_ndjson


class _StreamState:
    """Per-stream parse state: the format's parser and multi-line joiner."""

    def __init__(self, stream: Stream, cfg: Config, texts: list[str]) -> None:
        from logpipe.parse import detect_format, make_parser
        from logpipe.parse.multiline import MultilineJoiner

        inp = stream.input
        fmt = inp.format
        if fmt == "auto":
            sample = stream.sample or [t for t in texts[:50] if t.strip()]
            fmt = detect_format(sample) if sample else "raw"
        self.stream = stream
        self.fmt = fmt
        self.parse = make_parser(fmt, tz=inp.tz, service=inp.service)
        owner = getattr(self.parse, "__self__", None)  # counts the lines it shipped unparsed
        self.counter = owner if isinstance(getattr(owner, "failed", None), int) else None
        self.joiner = MultilineJoiner(inp.multiline, fmt)
        # Formats whose writers never split events over lines skip the joiner entirely.
        self.passthrough = bool(getattr(self.joiner, "passthrough", getattr(self.joiner, "_passthrough", False)))
        self.timeout = inp.multiline.timeout_s
        self.safe = 0  # last safe offset reported by the front for this stream
        self.line_tags: dict[int, list[str]] = {}  # tags of lines still held by the joiner


def _merge(parts: list[Batch]) -> Batch:
    """One batch standing for several consecutive ones: records in order, and per stream the
    furthest acknowledged offset (offsets only grow within a stream)."""
    merged = Batch(started=parts[0].started)
    for part in parts:
        merged.records.extend(part.records)
        merged.ndjson += part.ndjson
        merged.n_ndjson += part.n_ndjson
        for key, offset in part.acks.items():
            if offset >= merged.acks.get(key, -1):
                merged.acks[key] = offset
        for reason, n in part.dropped.items():
            merged.dropped[reason] = merged.dropped.get(reason, 0) + n
        merged.nbytes += part.nbytes
        merged.derived += part.derived
    return merged


def derived_ids(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give metric/alert/summary records without one a deterministic `_id` from their content
    (which names host, interval and route), so a resent batch cannot index them twice. Never
    raises: content orjson refuses (a non-string key, a big integer) is hashed as text."""
    for record in records:
        if fields.ID not in record:
            try:
                content = orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
            except (TypeError, ValueError):
                content = render_text(record).encode("utf-8", "backslashreplace")
            record[fields.ID] = hashlib.blake2b(content, digest_size=14).hexdigest()
    return records


class Pipeline:
    """Wire a front to a sink. `run()` blocks until the front is finished or `stop()`."""

    def __init__(self, cfg: Config, front: Front, sink: Sink | None = None, *,
                 stats: PipelineStats | None = None, tap: MetricsTap | None = None,
                 throttle: Throttle | None = None, record_filter: RecordFilter | None = None,
                 enricher: Enricher | None = None, rate: float = 0.0,
                 shutdown_grace_s: float = 10.0) -> None:
        self.cfg = cfg
        self.front = front
        self.sink = sink if sink is not None else NullSink()
        self.sink.json_clean_input = True  # parsed lines and our own derived records only
        self.stats = stats if stats is not None else PipelineStats()
        self.stats.sink_nodes = self.sink.node_states()
        self.tap = tap
        self.throttle = throttle
        self.record_filter = record_filter
        self.enricher = enricher if enricher is not None else Enricher(cfg.pipeline.host)
        self.rate = rate
        self.grace = shutdown_grace_s
        p = cfg.pipeline
        self.max_records = max(1, p.batch_max_records)
        self.max_wait = max(0.0, p.batch_max_wait_s)
        self.max_batches = max(1, p.inflight_max_batches)
        self.max_bytes = max(1, p.inflight_max_bytes)
        self.merge_batches = 4  # at most this many queued batches are delivered as one
        self._states: dict[str, _StreamState] = {}
        self._batch = Batch()
        # What the tap has not seen yet, in file order: record lists (the Python road) and
        # columns (the core's road). It observes whole batches at once (its numpy work has a
        # fixed cost per call, which small read chunks would pay many times).
        self._tap_pending: list[list[dict[str, Any]] | TapColumns] = []
        self._tap_count = 0
        self._queue: queue.Queue[Batch | None] = queue.Queue()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._stop_at = 0.0
        self._last_submit = 0.0
        self._fatal = ""
        self._aborted = False
        self._paced = 0
        self._pace_start = 0.0
        self._sink_thread: threading.Thread | None = None
        self._core = self._core_route()

    def _core_route(self) -> Any | None:
        """The native core's JSON road, where its bytes can reach the sink unchanged."""
        from logpipe.coreroute import CoreRoute, load_core
        from logpipe.ship.ndjson import NdjsonSink

        if (self.record_filter is not None or self.throttle is not None
                or (self.tap is not None and self.tap.whole_records) or not (isinstance(self.sink, NdjsonSink) and self.sink.accepts_ndjson())):
            return None
        core = load_core()
        if core is None:
            return None
        route = CoreRoute(core, self.enricher, tap=self.tap is not None)
        return route if route.usable else None

    # -- control ------------------------------------------------------------------------
    def stop(self) -> None:
        """Finish gracefully (deliver what was read); a second call abandons retries."""
        if self._stop.is_set():
            self.sink.stop_event.set()
        else:
            self._stop_at = time.monotonic()
        self._stop.set()
        wake = getattr(self.front, "wake", None)
        if wake is not None:  # do not sleep out a poll interval before stopping
            wake()
        with self._cond:
            self._cond.notify_all()

    @property
    def error(self) -> str:
        """The fatal sink error that ended the run, '' if none."""
        return self._fatal

    def run(self) -> int:
        """Run to completion; 0 on success, 1 when the sink failed."""
        self.stats.started_at = self.stats.started_at or time.time()
        self._pace_start = time.monotonic()
        self._sink_thread = threading.Thread(target=self._sink_loop, name="logpipe-sink", daemon=True)
        self._sink_thread.start()
        try:
            self._read_loop()
        finally:
            self._finish()
        if self._fatal:
            return 1
        if self._aborted and getattr(self.front, "once", False):
            return 1  # --once / replay stopped before everything was delivered
        return 0

    def _read_loop(self) -> None:
        front = self.front
        while not self._stop.is_set() and not self._fatal:
            chunks = front.read()
            for chunk in chunks:
                self._process(chunk)
                if self._fatal:
                    return
            now = time.monotonic()
            self._flush_idle(now)
            if front.finished():
                for key in list(self._states):
                    self._flush_stream(key)
                return  # _finish adds the final metric/throttle records and submits
            if self._batch.acks and (now - self._batch.started >= self.max_wait
                                     or (not chunks and getattr(front, "once", False))):
                self._submit()
            if self.tap is not None and not self._batch.acks and now - self._last_submit >= 1.0:
                self._submit(tick=True)  # lets metric/alert records out while no logs arrive
            if not chunks:
                front.wait(self._next_timeout(now))

    def _next_timeout(self, now: float) -> float:
        timeout = 1.0
        if self._batch.acks:
            timeout = min(timeout, self._batch.started + self.max_wait - now)
        for st in self._states.values():
            if st.joiner.pending_start is not None:
                timeout = min(timeout, st.timeout - st.joiner.idle_for(now))
        return max(0.005, timeout)

    def _finish(self) -> None:
        try:
            if not self._fatal:
                final = self._final_records()
                self._batch.records.extend(final)
                self._batch.derived += len(final)
                self._submit()
        finally:
            self._queue.put(None)
            self._join_sink()
            self.front.close()
            try:
                self.sink.close()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the real outcome
                log.warning("closing sink %s: %s", self.sink.describe(), exc)

    def _final_records(self) -> list[dict[str, Any]]:
        """Records owed at shutdown: the unfinished interval's metric/alert records and the
        throttle's drop summaries for the current period, so no count goes unreported."""
        self._observe_pending()
        extra: list[dict[str, Any]] = []
        for owner, method in ((self.tap, "flush_records"), (self.throttle, "drain_summaries")):
            flush = getattr(owner, method, None)
            if flush is None:
                continue
            try:
                extra.extend(derived_ids(flush()))
            except Exception as exc:  # noqa: BLE001 - a final flush must not hide the run's outcome
                log.warning("final %s failed: %s", method, exc)
        return extra

    def _join_sink(self) -> None:
        """Wait for the sink to deliver what was read. Finishing normally (--once, replay)
        waits as long as the sink retries; after stop() only `grace` seconds."""
        thread = self._sink_thread
        assert thread is not None
        while thread.is_alive():
            thread.join(0.25)
            if (self._stop.is_set() and not self.sink.stop_event.is_set()
                    and time.monotonic() - self._stop_at > self.grace):
                log.warning("sink %s still busy after %.0fs; stopping without its acknowledgement",
                            self.sink.describe(), self.grace)
                self.sink.stop_event.set()

    # -- records ------------------------------------------------------------------------
    def _process(self, chunk: LineChunk) -> None:
        key = chunk.stream.key
        st = self._states.get(key)
        lines = chunk.lines
        if st is None and len(lines):
            st = self._states[key] = _StreamState(chunk.stream, self.cfg, lines.head(50))
        if st is None:  # nothing to parse: the offsets alone move on
            self._add_ack(key, chunk.safe_offset)
            return
        st.safe = chunk.safe_offset
        st.stream = chunk.stream
        if chunk.eof:
            del self._states[key]
            if self._core is not None:
                self._core.forget(key)
        if st.passthrough and self._core is not None and self._core.applies(st.fmt, lines):
            self._emit_core(st, lines, chunk.safe_offset)
            return
        if st.passthrough:  # one event per line: skip building and unpacking event tuples
            self._emit_lines(st.stream, st, lines.starts, lines.ends, lines.texts, lines.tags, chunk.safe_offset)
            return
        events = st.joiner.feed(list(zip(lines.starts, lines.ends, lines.texts, strict=True))) if lines.texts else []
        if chunk.eof:
            events += st.joiner.flush()
        pending = st.joiner.pending_start
        safe = chunk.safe_offset if pending is None else min(pending, chunk.safe_offset)
        for start, tags in lines.tags.items():  # kept until the event holding the line goes out
            st.line_tags.setdefault(start, []).extend(tags)
        self._emit(st.stream, st, events, st.line_tags, safe)

    def _flush_idle(self, now: float) -> None:
        for key, st in list(self._states.items()):
            if st.joiner.pending_start is not None and st.joiner.idle_for(now) >= st.timeout:
                self._flush_stream(key)

    def _flush_stream(self, key: str) -> None:
        st = self._states[key]
        events = st.joiner.flush()
        if events:
            self._emit(st.stream, st, events, st.line_tags, st.safe)

    def _emit(self, stream: Stream, st: _StreamState, events: list[tuple[int, int, str, list[str]]],
              line_tags: dict[int, list[str]], safe: int) -> None:
        key = stream.key
        if not events:
            self._add_ack(key, safe)
            return
        starts_t, ends_t, texts_t, etags = zip(*events, strict=True)
        starts, ends, texts = list(starts_t), list(ends_t), list(texts_t)
        tags: dict[int, list[str]] = {}
        if any(etags):
            for s, t in zip(starts, etags, strict=True):
                if t:
                    tags.setdefault(s, []).extend(t)
        if line_tags:  # a tagged line inside a joined event tags the event
            last_end = ends[-1]
            for s in [s for s in line_tags if s < last_end]:
                t = line_tags.pop(s)
                i = bisect_right(starts, s) - 1
                if i >= 0:
                    tags.setdefault(starts[i], []).extend(x for x in t if x not in tags.get(starts[i], ()))
        self._emit_lines(stream, st, starts, ends, texts, tags, safe)

    def _emit_lines(self, stream: Stream, st: _StreamState, starts: list[int], ends: list[int],
                    texts: list[str], tags: dict[int, list[str]], safe: int) -> None:
        """Events (one text each) -> records in batch-sized slices; acks up to `safe` after the last."""
        key = stream.key
        blank = ([i for i, t in enumerate(texts) if not t or t.isspace()]
                 if "" in texts or any(map(str.isspace, texts)) else None)
        if blank:
            self._count_drop("empty_line", len(blank))
            drop = set(blank)
            keep = [i for i in range(len(texts)) if i not in drop]
            starts = [starts[i] for i in keep]
            ends = [ends[i] for i in keep]
            texts = [texts[i] for i in keep]
        n = len(texts)
        if n == 0:
            self._add_ack(key, safe)
            return
        i = 0
        while i < n:  # each slice fills the current batch (a filter or throttle may shrink it)
            j = min(n, i + max(1, self.max_records - self._batch.size()))
            ack = ends[j - 1] if j < n else safe
            self._add_records(stream, st, texts[i:j], starts[i:j], tags, ack, ends[j - 1] - starts[i])
            if self._batch.size() >= self.max_records:
                self._submit()
            i = j

    def _emit_core(self, st: _StreamState, block: LineBlock, safe: int) -> None:
        """The native core's road (logpipe.coreroute) for one block, cut into batch-sized slices.
        It reads the block's raw bytes: no Python object is made per line."""
        assert self._core is not None
        stream, n, done, at = st.stream, len(block), 0, 0
        stats = self.stats
        while done < n:
            out = self._core.run(stream, st.fmt, st.parse, st.counter, block, at, max(1, self.max_records - self._batch.size()))
            stats.records_parsed += out.count
            stats.parse_failures += out.parse_failures
            stats.encode_failures += out.encode_failures
            if out.blank:
                self._count_drop("empty_line", out.blank)
            if out.tap is not None:
                self._tap_add(out.tap, out.tap.n_records)
            done += out.lines
            self._add_ack(stream.key, block.raw_base + out.end if done < n else safe)
            self._batch.ndjson += out.ndjson
            self._batch.n_ndjson += out.count
            self._batch.nbytes += out.end - at
            at = out.end
            if self.rate > 0:
                self._pace(out.lines)
            if self._batch.size() >= self.max_records:
                self._submit()

    def _add_records(self, stream: Stream, st: _StreamState, texts: list[str], starts: list[int],
                     tags: dict[int, list[str]], ack: int, nbytes: int) -> None:
        counter = st.counter
        before = counter.failed if counter is not None else 0
        coerced = getattr(counter, "coerced", 0)
        records = st.parse(texts)
        stats = self.stats
        stats.encode_failures += getattr(counter, "coerced", 0) - coerced  # tagged _encode_failure
        stats.records_parsed += len(records)
        if counter is not None:  # the parser counts its failures: no pass over the records
            stats.parse_failures += counter.failed - before
        else:
            stats.parse_failures += sum(
                1 for r in records if (t := r.get(fields.TAGS)) and fields.TAG_PARSE_FAILURE in t
            )
        self.enricher.apply(records, texts, starts, stream.path, stream.fp, tags, stream.input.tags,
                            keep_ids=stream.keeps_ids)
        if self.tap is not None:
            self._tap_add(records, len(records))
        if self.record_filter is not None:
            kept = self.record_filter(records)
            if len(kept) != len(records):
                self._count_drop("filter", len(records) - len(kept))
            records = kept
        if self.throttle is not None and records:
            records, report = self.throttle.apply(records)
            dropped = sum(report.dropped.values())
            if dropped:
                self._count_drop("throttle", dropped)
            if report.summaries:
                records = records + report.summaries
        self._add_ack(stream.key, ack)
        self._batch.records.extend(records)
        self._batch.nbytes += nbytes
        if self.rate > 0:
            self._pace(len(texts))

    def _tap_add(self, part: list[dict[str, Any]] | TapColumns, n: int) -> None:
        self._tap_pending.append(part)
        self._tap_count += n
        if self._tap_count >= self.max_records:
            self._observe_pending()

    def _observe_pending(self) -> None:
        """Hand the tap what it has not seen (at every batch cut, so metrics lag reading by at
        most `batch_max_wait_s`), in order: runs of records as records, runs of columns as
        columns (only a ColumnTap gets those: the core's road is taken for no other)."""
        pending, tap = self._tap_pending, self.tap
        self._tap_pending, self._tap_count = [], 0
        if not pending or tap is None:
            return
        at = 0
        while at < len(pending):
            end = at + 1
            records = isinstance(pending[at], list)
            while end < len(pending) and isinstance(pending[end], list) == records:
                end += 1
            run = pending[at:end]
            if records:
                tap.observe([r for part in cast(list[list[dict[str, Any]]], run) for r in part])
            else:
                cols = cast(list["TapColumns"], run)
                cast(ColumnTap, tap).observe_columns(type(cols[0]).concat(cols))
            at = end

    def _count_drop(self, reason: str, n: int) -> None:
        self.stats.dropped[reason] = self.stats.dropped.get(reason, 0) + n
        self._batch.dropped[reason] = self._batch.dropped.get(reason, 0) + n

    def _add_ack(self, key: str, offset: int) -> None:
        batch = self._batch
        if not batch.acks:
            batch.started = time.monotonic()
        if offset >= batch.acks.get(key, -1):
            batch.acks[key] = offset

    def _pace(self, n: int) -> None:
        """--rate: never run ahead of `rate` records per second."""
        self._paced += n
        ahead = self._pace_start + self._paced / self.rate - time.monotonic()
        if ahead > 0:
            if self._batch.size():
                self._submit()
            self._stop.wait(ahead)

    # -- batches and the sink thread ----------------------------------------------------
    def _submit(self, tick: bool = False) -> None:
        self._observe_pending()
        batch = self._batch
        self._last_submit = time.monotonic()
        if not batch.acks and not batch.size() and not tick:
            return
        self._batch = Batch()
        with self._cond:
            while (
                not self._fatal
                and not self.sink.stop_event.is_set()
                and (self.stats.inflight_batches >= self.max_batches
                     or (self.stats.inflight_bytes + batch.nbytes > self.max_bytes
                         and self.stats.inflight_batches > 0))
            ):
                if self._stop.is_set() and time.monotonic() - self._stop_at > self.grace:
                    # Shutting down with the sink stuck: leave this batch unsent and
                    # unacknowledged; its lines are read again after a restart.
                    return
                self._cond.wait(0.25)
            self.stats.inflight_batches += 1
            self.stats.inflight_bytes += batch.nbytes
        self._queue.put(batch)

    def _release(self, batch: Batch) -> None:
        with self._cond:
            self.stats.inflight_batches -= 1
            self.stats.inflight_bytes -= batch.nbytes
            self._cond.notify_all()

    def _sink_loop(self) -> None:
        done = False
        while not done:
            batch = self._queue.get()
            if batch is None:
                break
            parts = [batch]
            done = self._take_queued(parts)
            merged = _merge(parts) if len(parts) > 1 else batch
            try:
                if not self._fatal and not self._aborted:
                    self._deliver(merged)
            finally:
                for part in parts:
                    self._release(part)
        if not self._fatal and not self._aborted:
            try:
                self.sink.flush()
            except Exception as exc:  # noqa: BLE001
                self._fail(f"{self.sink.describe()}: flush failed: {exc}")

    def _take_queued(self, parts: list[Batch]) -> bool:
        """Group commit: batches that queued up while the sink was busy go out as one send and
        one checkpoint write (a sink that falls behind pays its per-send cost -- an fsync, an
        ack round trip, a bulk request -- less often, and catches up). Returns True when the
        end-of-input marker was taken."""
        records = parts[0].size()
        limit = self.max_records * self.merge_batches
        while records < limit:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return False
            if nxt is None:
                return True
            parts.append(nxt)
            records += nxt.size()
        return False

    def _deliver(self, batch: Batch) -> None:
        records = batch.records
        derived = batch.derived
        if self.tap is not None:
            try:
                extra = derived_ids(self.tap.drain_records())
            except Exception as exc:  # noqa: BLE001 - metrics never stop delivery
                log.warning("metrics tap failed: %s", exc)
                extra = []
            if extra:
                records = records + extra
                derived += len(extra)
        result = SendResult()
        t0 = time.monotonic()
        if records or batch.n_ndjson:
            try:
                if batch.n_ndjson:
                    assert isinstance(self.sink, NdjsonSink)  # the core road is only taken for one
                    result = self.sink.send_ndjson(bytes(batch.ndjson), batch.n_ndjson)
                if records:
                    result.merge(self.sink.send(records))
            except SinkStopped:
                self._aborted = True
                return
            except SinkFatalError as exc:
                self._fail(str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - a sink bug must not look like success
                self._fail(f"{self.sink.describe()}: {type(exc).__name__}: {exc}")
                return
        latency = time.monotonic() - t0
        try:
            self.front.acknowledge(batch.acks)
        except Exception as exc:  # noqa: BLE001 - e.g. checkpoint disk full
            self._fail(f"checkpoint write failed: {exc}")
            return
        stats = self.stats
        stats.delivered += result.delivered
        stats.derived += min(derived, result.delivered)
        stats.duplicates += result.duplicates
        stats.dead_lettered += result.dead_lettered
        stats.encode_failures += result.encode_failures
        stats.sink_rerouted += result.rerouted
        stats.last_ack_at = time.time()
        stats.last_sink_latency_s = latency
        stats.sink_error = result.errors[-1] if result.errors else ""
        if self.tap is not None:
            try:
                self.tap.on_delivery(result.delivered, dict(batch.dropped), result.dead_lettered, latency)
            except Exception as exc:  # noqa: BLE001 - metrics never stop delivery
                log.warning("metrics tap failed: %s", exc)

    def _fail(self, message: str) -> None:
        self._fatal = message
        self.stats.sink_error = message
        log.error("%s", message)
        with self._cond:
            self._cond.notify_all()
