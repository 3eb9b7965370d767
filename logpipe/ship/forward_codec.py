"""Encoding of Fluentd Forward Protocol v1 messages (PackedForward, EventTime, options).

Kept apart from the socket code so the byte layout can be tested alone and stays fast:
entries are built as raw bytes (array header + EventTime ext + packed record), which is
what PackedForward carries, instead of building Python lists per record.
"""

from __future__ import annotations

import base64
import calendar
import datetime as _dt
import functools
import gzip
import os
import struct
import time
from collections import deque
from collections.abc import Iterator
from itertools import chain, repeat
from typing import Any

import msgpack
import numpy as np
import orjson

try:  # optional: packs a record in about half the time msgpack's C packer needs
    import ormsgpack
except ImportError:  # pragma: no cover - msgpack does the same job
    ormsgpack = None  # type: ignore[assignment]

from logpipe.fields import EVENT_KIND, LEVEL, METHOD, STATUS, TIMESTAMP
from logpipe.safeform import encodable, reduce
from logpipe.ship.forward_tags import TagRenderer, hashable_key, record_kind_fast

# fixarray(2) + fixext8 header with ext type 0 (EventTime); 8 payload bytes follow.
_ENTRY_PREFIX = b"\x92\xd7\x00"
_EVENT_TIME = struct.Struct(">II")
# ns multiplier by number of fraction digits ("123" -> ms -> * 10**6)
_FRAC_SCALE = {n: 10 ** (9 - n) for n in range(1, 10)}
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# ormsgpack would write these types its own way; send them to `default` (sanitize) instead, so
# both packers give the same values
_ORM_OPTIONS = (ormsgpack.OPT_PASSTHROUGH_DATETIME | ormsgpack.OPT_PASSTHROUGH_UUID
                | ormsgpack.OPT_PASSTHROUGH_DATACLASS | ormsgpack.OPT_PASSTHROUGH_ENUM
                ) if ormsgpack is not None else 0  # a big int raises: the record takes the safe form


def new_chunk_id() -> str:
    """A fresh `chunk` option value: 128 random bits, base64 (as out_forward sends)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


class EventTimeParser:
    """`@timestamp` string -> (seconds, nanoseconds) with a per-second cache.

    Most records of a batch share their second, so the calendar arithmetic runs once per
    second and the fraction is sliced out of the string.
    """

    def __init__(self) -> None:
        self._seconds: dict[str, int] = {}

    def parse(self, value: Any) -> tuple[int, int]:
        if isinstance(value, str) and len(value) >= 20 and value[10] == "T" and value[-1] == "Z":
            head = value[:19]
            secs = self._seconds.get(head)
            if secs is None:
                secs = self._head_seconds(head)
                if secs is not None and not 0 <= secs < 2**32:
                    secs = None  # EventTime holds unsigned 32-bit seconds: take "now" below
                if secs is not None:
                    if len(self._seconds) > 4096:
                        self._seconds.clear()
                    self._seconds[head] = secs
            if secs is not None:
                if len(value) == 20:
                    return secs, 0
                frac = value[20:-1]
                if value[19] == "." and frac.isdigit():
                    return secs, int(frac[:9].ljust(9, "0"))
        return _slow_parse(value)

    def cached_seconds(self, head: str) -> int | None:
        """Seconds of a `YYYY-mm-ddTHH:MM:SS` head this parser accepted, else None."""
        return self._seconds.get(head)

    @staticmethod
    def _head_seconds(head: str) -> int | None:
        try:
            return calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            return None


def _slow_parse(value: Any) -> tuple[int, int]:
    """Anything else: ISO strings with offsets, epoch numbers; else now (never fails)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**32:
        secs = int(value)
        return secs, int(round((value - secs) * 1e9)) % 1_000_000_000
    if isinstance(value, str):
        try:
            dt = _dt.datetime.fromisoformat(value)
        except ValueError:
            dt = None
        if dt is not None:
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=_dt.UTC)
            secs = calendar.timegm(dt.utctimetuple())
            if 0 <= secs < 2**32:
                return secs, dt.microsecond * 1000
    now = time.time_ns()
    return now // 1_000_000_000, now % 1_000_000_000


