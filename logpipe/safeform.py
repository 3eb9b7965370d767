"""The safe form: what a record becomes when a sink cannot encode it as it is.

Every sink encoder (NDJSON for stdout and the archive, the Elasticsearch bulk body, the
Fluentd PackedForward entries) first encodes a record as it is. Only when its encoder refuses
the record does it encode `reduce(record)` instead, and counts it. One bad record therefore
never stops a batch, and the rules below are the whole contract (a port, e.g. the native
core, mirrors this module):

1. Encodable as it is: JSON types with string keys, containers nested at most `MAX_DEPTH`
   deep (the record itself is level 1), integers in [`INT_MIN`, `INT_MAX`], strings that are
   valid UTF-8 (no lone surrogates). Anything else is reduced:
2. `tags` gets `TAG_ENCODE_FAILURE` (kept after the record's own tags).
3. An integer outside the range leaves its place and becomes text under the flat key
   `_overflow.<dotted path>` (`_overflow.bytes`, `_overflow.ctx.lineno`; the path follows
   object keys): its decimal digits or, when it sits inside an array, the whole outermost
   array as JSON text (`_overflow.sizes` = "[1,123456789012345678901234]"; no index paths).
   An input field of that same name is replaced, and counts as dropped (rule 7).
4. A top-level field whose value nests deeper than `MAX_DEPTH` is dropped whole.
5. Strings and keys that are not valid UTF-8: bytes the tailer kept with surrogateescape
   become `\\xNN`, other lone surrogates `\\udXXX`; non-string keys become `str(key)`;
   values of other types become text (bytes decoded with `\\xNN` escapes).
6. A non-string `level` becomes `str(level)` (the JSON parser applies this one rule at parse
   time, with the same tag, so the metrics never see a non-string level).
7. When a field was dropped, `message` becomes the original line: the one given by the
   caller, else the original record rendered as JSON text by `render_text` (any depth,
   big integers as digits). It is cut to `max_line_bytes` on a character boundary.
   Nothing is lost: a dropped field is still in `message`.
8. `_id` is kept as it is (a non-string id becomes text): the safe form of a record is the
   same document, so a resend or replay still lands on the same id.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from logpipe import fields as F

TAG_ENCODE_FAILURE = F.TAG_ENCODE_FAILURE
OVERFLOW_PREFIX = "_overflow."
#: Deepest container nesting every encoder takes (orjson's limit; msgpack's is higher).
MAX_DEPTH = 254
#: The same for records rendered as ECS afterwards (`service` -> `service.name` nests deeper).
ECS_MAX_DEPTH = MAX_DEPTH - max(target.count(".") for target in F.ECS_MAP.values())
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
#: The default cap on `message` (the tailer's default `max_line_bytes`).
LINE_LIMIT = 1_048_576


class _Drop(Exception):
    """This top-level field cannot be kept: it nests too deep."""


class _BigInArray(Exception):
    """An out-of-range integer inside an array: the outermost array moves to `_overflow`."""


def encodable(record: dict[str, Any]) -> bool:
    """True when the strictest of our encoders (orjson, string keys) takes `record` as it is."""
    try:
        orjson.dumps(record)
        return True
    except (TypeError, ValueError):
        return False


def coerce_level(value: Any) -> str:
    """Rule 6: the text of a non-string level (`2.5` -> "2.5")."""
    if value.__class__ is str:
        return value
    if isinstance(value, dict | list | tuple):
        return render_text(value, 256)
    return _text(value)


def reduce(record: dict[str, Any], line: str | None = None, max_line_bytes: int = LINE_LIMIT,
           max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The safe form of `record` (a new dict; `record` is left as it is). `line` is the
    original input line when the caller knows it; `max_depth` is ECS_MAX_DEPTH for records
    rendered as ECS afterwards."""
    out: dict[str, Any] = {}
    overflow: dict[str, str] = {}
    dropped = False
    for key, value in record.items():
        name = _key(key)
        if name == F.ID:
            out[name] = value if value.__class__ is str and _valid(value) else _text(value)
            continue
        if name == F.LEVEL and value.__class__ is not str:
            out[name] = _clean_str(coerce_level(value))
            continue
        found: dict[str, str] = {}
        try:
            got = _clean(value, 2, name, found, max_depth)
        except _Drop:
            dropped = True
            continue
        if got is not _MISSING:
            out[name] = got
        overflow.update(found)
    tags = out.get(F.TAGS)
    if not isinstance(tags, list):
        tags = [] if tags is None else [tags]
    if TAG_ENCODE_FAILURE not in tags:
        tags = [*tags, TAG_ENCODE_FAILURE]
    out[F.TAGS] = tags
    for path, digits in overflow.items():
        key = OVERFLOW_PREFIX + path
        dropped = dropped or key in out  # the input's own field of that name: kept in `message`
        out[key] = digits
    if dropped:
        text = line if line is not None else render_text(record, max_line_bytes)
        out[F.MESSAGE] = _cut(_clean_str(text), max_line_bytes)
    if F.ID in out:  # keep the id last, where the encoders look for it first
        out[F.ID] = out.pop(F.ID)
    return out


