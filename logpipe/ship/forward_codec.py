"""Encoding of Fluentd Forward Protocol v1 messages (PackedForward, EventTime, options).

Kept apart from the socket code so the byte layout can be tested alone. Two roads make the
same chunks: records the pipeline holds as dicts are packed here (ormsgpack per record, the
entry prefixes of a batch from the native core when it is at hand), and the core road's NDJSON
is packed by the native encoder (`logpipe._core.EntryEncoder`) without a dict per record.
`event_time` is the one Python reading of a `@timestamp`: the core reads the tailer's form
itself and asks it about every other value.
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
from collections import Counter, deque
from collections.abc import Iterator
from itertools import chain, repeat
from typing import Any

import orjson
import ormsgpack

from logpipe.fields import EVENT_KIND, LEVEL, METHOD, STATUS, TIMESTAMP, record_kind
from logpipe.safeform import encodable, reduce
from logpipe.ship.forward_tags import TagRenderer, hashable_key

# fixarray(2) + fixext8 header with ext type 0 (EventTime); 8 payload bytes follow.
_ENTRY_PREFIX = b"\x92\xd7\x00"
_EVENT_TIME = struct.Struct(">II")
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# ormsgpack would write these types its own way; send them to `sanitize` instead
# (a big int raises: the record takes the safe form)
_ORM_OPTIONS = (ormsgpack.OPT_PASSTHROUGH_DATETIME | ormsgpack.OPT_PASSTHROUGH_UUID
                | ormsgpack.OPT_PASSTHROUGH_DATACLASS | ormsgpack.OPT_PASSTHROUGH_ENUM)


def new_chunk_id() -> str:
    """A fresh `chunk` option value: 128 random bits, base64 (as out_forward sends)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def event_time(value: Any) -> bytes:
    """The 8 EventTime bytes (seconds, nanoseconds) of a `@timestamp` value, never failing:
    the tailer's `YYYY-mm-ddTHH:MM:SS[.fraction]Z`, other ISO 8601 strings (offsets too),
    epoch numbers; anything unreadable or outside EventTime's unsigned 32-bit seconds is now."""
    if isinstance(value, str) and len(value) >= 20 and value[10] == "T" and value[-1] == "Z":
        secs = _head_seconds(value[:19])
        if secs is not None:
            if len(value) == 20:
                return _EVENT_TIME.pack(secs, 0)
            frac = value[20:-1]
            if value[19] == "." and frac.isdigit():
                return _EVENT_TIME.pack(secs, int(frac[:9].ljust(9, "0")))
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**32:
        secs = int(value)
        return _EVENT_TIME.pack(secs, int(round((value - secs) * 1e9)) % 1_000_000_000)
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
                return _EVENT_TIME.pack(secs, dt.microsecond * 1000)
    now = time.time_ns()
    return _EVENT_TIME.pack(now // 1_000_000_000, now % 1_000_000_000)


@functools.lru_cache(maxsize=4096)
def _head_seconds(head: str) -> int | None:
    """Epoch seconds of a `YYYY-mm-ddTHH:MM:SS` head within EventTime's range, else None
    (cached: the records of a batch share few seconds)."""
    try:
        secs = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    return secs if 0 <= secs < 2**32 else None


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
        out = [r if encodable(r) else reduce(r) for r in records]
        return out, sum(1 for a, b in zip(records, out, strict=True) if a is not b)


def _pack(obj: Any) -> bytes:
    return ormsgpack.packb(obj, default=sanitize, option=_ORM_OPTIONS)


def _gather(items: list[Any], idx: list[int]) -> list[Any]:
    return list(map(items.__getitem__, idx))


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
            # record_kind reads only these (a None value reads like a missing field)
            probe: dict[str, Any] = {EVENT_KIND: raw[0], LEVEL: raw[3]}
            if raw[1]:
                probe[STATUS] = True
            if raw[2]:
                probe[METHOD] = True
            key = (record_kind(probe), *raw[4:])
        else:
            key = ("", *raw)
        gid = self._ids.get(key)
        if gid is None:  # raw tuples giving the same tag (e.g. levels info and warn) share an id
            gid = self._ids[key] = len(self.keys)
            self.keys.append(key)
        self[raw] = gid
        return gid

    def ids(self, raws: list[tuple[Any, ...]]) -> list[int]:
        """The group id of each raw tuple; a dict or list value in a tag is keyed by its repr()."""
        try:
            return list(map(self.__getitem__, raws))
        except TypeError:
            return [self[hashable_key(raw)] for raw in raws]


class EntryPacker:
    """Builds PackedForward entry streams `[EventTime, record]...`, grouped by tag."""

    def __init__(self) -> None:
        self._key_ids: dict[int, _KeyIds] = {}  # per TagRenderer (by id), reset when large
        self.reduced = 0  # records packed in the safe form so far (logpipe.safeform)
        self._core: Any = False  # logpipe._core once looked up (None: off or not built)
        self._native: dict[tuple[str, ...], Any] = {}  # EntryEncoder per tag template's fields

    def chunks(self, records: list[dict[str, Any]], tags: TagRenderer, *, chunk_bytes: int = 512 * 1024,
               chunk_records: int = 5000, vet: bool = True) -> Iterator[tuple[str, bytes, int]]:
        """The dict road: yield `(tag, entries, count)` per chunk, lazily (the caller sends one
        chunk while the next is packed).

        One orjson pass vets the batch (`safe_records`); the entry prefixes of all records
        come from one call (`_prefixes`); records are grouped by tag through C-level maps and a
        stable sort, and each chunk is `join(prefix, packb(record), ...)` driven by map/zip.
        `vet=False` skips the orjson pass for records known to hold only JSON types (the
        pipeline's): ormsgpack itself rejects over-long ints, lone surrogates and non-string
        keys, so the pass only ever catches bytes values.
        """
        if vet:
            records, reduced = safe_records(records)
            self.reduced += reduced
        if not records:
            return
        prefixes = self._prefixes(records)
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

    def _prefixes(self, records: list[dict[str, Any]]) -> list[bytes]:
        """Entry prefixes (array header + EventTime) of the records' `@timestamp`s: read by the
        core as its encoder reads them, `event_time` answering for any other value."""
        stamps = list(map(dict.get, records, repeat(TIMESTAMP)))
        core = self._native_core()
        if core is not None:
            return core.entry_prefixes(stamps, event_time)
        return [_ENTRY_PREFIX + event_time(ts) for ts in stamps]

    def _groups(self, records: list[dict[str, Any]],
                tags: TagRenderer) -> list[tuple[tuple[Any, ...], list[int] | None]]:
        """`(tag key, record indexes)` per tag in group id order, file order kept within a
        tag (None = all records)."""
        ids_map = self._ids_for(tags)
        get, has = dict.get, dict.__contains__
        cols: list[Iterator[Any]] = []
        if tags.uses_kind:
            cols += [map(get, records, repeat(EVENT_KIND)), map(has, records, repeat(STATUS)),
                     map(has, records, repeat(METHOD)), map(get, records, repeat(LEVEL))]
        cols += [map(get, records, repeat(f)) for f in tags.plain]
        ids = ids_map.ids(list(zip(*cols, strict=False))) if cols else [ids_map[()]]
        first = ids[0]
        if len(ids) == 1 or ids.count(first) == len(ids):
            return [(ids_map.keys[first], None)]
        order = sorted(range(len(ids)), key=ids.__getitem__)  # stable: file order within a group
        out = []
        pos = 0
        for gid, size in sorted(Counter(ids).items()):
            out.append((ids_map.keys[gid], order[pos:pos + size]))
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

    def _entries(self, records: list[dict[str, Any]], prefixes: list[bytes]) -> bytes:
        """`prefix + record` for each record, packed in C; per record (`_body`) if ormsgpack
        refuses a value half-way (safe_records normally converted it already)."""
        try:
            bodies = map(ormsgpack.packb, records, repeat(sanitize), repeat(_ORM_OPTIONS))
            return b"".join(chain.from_iterable(zip(prefixes, bodies, strict=False)))
        except Exception:
            return b"".join(p + self._body(r) for p, r in zip(prefixes, records, strict=True))

    def _body(self, record: dict[str, Any]) -> bytes:
        if encodable(record):
            try:
                return _pack(record)
            except Exception:  # noqa: BLE001 - ormsgpack refused what orjson took: the safe form
                pass
        self.reduced += 1
        return _pack(reduce(record))

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
            return ids_map.ids([tuple(raw)])[0]

        got = encoder.encode(data, chunk_bytes, chunk_records, _native_time, group)
        if got is None:
            return None
        return [(tags.tag_for_key(ids_map.keys[gid]), entries, count) for gid, entries, count in got]

    def entries_by_tag(self, records: list[dict[str, Any]], tags: TagRenderer) -> dict[str, bytes]:
        """All entries per tag in one stream each (tests, tools)."""
        out: dict[str, list[bytes]] = {}
        for tag, data, _ in self.chunks(records, tags):
            out.setdefault(tag, []).append(data)
        return {tag: b"".join(parts) for tag, parts in out.items()}

    @staticmethod
    def message_parts(tag: str, entries: bytes, count: int, chunk_id: str,
                      compress: bool) -> tuple[bytes, bytes, bytes]:
        """`[tag, entries, {chunk, size[, compressed]}]` — PackedForward or
        CompressedPackedForward — as (head, entries, option) bytes, so a multi-megabyte entries
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
        return b"\x93" + _pack(tag) + bin_head, entries, _pack(option)


def _native_time(raw: bytes | None) -> bytes:
    """EventTime bytes of an odd `@timestamp` (raw JSON, None when absent or null)."""
    return event_time(None if raw is None else orjson.loads(raw))