def sanitize(value: Any) -> Any:
    """Make a value msgpack/JSON-safe without losing it: huge ints become strings, bytes and
    strings that are not valid UTF-8 become text with the bad bytes escaped, odd types str()."""
    if isinstance(value, dict):
        return {_key(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [sanitize(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    try:
        return _clean_str(str(value))
    except Exception:  # a __str__ that raises must not stop delivery
        return f"<unprintable {type(value).__name__}>"


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _clean_str(key)
    if isinstance(key, bytes):
        return key.decode("utf-8", "backslashreplace")
    return str(key)


def _clean_str(value: str) -> str:
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:  # text decoded with surrogateescape: show the original bytes as \xNN
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("ascii")


def _default(obj: Any) -> Any:
    return sanitize(obj)


def _json_safe(record: dict[str, Any]) -> bool:
    return encodable(record)


def safe_records(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Return `records`, or a copy with the unsafe ones in the safe form (logpipe.safeform),
    and how many were reduced.

    orjson rejects exactly what Fluentd/Elasticsearch cannot take and msgpack might let
    through (bytes values, ints beyond 64 bits, invalid UTF-8, non-string keys, deep nesting),
    and checks a whole batch at C speed, so the per-record walk runs only where needed.
    """
    try:
        # one record at a time, each output dropped at once: serialising the whole batch into
        # one multi-megabyte buffer measured ~1.7x slower (allocation and cache misses)
        deque(map(orjson.dumps, records), maxlen=0)
        return records, 0
    except (TypeError, orjson.JSONEncodeError):
        out = [r if _json_safe(r) else reduce(r) for r in records]
        return out, sum(1 for a, b in zip(records, out, strict=True) if a is not b)


def _gather(items: list[Any], idx: list[int]) -> list[Any]:
    return list(map(items.__getitem__, idx))


@functools.lru_cache(maxsize=16)
def _stamp_bounds(length: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-column byte ranges of `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` of this length, or None."""
    if length != 20 and not 22 <= length <= 30:
        return None
    lo = np.full(length, ord("0"), np.uint8)
    hi = np.full(length, ord("9"), np.uint8)
    seps = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":", length - 1: "Z"}
    if length > 20:
        seps[19] = "."
    for pos, ch in seps.items():
        lo[pos] = hi[pos] = ord(ch)
    return lo, hi


def _digits(a: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The decimal number in columns [start, stop) of every row (a few vector ops per digit;
    no BLAS, whose worker threads would spin on the core the receiver needs)."""
    out = np.zeros(a.shape[0], np.int64)
    for col in range(start, stop):
        out *= 10
        out += a[:, col]
        out -= 48
    return out


def vector_prefixes(stamps: list[Any]) -> list[bytes] | None:
    """Entry prefixes (array header + EventTime ext) for a whole batch of `@timestamp`s in
    a few numpy passes instead of Python work per record; None unless every stamp is a
    same-length UTC `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (the tailer's form), so anything
    else takes the exact per-record parser."""
    n = len(stamps)
    if not n or stamps[0].__class__ is not str:
        return None
    width = len(stamps[0])
    bounds = _stamp_bounds(width)
    if bounds is None:
        return None
    try:
        blob = "".join(stamps).encode("ascii")
    except (TypeError, UnicodeEncodeError):
        return None
    if len(blob) != n * width:
        return None
    a = np.frombuffer(blob, np.uint8).reshape(n, width)
    lo, hi = bounds
    if not ((a >= lo).all() and (a <= hi).all()):  # also catches rows of other lengths (shifted)
        return None
    year, month, day = _digits(a, 0, 4), _digits(a, 5, 7), _digits(a, 8, 10)
    hour, minute, sec = _digits(a, 11, 13), _digits(a, 14, 16), _digits(a, 17, 19)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    dim = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    if not ((month >= 1).all() and (month <= 12).all() and (day >= 1).all() and (day <= dim).all()
            and (hour <= 23).all() and (minute <= 59).all() and (sec <= 59).all()):
        return None  # strptime would refuse (or roll a leap second over): exact path decides
    # days since 1970-01-01 of a proleptic Gregorian date (the civil-to-days formula)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    secs = days * 86400 + hour * 3600 + minute * 60 + sec
    if not ((secs >= 0).all() and (secs < 2**32).all()):
        return None
    nanos = _digits(a, 20, width - 1) * 10 ** (30 - width) if width > 20 else np.zeros(n, np.int64)
    out = np.empty((n, 11), np.uint8)
    out[:, :3] = np.frombuffer(_ENTRY_PREFIX, np.uint8)
    out[:, 3:7] = secs.astype(">u4").view(np.uint8).reshape(n, 4)
    out[:, 7:] = nanos.astype(">u4").view(np.uint8).reshape(n, 4)
    return out.view("V11").ravel().tolist()


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


class _KeyIds(dict[tuple[Any, ...], int]):
    """Raw tag inputs `(event.kind, has status, has method, level, *plain fields)` -> a small
    group id, computed once per distinct tuple (the only Python work of grouping)."""

    def __init__(self, tags: TagRenderer) -> None:
        super().__init__()
        self.tags = tags
        self.keys: list[tuple[Any, ...]] = []  # id -> tag key (kind, *plain values)
        self._ids: dict[tuple[Any, ...], int] = {}  # tag key -> id

    def __missing__(self, raw: tuple[Any, ...]) -> int:
        if self.tags.uses_kind:
            # record_kind_fast reads only these (a None value reads like a missing field)
            probe: dict[str, Any] = {EVENT_KIND: raw[0], LEVEL: raw[3]}
            if raw[1]:
                probe[STATUS] = True
            if raw[2]:
                probe[METHOD] = True
            key = (record_kind_fast(probe), *raw[4:])
        else:
            key = ("", *raw)
        gid = self._ids.get(key)
        if gid is None:  # raw tuples giving the same tag (e.g. levels info and warn) share an id
            gid = self._ids[key] = len(self.keys)
            self.keys.append(key)
        self[raw] = gid
        return gid


class EntryPacker:
    """Builds PackedForward entry streams `[EventTime, record]...`, grouped by tag."""

    def __init__(self, *, fast_packer: bool = True) -> None:
        self._packer = msgpack.Packer(use_bin_type=True, default=_default)
        self._pack = self._packer.pack
        self._orm = ormsgpack.packb if fast_packer and ormsgpack is not None else None
        self._times = EventTimeParser()
        self._secs: dict[str, int] = {}  # "YYYY-mm-ddTHH:MM:SS" -> epoch seconds
        self._key_ids: dict[int, _KeyIds] = {}  # per TagRenderer (by id), reset when large
        self.reduced = 0  # records packed in the safe form so far (logpipe.safeform)
        self._core: Any = False  # logpipe._core once looked up (None: off or not built)
        self._native: dict[tuple[str, ...], Any] = {}  # EntryEncoder per tag template's fields

    def entry(self, record: dict[str, Any]) -> bytes:
        """One entry, exactly: sanitises values msgpack or Fluentd could not take."""
        secs, nsecs = self._times.parse(record.get(TIMESTAMP))
        try:
            body = self._packer.pack(record)
        except (OverflowError, UnicodeEncodeError, TypeError, ValueError):
            body = b""
        if not body or not _json_safe(record):
            self.reduced += 1
            body = self._packer.pack(reduce(record))
        return _ENTRY_PREFIX + _EVENT_TIME.pack(secs, nsecs) + body

    def chunks(self, records: list[dict[str, Any]], tags: TagRenderer, *, chunk_bytes: int = 512 * 1024,
               chunk_records: int = 5000, vet: bool = True) -> Iterator[tuple[str, bytes, int]]:
        """The hot path: yield `(tag, entries, count)` per chunk, lazily (the caller sends
        one chunk while the next is packed).

        No Python bytecode runs per record on the usual path: one orjson pass vets the batch
        (`safe_records`), numpy turns all `@timestamp`s into entry prefixes at once
        (`vector_prefixes`), records are grouped by tag through C-level maps and a stable
        argsort, and each chunk is `join(prefix, packb(record), ...)` driven by map/zip.
        Anything unusual (other time formats, values msgpack rejects) falls back to the
        exact per-record code. `vet=False` skips the orjson pass for records known to hold
        only JSON types (the pipeline's): ormsgpack itself rejects over-long ints, lone
        surrogates and non-string keys, so the pass only ever catches bytes values.
        """
        if vet or self._orm is None:
            records, reduced = safe_records(records)
            self.reduced += reduced
        n = len(records)
        if not n:
            return
        stamps = list(map(dict.get, records, repeat(TIMESTAMP)))
        prefixes = vector_prefixes(stamps)
        if prefixes is None:
            prefixes = list(map(self._prefix, stamps))
        first_target = max(1, chunk_records)
        for key, idx in self._groups(records, tags):
            recs = records if idx is None else _gather(records, idx)
            pres = prefixes if idx is None else _gather(prefixes, idx)
            tag = tags.tag_for_key(key)
            target = first_target
            start = 0
            while start < len(recs):
                part = recs[start:start + target]
                data = self._entries(part, pres[start:start + target])
                start += len(part)
                yield tag, data, len(part)
                # next chunk of this tag: as many records as fit chunk_bytes at this average
                target = max(1, min(chunk_records, len(part) * chunk_bytes // max(1, len(data))))

    def _groups(self, records: list[dict[str, Any]],
                tags: TagRenderer) -> list[tuple[tuple[Any, ...], list[int] | None]]:
        """`(tag key, record indexes)` per tag, order kept within a tag (None = all records)."""
        ids_map = self._ids_for(tags)
        get, has = dict.get, dict.__contains__
        cols: list[Iterator[Any]] = []
        if tags.uses_kind:
            cols += [map(get, records, repeat(EVENT_KIND)), map(has, records, repeat(STATUS)),
                     map(has, records, repeat(METHOD)), map(get, records, repeat(LEVEL))]
        cols += [map(get, records, repeat(f)) for f in tags.plain]
        try:
            ids = list(map(ids_map.__getitem__, zip(*cols, strict=False))) if cols else [ids_map[()]]
        except TypeError:  # an unhashable field value (dict, list) used in the tag
            return self._groups_slow(records, tags)
        first = ids[0]
        if len(ids) == 1 or ids.count(first) == len(ids):
            return [(ids_map.keys[first], None)]
        arr = np.array(ids, np.int64)
        order = np.argsort(arr, kind="stable")
        sizes = np.bincount(arr)
        out = []
        pos = 0
        order_list = order.tolist()
        for gid, size in enumerate(sizes.tolist()):
            if size:
                out.append((ids_map.keys[gid], order_list[pos:pos + size]))
                pos += size
        return out

    def _ids_for(self, tags: TagRenderer) -> _KeyIds:
        """The group ids of `tags`' tag keys, kept across batches (so groups keep their order)."""
        ids_map = self._key_ids.get(id(tags))
        if ids_map is None or ids_map.tags is not tags or len(ids_map) > 10_000:
            if len(self._key_ids) > 16:
                self._key_ids.clear()
            ids_map = self._key_ids[id(tags)] = _KeyIds(tags)
        return ids_map

    # -- the native road: NDJSON in, the same chunks out -----------------------------------
    def ndjson_ready(self) -> bool:
        """Whether the native encoder is at hand (the core is built and not turned off)."""
        return self._native_core() is not None

    def _native_core(self) -> Any | None:
        if self._core is False:
            from logpipe.coreroute import load_core

            self._core = load_core()
        return self._core

    def ndjson_chunks(self, data: bytes, tags: TagRenderer, *, chunk_bytes: int = 512 * 1024,
                      chunk_records: int = 5000) -> list[tuple[str, bytes, int]] | None:
        """What `chunks` yields for the records of `data` (NDJSON, as the core road carries
        them), made by the native encoder (`logpipe._core.EntryEncoder`) without a dict per
        record: the same groups in the same order, the same chunk cuts, the same bytes. The
        encoder asks this packer for the group id of each new tag tuple and for the EventTime
        of a timestamp not in the tailer's form. None when the core is off or a record must
        take the Python road (decode it and call `chunks`)."""
        core = self._native_core()
        if core is None:
            return None
        encoder = self._native.get(tags.plain)
        if encoder is None:
            encoder = self._native[tags.plain] = core.EntryEncoder(list(tags.plain))
        ids_map = self._ids_for(tags)
        loads = orjson.loads

        def group(kind: bytes | None, has_status: bool, has_method: bool, level: bytes | None,
                  plain: list[bytes | None]) -> int:
            raw = [None if v is None else loads(v) for v in plain]
            if tags.uses_kind:
                raw[:0] = [None if kind is None else loads(kind), has_status, has_method,
                           None if level is None else loads(level)]
            return ids_map[tuple(raw)]

        try:
            got = encoder.encode(data, chunk_bytes, chunk_records, self._native_time, group)
        except TypeError:  # an unhashable tag value (dict, list): `chunks` groups those its own way
            return None
        if got is None:
            return None
        return [(tags.tag_for_key(ids_map.keys[gid]), entries, count) for gid, entries, count in got]

    def _native_time(self, raw: bytes | None) -> bytes:
        """EventTime bytes of an odd `@timestamp` (raw JSON, None when absent or null)."""
        return self._prefix(None if raw is None else orjson.loads(raw))[len(_ENTRY_PREFIX):]

    @staticmethod
    def _groups_slow(records: list[dict[str, Any]],
                     tags: TagRenderer) -> list[tuple[tuple[Any, ...], list[int] | None]]:
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, record in enumerate(records):
            groups.setdefault(hashable_key(tags.key(record)), []).append(i)
        return list(groups.items())

    def _entries(self, records: list[dict[str, Any]], prefixes: list[bytes]) -> bytes:
        """`prefix + record` for each record, packed in C; exact per-record path if msgpack
        refuses a value half-way (safe_records normally converted it already)."""
        orm = self._orm
        try:
            bodies = (map(orm, records, repeat(_default), repeat(_ORM_OPTIONS)) if orm is not None
                      else map(self._pack, records))
            return b"".join(chain.from_iterable(zip(prefixes, bodies, strict=False)))
        except Exception:
            return b"".join(p + self._body(r) for p, r in zip(prefixes, records, strict=True))

    def _body(self, record: dict[str, Any]) -> bytes:
        if _json_safe(record):
            try:
                return self._pack(record)
            except Exception:  # noqa: BLE001 - msgpack refused what orjson took: the safe form
                pass
        self.reduced += 1
        return self._pack(reduce(record))

    def _prefix(self, ts: Any) -> bytes:
        """One entry prefix: the per-second cache for the tailer's form, else the exact parser."""
        try:
            secs = self._secs[ts[:19]]
            if ts[19] != "." or ts[-1] != "Z":
                raise ValueError
            frac = ts[20:-1]
            if not frac.isdigit():
                raise ValueError
            return _ENTRY_PREFIX + _EVENT_TIME.pack(secs, int(frac) * _FRAC_SCALE[len(frac)])
        except Exception:  # anything unusual: the exact parser
            return _ENTRY_PREFIX + self._event_time(ts)

    def _event_time(self, ts: Any) -> bytes:
        secs, nsecs = self._times.parse(ts)
        if isinstance(ts, str) and self._times.cached_seconds(ts[:19]) == secs:
            if len(self._secs) > 4096:
                self._secs.clear()
            self._secs[ts[:19]] = secs  # the next record of this second takes the fast path
        return _EVENT_TIME.pack(secs, nsecs)

    def entries_by_tag(self, records: list[dict[str, Any]], tags: TagRenderer) -> dict[str, bytes]:
        """All entries per tag in one stream each (tests, tools)."""
        out: dict[str, list[bytes]] = {}
        for tag, data, _ in self.chunks(records, tags):
            out.setdefault(tag, []).append(data)
        return {tag: b"".join(parts) for tag, parts in out.items()}

    def message(self, tag: str, entries: bytes, count: int, chunk_id: str, compress: bool) -> bytes:
        """`[tag, entries, {chunk, size[, compressed]}]` — PackedForward or CompressedPackedForward."""
        return b"".join(self.message_parts(tag, entries, count, chunk_id, compress))

    def message_parts(self, tag: str, entries: bytes, count: int, chunk_id: str,
                      compress: bool) -> tuple[bytes, bytes, bytes]:
        """The same message as (head, entries, option) bytes, so a multi-megabyte entries
        blob goes to the socket as it is instead of being copied into one more buffer."""
        option: dict[str, Any] = {"size": count, "chunk": chunk_id}
        if compress:
            entries = gzip.compress(entries, compresslevel=1)
            option["compressed"] = "gzip"
        size = len(entries)
        if size < 0x100:
            bin_head = b"\xc4" + size.to_bytes(1, "big")
        elif size < 0x10000:
            bin_head = b"\xc5" + size.to_bytes(2, "big")
        else:
            bin_head = b"\xc6" + size.to_bytes(4, "big")
        return b"\x93" + self._pack(tag) + bin_head, entries, self._pack(option)