def _clean(value: Any, depth: int, path: str, overflow: dict[str, str] | None, limit: int) -> Any:
    """A copy of `value` every encoder takes. Big integers reached through objects go to
    `overflow` (path -> digits) and are left out; `overflow=None` means inside an array."""
    cls = value.__class__
    if cls is str:
        return value if _valid(value) else _clean_str(value)
    if cls is bool or value is None or cls is float:
        return value
    if isinstance(value, int):
        if INT_MIN <= value <= INT_MAX:
            return int(value)
        if overflow is None:
            raise _BigInArray
        overflow[path] = _digits(value)
        return _MISSING
    if isinstance(value, dict):
        if depth > limit:
            raise _Drop
        out = {}
        for k, v in value.items():
            name = _key(k)
            got = _clean(v, depth + 1, f"{path}.{name}", overflow, limit)
            if got is not _MISSING:
                out[name] = got
        return out
    if isinstance(value, list | tuple | set | frozenset):
        if depth > limit:
            raise _Drop
        if overflow is None:  # inside an outer array: that one moves as a whole
            return [_clean(v, depth + 1, path, None, limit) for v in value]
        try:
            return [_clean(v, depth + 1, path, None, limit) for v in value]
        except _BigInArray:
            overflow[path] = render_text(value)
            return _MISSING
    if isinstance(value, float):  # a float subclass
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return _clean_str(_text(value))


_MISSING = object()


def render_text(value: Any, limit: int = LINE_LIMIT) -> str:
    """`value` as JSON text whatever it holds: any depth (no recursion), integers of any size
    as digits, surrogates escaped, NaN/Infinity as null, other types as strings. Stops once
    the text is longer than `limit` characters (the caller cuts it)."""
    parts: list[str] = []
    size = 0
    # a stack of iterators over (prefix, value) pairs; a closing bracket is pushed as a str
    stack: list[Any] = [iter((("", value),))]
    while stack and size <= limit:
        top = stack[-1]
        if top.__class__ is str:
            stack.pop()
            parts.append(top)
            size += 1
            continue
        item = next(top, None)
        if item is None:
            stack.pop()
            continue
        prefix, v = item
        if prefix:
            parts.append(prefix)
        if isinstance(v, dict):
            parts.append("{")
            stack.append("}")
            stack.append(iter([(("," if i else "") + _json_str(_key(k)) + ":", x)
                               for i, (k, x) in enumerate(v.items())]))
        elif isinstance(v, list | tuple | set | frozenset):
            parts.append("[")
            stack.append("]")
            stack.append(iter([("," if i else "", x) for i, x in enumerate(v)]))
        else:
            parts.append(_scalar(v))
        size += len(parts[-1]) + len(prefix)
    return "".join(parts)


def _scalar(v: Any) -> str:
    if v is None or v is True or v is False:
        return "null" if v is None else ("true" if v else "false")
    if isinstance(v, int):
        return _digits(v)
    if isinstance(v, float):
        return repr(float(v)) if math.isfinite(v) else "null"
    if isinstance(v, str):
        return _json_str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return _json_str(bytes(v).decode("utf-8", "backslashreplace"))
    return _json_str(_text(v))


def _json_str(s: str) -> str:
    return orjson.dumps(_clean_str(s)).decode()


def _digits(n: int) -> str:
    try:
        return str(n)
    except ValueError:  # beyond Python's int-to-text digit limit: hex has none
        return hex(n)


def _text(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return _digits(value)
    try:
        return _clean_str(str(value))
    except Exception:  # a __str__ that raises must not stop delivery
        return f"<unprintable {type(value).__name__}>"


def _key(key: Any) -> str:
    if key.__class__ is str:
        return key if _valid(key) else _clean_str(key)
    if isinstance(key, bytes):
        return key.decode("utf-8", "backslashreplace")
    return _text(key)


def _valid(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _clean_str(s: str) -> str:
    """Text valid as UTF-8: bytes kept with surrogateescape as `\\xNN`, other lone
    surrogates as `\\udXXX`."""
    if _valid(s):
        return s
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _cut(text: str, max_bytes: int) -> str:
    """`text` in at most `max_bytes` UTF-8 bytes, cut on a character boundary."""
    if len(text) * 4 <= max_bytes:
        return text
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore")
