"""Encoding of Fluentd Forward Protocol v1 messages (PackedForward, EventTime, options).

Kept apart from the socket code so the byte layout can be tested alone and stays fast:
entries are built as raw bytes (array header + EventTime ext + packed record), which is
what PackedForward carries, instead of building Python lists per record.
"""

from __future__ import annotations

import base64
import calendar
import datetime as _dt
import gzip
import os
import struct
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import orjson

from logpipe.fields import EVENT_KIND, LEVEL, METHOD, STATUS, TIMESTAMP
from logpipe.ship.forward_tags import LEVEL_KIND, TagRenderer, hashable_key, record_kind_fast

# fixarray(2) + fixext8 header with ext type 0 (EventTime); 8 payload bytes follow.
_ENTRY_PREFIX = b"\x92\xd7\x00"
_EVENT_TIME = struct.Struct(">II")
# ns multiplier by number of fraction digits ("123" -> ms -> * 10**6)
_FRAC_SCALE = {n: 10 ** (9 - n) for n in range(1, 10)}
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


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
    try:
        orjson.dumps(record)
        return True
    except (TypeError, orjson.JSONEncodeError):
        return False


def safe_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return `records`, or a copy with the unsafe ones sanitised.

    orjson rejects exactly what Fluentd/Elasticsearch cannot take and msgpack might let
    through (bytes values, ints beyond 64 bits, invalid UTF-8, non-string keys), and checks a
    whole batch at C speed, so the per-record walk runs only where needed.
    """
    try:
        orjson.dumps(records)
        return records
    except (TypeError, orjson.JSONEncodeError):
        return [r if _json_safe(r) else sanitize(r) for r in records]


class _TagStream:
    """One tag's chunk being built: a non-resetting msgpack buffer plus its records (kept
    so the chunk can be rebuilt if msgpack fails half-way, which empties its buffer)."""

    __slots__ = ("packer", "array", "ext", "pack", "records", "target")

    def __init__(self, target: int) -> None:
        self.packer = msgpack.Packer(use_bin_type=True, default=_default, autoreset=False)
        self.array = self.packer.pack_array_header
        self.ext = self.packer.pack_ext_type
        self.pack = self.packer.pack
        self.records: list[dict[str, Any]] = []
        self.target = target  # records per chunk, adapted to the average entry size


class EntryPacker:
    """Builds PackedForward entry streams `[EventTime, record]...`, grouped by tag."""

    def __init__(self) -> None:
        self._packer = msgpack.Packer(use_bin_type=True, default=_default)
        self._times = EventTimeParser()
        self._secs: dict[str, int] = {}  # "YYYY-mm-ddTHH:MM:SS" -> epoch seconds

    def entry(self, record: dict[str, Any]) -> bytes:
        """One entry, exactly: sanitises values msgpack or Fluentd could not take."""
        secs, nsecs = self._times.parse(record.get(TIMESTAMP))
        try:
            body = self._packer.pack(record)
        except (OverflowError, UnicodeEncodeError, TypeError, ValueError):
            body = b""
        if not body or not _json_safe(record):
            body = self._packer.pack(sanitize(record))
        return _ENTRY_PREFIX + _EVENT_TIME.pack(secs, nsecs) + body

    def chunks(self, records: list[dict[str, Any]], tags: TagRenderer, *, chunk_bytes: int = 512 * 1024,
               chunk_records: int = 5000) -> Iterator[tuple[str, bytes, int]]:
        """The hot path: yield `(tag, entries, count)` as each tag's chunk fills up (so the
        caller can send one chunk while the next is packed), then the partial ones.

        Inlined on purpose (this runs per record): the tag key and the record's kind are
        computed in place; a timestamp's seconds come from a cache keyed by its first 19
        characters and the fraction is one int(); each entry is three calls into one
        non-resetting msgpack buffer per tag, so no bytes object is made per record.
        Anything unusual (offsets, missing stamps) takes `_event_time`; values msgpack
        rejects were converted by `safe_records` first.
        """
        secs_cache = self._secs
        scale = _FRAC_SCALE
        et = _EVENT_TIME.pack
        uses_kind = tags.uses_kind
        plain = tags.plain
        single = plain[0] if len(plain) == 1 else None
        level_kind = LEVEL_KIND
        first_target = max(1, chunk_records)
        streams: dict[tuple[Any, ...], _TagStream] = {}
        for record in safe_records(records):
            get = record.get
            # -- tag key (record_kind_fast, inlined) --
            kind: Any = ""
            if uses_kind:
                kind = get(EVENT_KIND)
                if not kind:
                    if STATUS in record and METHOD in record:
                        kind = "access"
                    else:
                        level = get(LEVEL)
                        kind = level_kind.get(level) if level.__class__ is str else None
                        if kind is None:
                            kind = record_kind_fast(record)
            key = (kind, get(single)) if single is not None else (kind, *[get(f) for f in plain])
            try:
                st = streams.get(key)
            except TypeError:  # an unhashable field value (dict, list) used in the tag
                key = hashable_key(key)
                st = streams.get(key)
            if st is None:
                streams[key] = st = _TagStream(first_target)
            # -- entry: [EventTime, record] --
            ts = get(TIMESTAMP)
            try:
                secs = secs_cache[ts[:19]]
                if ts[19] != "." or ts[-1] != "Z":
                    raise ValueError
                frac = ts[20:-1]
                time8 = et(secs, int(frac) * scale[len(frac)])
            except Exception:  # anything unusual: the exact parser
                time8 = self._event_time(ts)
            try:
                st.array(2)
                st.ext(0, time8)
                st.pack(record)
            except Exception:  # msgpack dropped its buffer: rebuild this chunk exactly
                st.records.append(record)
                self._rebuild(st)
            else:
                st.records.append(record)
            if len(st.records) >= st.target:
                yield self._finish(tags, key, st, chunk_bytes, chunk_records)
        for key, st in streams.items():
            if st.records:
                yield self._finish(tags, key, st, chunk_bytes, chunk_records)

    def _event_time(self, ts: Any) -> bytes:
        secs, nsecs = self._times.parse(ts)
        if isinstance(ts, str) and len(ts) >= 20 and ts[10] == "T" and ts[-1] == "Z":
            if len(self._secs) > 4096:
                self._secs.clear()
            self._secs[ts[:19]] = secs  # the next record of this second takes the fast path
        return _EVENT_TIME.pack(secs, nsecs)

    def _rebuild(self, st: _TagStream) -> None:
        st.packer.reset()
        for record in st.records:
            st.array(2)
            st.ext(0, self._event_time(record.get(TIMESTAMP)))
            st.pack(record if _json_safe(record) else sanitize(record))

    @staticmethod
    def _finish(tags: TagRenderer, key: tuple[Any, ...], st: _TagStream, chunk_bytes: int,
                chunk_records: int) -> tuple[str, bytes, int]:
        data = st.packer.bytes()
        st.packer.reset()
        count = len(st.records)
        st.records = []
        st.target = max(1, min(chunk_records, count * chunk_bytes // max(1, len(data))))
        return tags.tag_for_key(key), data, count

    def entries_by_tag(self, records: list[dict[str, Any]], tags: TagRenderer) -> dict[str, bytes]:
        """All entries per tag in one stream each (tests, tools)."""
        out: dict[str, list[bytes]] = {}
        for tag, data, _ in self.chunks(records, tags):
            out.setdefault(tag, []).append(data)
        return {tag: b"".join(parts) for tag, parts in out.items()}

    def message(self, tag: str, entries: bytes, count: int, chunk_id: str, compress: bool) -> bytes:
        """`[tag, entries, {chunk, size[, compressed]}]` — PackedForward or CompressedPackedForward."""
        option: dict[str, Any] = {"size": count, "chunk": chunk_id}
        if compress:
            entries = gzip.compress(entries, compresslevel=1)
            option["compressed"] = "gzip"
        return self._packer.pack([tag, entries, option])
