"""Elasticsearch sink: idempotent bulk `create` with our own per-item retry policy.

Why not `helpers.bulk`: it retries nothing by default, `parallel_bulk` has no retry bound,
and both serialize every action through the client's generic serializer. Here each record
becomes two NDJSON lines (`create` + the record's deterministic `_id`, then the record
without it), bulk bodies are capped by bytes and count, a few bodies go out concurrently,
and every item ends in exactly one state before `send` returns. The lines are made by the
native core (`logpipe._core.BulkEncoder`) from the records' NDJSON — the core road's bytes
as they are (`send_ndjson`), or the records rendered once (`send`); `_encode` is the
reference road (orjson per record), taken with `LOGPIPE_CORE=off`, for ECS, and for a batch
holding a record the native encoder leaves to it (an `_id` that is a float, list or object).
Item outcomes:

- 201 created -> delivered; 409 exists -> duplicate (a retry or replay; counted, acknowledged)
- 429 / 502-504 / es_rejected_execution_exception -> only those items retried, backoff + jitter
- other 4xx (mapping / parse errors) -> dead-lettered to `logpipe-deadletter-*` with the reason,
  or to the local dead-letter file when that index rejects it too; then acknowledged
- connection errors, timeouts, 5xx on the request -> the node is benched for 30 s and the
  request goes to another live node at once (counted in `rerouted`); with no node live,
  retried forever with backoff (backpressure) until `stop_event` is set
- 401 / 403 security_exception -> SinkFatalError (retrying or dead-lettering cannot fix rights).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import random
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TlsError, TransportError

from elasticsearch import ApiError, Elasticsearch
from logpipe.config import SinkConfig
from logpipe.es.client import (
    EsOptions,
    Masker,
    build_client,
    describe_error,
    describe_transport_error,
    mask_url,
    split_urls,
)
from logpipe.es.naming import IndexNamer, deadletter_index
from logpipe.es.nodes import Node, NodePool
from logpipe.fields import EVENT_KIND, ID, MESSAGE, SERVICE, TAGS, TIMESTAMP, to_ecs
from logpipe.safeform import ECS_MAX_DEPTH, MAX_DEPTH, reduce, render_text
from logpipe.ship.base import SendResult, Sink, SinkConfigError, SinkFatalError, SinkStopped
from logpipe.ship.ndjson import NdjsonSink
from logpipe.ship.stdout import encode_ndjson

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_TYPES = frozenset({"es_rejected_execution_exception", "circuit_breaking_exception", "cluster_block_exception",
                         "unavailable_shards_exception", "process_cluster_event_timeout_exception"})
MAX_SERVER_ERROR_ATTEMPTS = 5  # other 5xx on one item: retry a few times, then dead-letter
MIN_PARALLEL_DOCS = 250  # split a batch across threads only when each part is at least this big
PARTS_PER_WORKER = 2
_FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason,items.*.error.caused_by.reason"
_MAX_ERRORS_KEPT = 20
ECS_INDEX = "ecs-logpipe-{service}-%Y.%m.%d"
_DUMPS_OPT = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def _record_text(rec: dict[str, Any]) -> str:
    """A rejected record as JSON text for its dead letter, whatever it holds."""
    try:
        return orjson.dumps(rec, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    except TypeError:
        return render_text(rec)


class _Item:
    """One document on its way: its NDJSON lines plus what is needed to dead-letter it.

    Made only for documents that need more than one attempt (retries, dead letters, a split
    after 413): the first attempt of a chunk sends pre-joined lines (`_Span`)."""

    __slots__ = ("line", "record", "index", "doc_id", "deadletter", "attempts", "reason")

    def __init__(self, line: bytes, record: dict[str, Any], index: str, doc_id: Any,
                 deadletter: bool = False) -> None:
        self.line = line  # action line + source line
        self.record = record
        self.index = index
        self.doc_id = doc_id
        self.deadletter = deadletter
        self.attempts = 0
        self.reason = ""  # for a dead-letter item: why the original was rejected


class _Lines:
    """A part encoded by the Python road: one bytes object (action + source line) per record."""

    __slots__ = ("lines", "records")

    def __init__(self, lines: list[bytes], records: list[dict[str, Any]]) -> None:
        self.lines = lines
        self.records = records

    def __len__(self) -> int:
        return len(self.lines)

    def body(self, lo: int, hi: int) -> bytes:
        return b"".join(self.lines[lo:hi])

    def line(self, i: int) -> bytes:
        return self.lines[i]

    def record(self, i: int) -> dict[str, Any]:
        return self.records[i]

    def size(self, i: int) -> int:
        return len(self.lines[i])


class _Body:
    """A batch encoded by the native core (`logpipe._core.BulkEncoder`): one bulk body and
    where each record's lines end in it. Records are decoded from the NDJSON only when one
    is needed (a retry or dead letter of that document), unless the caller had them."""

    __slots__ = ("data", "ends", "ndjson", "records")

    def __init__(self, data: bytes, ends: list[int], ndjson: bytes,
                 records: list[dict[str, Any]] | None) -> None:
        self.data = data
        self.ends = ends
        self.ndjson = ndjson
        self.records = records

    def __len__(self) -> int:
        return len(self.ends)

    def _start(self, i: int) -> int:
        return self.ends[i - 1] if i else 0

    def body(self, lo: int, hi: int) -> bytes:
        return self.data[self._start(lo):self.ends[hi - 1]] if hi > lo else b""

    def line(self, i: int) -> bytes:
        return self.data[self._start(i):self.ends[i]]

    def record(self, i: int) -> dict[str, Any]:
        if self.records is None:
            self.records = [orjson.loads(line) for line in self.ndjson.splitlines()]
        return self.records[i]

    def size(self, i: int) -> int:
        return self.ends[i] - self._start(i)


class _Span:
    """Records `[lo, hi)` of one encoded part, not yet split into `_Item`s (the common case is
    that a chunk is acknowledged whole, so per-document objects would be wasted work)."""

    __slots__ = ("enc", "lo", "hi")

    def __init__(self, enc: _Lines | _Body, lo: int, hi: int) -> None:
        self.enc = enc
        self.lo = lo
        self.hi = hi

    def __len__(self) -> int:
        return self.hi - self.lo


class _Backoff:
    """Exponential backoff with jitter, interruptible by the sink's stop event."""

    def __init__(self, stop: threading.Event, base_s: float, max_s: float,
                 abort: threading.Event | None = None) -> None:
        self.stop = stop
        self.abort = abort  # set when another part of the same send failed fatally
        self.base_s = base_s
        self.max_s = max_s
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def wait(self) -> None:
        delay = min(self.max_s, self.base_s * (2 ** min(self.failures, 30)))
        self.failures += 1
        end = time.monotonic() + random.uniform(delay / 2, delay)
        while True:
            left = end - time.monotonic()
            if self.stop.wait(min(0.2, max(0.0, left))):
                raise SinkStopped("elasticsearch sink stopped while retrying")
            if self.abort is not None and self.abort.is_set():
                raise SinkStopped("another part of this batch failed")
            if left <= 0:
                return


def node_urls(cfg: SinkConfig) -> list[str]:
    """The cluster's node URLs: `[sink] urls`, else `url` split at commas."""
    return [u.strip() for u in cfg.urls if u.strip()] if cfg.urls else split_urls(cfg.url)


class ElasticSink(Sink, NdjsonSink):
    """Bulk-indexes records into daily indices; see the module docstring for the item policy."""

    name = "elasticsearch"

    def __init__(self, cfg: SinkConfig) -> None:
        super().__init__()
        self.cfg = cfg
        try:
            urls = node_urls(cfg)
        except ValueError as exc:
            raise SinkConfigError(str(exc)) from None
        if not urls:
            raise SinkConfigError("no Elasticsearch URL given")
        template = EsOptions.from_sink_config(cfg)
        secrets: list[str] = []
        nodes: list[Node[Elasticsearch]] = []
        for url in urls:
            opts = dataclasses.replace(template, url=url).resolved()
            if not opts.url.startswith(("http://", "https://")) or not urlsplit(opts.url).hostname:
                raise SinkConfigError(f"invalid Elasticsearch URL {mask_url(url)!r}")
            secrets += opts.secrets() + EsOptions(url=url).secrets()
            nodes.append(Node(mask_url(url), build_client(opts)))
        try:
            split_urls(",".join(urls))  # one scheme for every node
        except ValueError as exc:
            raise SinkConfigError(str(exc)) from None
        self.opts = dataclasses.replace(template, url=",".join(urls)).resolved()
        self.masker = Masker(secrets)
        self.url = ",".join(n.url for n in nodes)
        self.nodes: NodePool[Elasticsearch] = NodePool(nodes)
        self.client = nodes[0].client  # the first node's client, for callers that need just one
        self.ecs = cfg.schema == "ecs"
        pattern = cfg.index
        if self.ecs and pattern == SinkConfig().index:
            pattern = ECS_INDEX  # ECS documents nest `service` etc.; keep them out of the logpipe-* template
        self.namer = IndexNamer(pattern)
        self.max_batch_bytes = max(1024, int(cfg.max_batch_bytes))
        self.max_batch_docs = max(1, int(cfg.max_batch_docs))
        self.concurrency = max(1, int(cfg.concurrency))
        self.backoff_base_s = 0.1
        self.backoff_max_s = 10.0
        self.last_error = ""  # the latest transient error, "" once a bulk succeeds
        self._headers: dict[str, bytes] = {}
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="es-bulk") if self.concurrency > 1 else None
        self._file_lock = threading.Lock()
        self._warned_at = 0.0
        self._bulk: Any = False  # the native encoder, made on first use (see _bulk_encoder)
        self._bulk_lock = threading.Lock()

    # -- public -------------------------------------------------------------------------
    def describe(self) -> str:
        return f"elasticsearch {self.url}"

    def node_states(self) -> dict[str, bool]:
        return self.nodes.states

    def check_connection(self, timeout_s: float = 10.0) -> str | None:
        """None when a node of the cluster answers within `timeout_s`, else a one-line reason (masked)."""
        deadline = time.monotonic() + max(0.5, timeout_s)
        reason = "no answer"
        while True:
            for node in self.nodes.nodes:
                remaining = deadline - time.monotonic()
                try:
                    node.client.options(request_timeout=max(0.5, min(5.0, remaining))).cluster.health()
                    return None
                except ApiError as exc:
                    if exc.status_code == 401:
                        return f"Elasticsearch at {node.url} refused the credentials: {describe_error(exc, self.masker)}"
                    if exc.status_code == 403:  # authenticated, just no `monitor` privilege: writing may work
                        return None
                    reason = describe_error(exc, self.masker)
                    if exc.status_code not in RETRY_STATUSES:
                        return f"Elasticsearch at {node.url} answered with an error: {reason}"
                except TlsError as exc:
                    return f"TLS error talking to Elasticsearch at {node.url}: {self._short(exc)}"
                except TransportError as exc:
                    reason = self._short(exc)
                except Exception as exc:  # e.g. not Elasticsearch at all (product check)
                    return f"cannot use {node.url} as Elasticsearch: {self.masker(str(exc))}"
            if time.monotonic() >= deadline or self.stop_event.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
                return f"cannot reach Elasticsearch at {self.url}: {reason}"

    def send(self, records: list[dict[str, Any]]) -> SendResult:
        if not records:
            return SendResult()
        bulk = self._bulk_encoder()
        if bulk is not None:
            data, reduced = encode_ndjson(records)
            enc = self._native_body(bulk, data, records)
            if enc is not None:
                result = self._send_body(enc)
                result.encode_failures += reduced
                return result
        return self._send_python(records)

    def accepts_ndjson(self) -> bool:
        """The logpipe schema with the native encoder at hand (ECS documents are renamed in Python)."""
        return not self.ecs and self._bulk_encoder() is not None

    def send_ndjson(self, data: bytes, count: int) -> SendResult:
        if not count:
            return SendResult()
        bulk = self._bulk_encoder()
        enc = self._native_body(bulk, data, None) if bulk is not None else None
        if enc is None:  # a record the native encoder leaves to the reference road
            return self._send_python([orjson.loads(line) for line in data.splitlines()])
        if len(enc) != count:
            raise ValueError(f"NDJSON batch holds {len(enc)} records, {count} announced")
        return self._send_body(enc)

    def _send_python(self, records: list[dict[str, Any]]) -> SendResult:
        """The reference road: records encoded by `_encode`, in parts for the worker threads."""
        return self._run([functools.partial(self._send_part, part) for part in self._split(records)])

    def _send_body(self, enc: _Body) -> SendResult:
        return self._run([functools.partial(self._send_range, enc, lo, hi) for lo, hi in self._ranges(len(enc))])

    def _run(self, jobs: list[Callable[..., SendResult]]) -> SendResult:
        """Run the parts of one batch (each `job(abort)`), concurrently when there is a pool."""
        if len(jobs) == 1 or self._pool is None:
            result = SendResult()
            for job in jobs:
                result.merge(job())
            return result
        abort = threading.Event()
        futures = [self._pool.submit(job, abort) for job in jobs]
        wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in futures if f.done()):
            abort.set()  # the other parts stop retrying; nothing of this batch counts as acked
        result = SendResult()
        problems: list[BaseException] = []
        for fut in futures:  # wait for all parts
            try:
                result.merge(fut.result())
            except BaseException as exc:
                problems.append(exc)
        if problems:  # the real cause first; SinkStopped only when that is all there is
            raise next((p for p in problems if not isinstance(p, SinkStopped)), problems[0])
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for node in self.nodes.nodes:
            node.client.close()

    # -- encoding -----------------------------------------------------------------------
    def _ranges(self, n: int) -> list[tuple[int, int]]:
        """Parts of `n` records for the worker threads: up to PARTS_PER_WORKER per thread so a
        slow request does not leave the others idle at the end of a batch, each at least
        MIN_PARALLEL_DOCS."""
        if self.concurrency == 1 or n < 2 * MIN_PARALLEL_DOCS:
            return [(0, n)]
        parts = min(self.concurrency * PARTS_PER_WORKER, n // MIN_PARALLEL_DOCS)
        size = math.ceil(n / parts)
        return [(i, min(n, i + size)) for i in range(0, n, size)]

    def _split(self, records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        return [records[lo:hi] for lo, hi in self._ranges(len(records))]

    # -- the native encoder ---------------------------------------------------------------
    def _bulk_encoder(self) -> Any | None:
        """`logpipe._core.BulkEncoder` naming indices with this sink's namer; None when the
        core is off or not built (then `_encode`, the reference road, does all of it)."""
        if self._bulk is False:
            from logpipe.coreroute import load_core

            core = load_core()
            self._bulk = core.BulkEncoder(self._index_json) if core is not None and not self.ecs else None
        return self._bulk

    def _index_json(self, day: bytes | None, timestamp: bytes | None, service: bytes | None,
                    kind: bytes | None) -> bytes:
        """The native encoder asks: the index (as a JSON string) of a record with these raw
        JSON values (None: absent or null); `day` is set when it read the day off the timestamp."""
        rec: dict[str, Any] = {}
        if day is not None:
            rec[TIMESTAMP] = day.decode()
        elif timestamp is not None:
            rec[TIMESTAMP] = orjson.loads(timestamp)
        if service is not None:
            rec[SERVICE] = orjson.loads(service)
        if kind is not None:
            rec[EVENT_KIND] = orjson.loads(kind)
        return orjson.dumps(self.namer.index_for(rec))

    def _native_body(self, bulk: Any, data: bytes, records: list[dict[str, Any]] | None) -> _Body | None:
        with self._bulk_lock:
            got = bulk.encode(data)
        return None if got is None else _Body(got[0], got[1], data, records)

    def _header(self, index: str) -> bytes:
        head = self._headers.get(index)
        if head is None:
            head = b'{"create":{"_index":' + orjson.dumps(index) + b',"_id":'
            self._headers[index] = head
        return head

    def _encode(self, records: list[dict[str, Any]], reduced: list[int] | None = None) -> list[bytes]:
        """One bytes object per record: the `create` action line and the source line. A record
        orjson refuses goes out in the safe form, counted in `reduced[0]` when given."""
        count = reduced if reduced is not None else [0]
        return [self._encode_one(rec, rec.get(ID), count) for rec in records]

    def _encode_one(self, rec: dict[str, Any], doc_id: Any, count: list[int]) -> bytes:
        """One record's lines, ECS-named when configured; an `_id` that is not a string goes
        into the action as its Python text, a missing or null one leaves the action without.

        A record in the safe form is indexed by what its safe form says (its `service`,
        `@timestamp` and `_id` as sent), as the native encoder does reading the same record's
        NDJSON (the archive's, the core road's)."""
        index = self.namer.index_for(rec)
        try:
            source = self._document(rec)
        except (TypeError, AttributeError):  # AttributeError: ECS naming of a non-string key
            count[0] += 1
            safe = reduce(rec, max_depth=ECS_MAX_DEPTH if self.ecs else MAX_DEPTH)
            index = self.namer.index_for(safe)
            doc_id = safe.pop(ID, None)
            source = orjson.dumps(to_ecs(safe) if self.ecs else safe, option=_DUMPS_OPT, default=str)
        if doc_id is None:
            return b'{"create":{"_index":' + orjson.dumps(index) + b"}}\n" + source
        return self._header(index) + orjson.dumps(str(doc_id)) + b"}}\n" + source

    def _document(self, rec: dict[str, Any]) -> bytes:
        """The source line of `rec` without `_id` (ECS-named when configured); raises TypeError
        when orjson refuses it."""
        doc = to_ecs(rec) if self.ecs else rec
        if ID in doc:
            doc = {k: v for k, v in doc.items() if k != ID}
        try:
            return orjson.dumps(doc, option=_DUMPS_OPT)
        except TypeError:
            return orjson.dumps(doc, option=_DUMPS_OPT, default=str)

    def _cuts(self, enc: _Lines | _Body, start: int = 0, stop: int | None = None) -> list[tuple[int, int]]:
        """[lo, hi) ranges of records `start..stop` of `enc` within the byte and document caps
        of one bulk request."""
        stop = len(enc) if stop is None else stop
        cuts: list[tuple[int, int]] = []
        max_bytes, max_docs = self.max_batch_bytes, self.max_batch_docs
        lo, size = start, 0
        sizes = enc.size
        for i in range(start, stop):
            n = sizes(i)
            if i > lo and (size + n > max_bytes or i - lo >= max_docs):
                cuts.append((lo, i))
                lo, size = i, 0
            size += n
        if lo < stop:
            cuts.append((lo, stop))
        return cuts

    def _items(self, span: _Span) -> list[_Item]:
        """The per-document form of a span, for retries and dead letters."""
        index_for = self.namer.index_for
        enc = span.enc
        return [_Item(enc.line(i), rec, index_for(rec), rec.get(ID))
                for i in range(span.lo, span.hi) for rec in (enc.record(i),)]

    # -- delivery -----------------------------------------------------------------------
    def _send_part(self, records: list[dict[str, Any]], abort: threading.Event | None = None) -> SendResult:
        result = SendResult()
        reduced = [0]
        enc = _Lines(self._encode(records, reduced), records)
        result.encode_failures = reduced[0]
        for lo, hi in self._cuts(enc):
            self._deliver(_Span(enc, lo, hi), result, abort)
        return result

    def _send_range(self, enc: _Body, start: int, stop: int, abort: threading.Event | None = None) -> SendResult:
        result = SendResult()
        for lo, hi in self._cuts(enc, start, stop):
            self._deliver(_Span(enc, lo, hi), result, abort)
        return result

    def _deliver(self, pending: _Span | list[_Item], result: SendResult,
                 abort: threading.Event | None = None) -> None:
        """Send `pending` until every item is acknowledged (delivered, duplicate, dead-lettered)."""
        backoff = _Backoff(self.stop_event, self.backoff_base_s, self.backoff_max_s, abort)
        queue: list[_Span | list[_Item]] = [pending]
        while queue:
            batch = queue.pop()
            if self.stop_event.is_set():
                raise SinkStopped("elasticsearch sink stopped before delivery finished")
            if isinstance(batch, _Span):
                body = batch.enc.body(batch.lo, batch.hi)
            else:
                body = b"".join([it.line for it in batch])
            node = self.nodes.pick()
            try:
                resp = node.client.bulk(operations=body, filter_path=_FILTER_PATH)
            except (TransportConnectionError, ConnectionTimeout) as exc:
                _release_frames(exc)
                if isinstance(exc, TlsError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    raise SinkFatalError(f"TLS verification failed for {node.url}: {self._short(exc)}") from None
                queue.append(batch)
                if not self._failover(node, f"cannot reach Elasticsearch at {node.url}: {self._short(exc)}", result):
                    backoff.wait()
                continue
            except ApiError as exc:
                _release_frames(exc)
                status = exc.status_code
                reason = describe_error(exc, self.masker)
                if status in (401, 403):
                    raise SinkFatalError(f"Elasticsearch at {node.url} refused the request: {reason}") from None
                if status == 413 and len(batch) > 1:
                    items = self._items(batch) if isinstance(batch, _Span) else batch
                    half = len(items) // 2
                    queue.extend([items[half:], items[:half]])
                    continue
                if status == 413:
                    item = self._items(batch)[0] if isinstance(batch, _Span) else batch[0]
                    self._deadletter([(item, 413, f"request too large: {reason}")], queue, result)
                    continue
                if status >= 500:
                    queue.append(batch)
                    if not self._failover(node, f"Elasticsearch at {node.url} failed: {reason}", result):
                        backoff.wait()
                    continue
                if status in RETRY_STATUSES:
                    self._transient(f"Elasticsearch at {node.url} is busy: {reason}", result)
                    queue.append(batch)
                    backoff.wait()
                    continue
                raise SinkFatalError(f"Elasticsearch at {node.url} rejected a bulk request: {reason}") from None
            self.nodes.mark_up(node)
            self.last_error = ""
            answer = resp.body if hasattr(resp, "body") else resp
            if isinstance(batch, _Span):
                if not answer.get("errors"):
                    result.delivered += len(batch)
                    backoff.reset()
                    continue
                batch = self._items(batch)
            retry, rejected = self._classify(batch, answer, result)
            if rejected:
                self._deadletter(rejected, queue, result)
            if retry:
                result.retries += len(retry)
                queue.append(retry)
                backoff.wait()
            else:
                backoff.reset()

    def _classify(self, batch: list[_Item], body: dict[str, Any], result: SendResult
                  ) -> tuple[list[_Item], list[tuple[_Item, int, str]]]:
        if not body.get("errors"):
            for item in batch:
                if item.deadletter:
                    result.dead_lettered += 1
                else:
                    result.delivered += 1
            return [], []
        retry: list[_Item] = []
        rejected: list[tuple[_Item, int, str]] = []
        results = body.get("items") or []
        if len(results) != len(batch):  # should not happen; resend everything (create is idempotent)
            return batch, []
        for item, res in zip(batch, results, strict=True):
            info = next(iter(res.values())) if res else {}
            status = int(info.get("status", 0))
            if status in (200, 201):
                if item.deadletter:
                    result.dead_lettered += 1
                else:
                    result.delivered += 1
                continue
            if status == 409:
                if item.deadletter:
                    result.dead_lettered += 1
                else:
                    result.duplicates += 1
                continue
            err = info.get("error") or {}
            etype = str(err.get("type", ""))
            if status in (401, 403) and etype == "security_exception":
                raise SinkFatalError(f"Elasticsearch at {self.url} refused to index into {item.index}: "
                                     f"{self.masker(str(err.get('reason', '')))}")
            item.attempts += 1
            if status in RETRY_STATUSES or etype in RETRY_TYPES or (
                    status >= 500 and item.attempts < MAX_SERVER_ERROR_ATTEMPTS):
                retry.append(item)
                continue
            reason = str(err.get("reason", "")) or f"status {status}"
            caused = (err.get("caused_by") or {}).get("reason")
            if caused and caused not in reason:
                reason = f"{reason}: {caused}"
            rejected.append((item, status, f"{etype}: {reason}" if etype else reason))
        return retry, rejected

    def _deadletter(self, rejected: list[tuple[_Item, int, str]], queue: list[list[_Item]],
                    result: SendResult) -> None:
        """Re-route rejected documents to the dead-letter index (or file when that fails too)."""
        to_index: list[_Item] = []
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for item, status, reason in rejected:
            reason = self.masker(reason)
            if len(result.errors) < _MAX_ERRORS_KEPT:
                result.errors.append(f"{item.index}/{item.doc_id}: {reason}")
            if item.deadletter:
                self._write_local(item.record, item.reason, reason)
                result.dead_lettered += 1
                continue
            rec = item.record
            doc = {
                TIMESTAMP: now,
                MESSAGE: str(rec.get(MESSAGE, ""))[:1000],
                SERVICE: rec.get(SERVICE) if isinstance(rec.get(SERVICE), str) else str(rec.get(SERVICE, "")),
                TAGS: ["_deadletter"],
                "deadletter": {
                    "reason": reason[:4000],
                    "status": status,
                    "index": item.index,
                    "id": "" if item.doc_id is None else str(item.doc_id),
                    "record": _record_text(rec),
                },
            }
            index = deadletter_index(self.cfg.deadletter_index)
            head = b'{"create":{"_index":' + orjson.dumps(index)
            action = head + (b"}}\n" if item.doc_id is None else b',"_id":' + orjson.dumps(str(item.doc_id)) + b"}}\n")
            try:
                source = orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
            except TypeError:  # e.g. a message with lone surrogates: the letter in the safe form
                source = orjson.dumps(reduce(doc), option=orjson.OPT_APPEND_NEWLINE)
            dl = _Item(action + source, rec, item.index, item.doc_id, True)
            dl.reason = reason
            to_index.append(dl)
        if to_index:
            queue.append(to_index)

    def _write_local(self, record: dict[str, Any], reason: str, deadletter_error: str) -> None:
        path = Path(self.cfg.deadletter_path)
        entry = {
            TIMESTAMP: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "sink": self.url, "reason": reason, "deadletter_error": deadletter_error, "record": record,
        }
        try:
            line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS, default=str)
        except TypeError:
            entry["record"] = _record_text(record)
            line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE, default=str)
        with self._file_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        log.warning("dead-lettered a record to %s: %s (dead-letter index failed: %s)", path, reason, deadletter_error)

    def _failover(self, node: Node[Elasticsearch], message: str, result: SendResult) -> bool:
        """Bench a failing node. True when another node is live and the request goes there
        now; False when none is (the caller backs off: backpressure)."""
        if self.nodes.mark_down(node, message):
            result.rerouted += 1
            result.retries += 1
            log.warning("%s; node benched for %.0fs, request sent to another node", message,
                        self.nodes.retry_after_s)
            return True
        self._transient(message, result)
        return False

    def _transient(self, message: str, result: SendResult) -> None:
        self.last_error = message
        result.retries += 1
        now = time.monotonic()
        if now - self._warned_at > 30:
            self._warned_at = now
            log.warning("%s; retrying with backoff", message)

    def _short(self, exc: BaseException) -> str:
        return describe_transport_error(exc, self.masker)
        return describe_transport_error(exc, self.masker)


def _release_frames(exc: BaseException) -> None:
    """Drop the locals of the finished frames a failed bulk call left in its tracebacks.

    The transport keeps the exceptions of a failed request in a list that its own frame
    holds while the exceptions' tracebacks hold that frame: a reference cycle, and the frame
    also holds the request body. Under the CLI's quiet garbage collector such cycles pile up
    for every retry of an outage; clearing the frames breaks them at once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)
        todo += [e.__cause__, e.__context__]
        todo += [inner for inner in getattr(e, "errors", ()) or () if isinstance(inner, BaseException)]
