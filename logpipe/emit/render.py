"""Turning an entry into one JSON line (orjson), or a readable coloured line for a terminal.

Rendering never raises: values orjson cannot encode go through a fallback, and a record
that still fails (invalid surrogates, >64-bit ints, absurd nesting) is sanitised and
rendered again, so every call yields exactly one valid JSON line.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import os
import time
import traceback
import uuid
from collections.abc import Mapping
from itertools import islice
from pathlib import PurePath
from typing import Any

import orjson

from logpipe import fields as F

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
_RESERVED = frozenset((F.TIMESTAMP, F.LEVEL, F.LOGGER, F.MESSAGE, F.SERVICE, F.ENVIRONMENT,
                       F.VERSION, F.HOST, F.PID))
_KNOWN_CONTEXT = frozenset(F.CONTEXT_FIELDS)
_ACCESS = F.ACCESS_FIELDS
_ACCESS_SET = frozenset(_ACCESS)
_MAX_DEPTH = 64


def safe_str(obj: Any) -> str:
    """str(obj), or a marker when its __str__/__repr__ is broken (a log call must not raise)."""
    try:
        return obj if isinstance(obj, str) else str(obj)
    except Exception:
        return safe_repr(obj)


def safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:
        return f"<unrepresentable {type(obj).__qualname__}: {type(exc).__name__}>"


def _default(obj: Any) -> Any:
    """orjson fallback for types it does not know."""
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, set | frozenset):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode("utf-8", "backslashreplace")
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {safe_str(obj)}"
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, tuple | list | range):
        return list(obj)
    return safe_repr(obj)


def sanitise(value: Any, depth: int = 0) -> Any:
    """A JSON-safe deep copy: fixes lone surrogates, huge ints, odd keys, deep nesting."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth >= _MAX_DEPTH:
        return safe_repr(value)[:1000]
    if isinstance(value, Mapping):
        try:
            items = list(value.items())
        except Exception:
            return safe_repr(value)
        return {sanitise(k if isinstance(k, str) else safe_str(k)): sanitise(v, depth + 1) for k, v in items}
    if isinstance(value, set | frozenset):
        value = _default(value)
    if isinstance(value, list | tuple):
        return [sanitise(v, depth + 1) for v in value]
    if isinstance(value, _dt.date | _dt.time | uuid.UUID) or dataclasses.is_dataclass(value):
        try:
            return orjson.loads(orjson.dumps(value, default=_default))
        except Exception:
            return safe_repr(value)
    return sanitise(_default(value), depth + 1)


def dumps(record: Mapping[str, Any]) -> bytes:
    """One JSON line (with trailing newline) for any record; never raises."""
    try:
        return orjson.dumps(record, default=_default, option=_OPTS)
    except Exception:
        pass
    try:
        return orjson.dumps(sanitise(record), default=safe_repr, option=_OPTS)
    except Exception as exc:  # pragma: no cover - last resort
        return orjson.dumps({F.LEVEL: "error", F.MESSAGE: "logpipe: unrenderable record",
                             "error": safe_repr(exc)}, option=_OPTS)


def exception_fields(exc_info: Any) -> dict[str, Any] | None:
    """`exception` = {type, message, stack} from an exc_info tuple (or an exception)."""
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[0] is None:
        return None
    etype, value, tb = exc_info
    module = getattr(etype, "__module__", "builtins")
    name = getattr(etype, "__qualname__", safe_str(etype))
    try:
        stack = "".join(traceback.format_exception(etype, value, tb)).rstrip("\n")
    except Exception as exc:
        stack = f"<traceback unavailable: {type(exc).__name__}>"
    return {"type": name if module in ("builtins", "__main__") else f"{module}.{name}",
            "message": safe_str(value), "stack": stack}


class TimestampFormatter:
    """UTC ISO-8601 with microseconds and `Z`; the seconds part is cached (one strftime per second).

    The cache is one (second, prefix) tuple, replaced whole, so threads sharing a formatter
    can never pair one second with another's prefix.
    """

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        self._cached: tuple[int, str] = (-1, "")

    def __call__(self, ts: float) -> str:
        sec, us = divmod(int(ts * 1_000_000), 1_000_000)
        cached_sec, prefix = self._cached
        if sec != cached_sec:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            self._cached = (sec, prefix)
        return f"{prefix}.{us:06d}Z"


def static_fields(service: str, environment: str, version: str, host: str) -> dict[str, Any]:
    """The per-process fields every record carries, in schema order."""
    return {F.SERVICE: service, F.ENVIRONMENT: environment, F.VERSION: version, F.HOST: host,
            F.PID: os.getpid()}


_ACCESS_NO_ROUTE = tuple(k for k in _ACCESS if k != F.ROUTE)


def _access_in_order(extra: Mapping[str, Any]) -> bool:
    """Extra fields start with the access fields in schema order (as the middleware writes them)."""
    head = tuple(islice(extra, len(_ACCESS)))
    if head == _ACCESS:
        return True
    return head[: len(_ACCESS_NO_ROUTE)] == _ACCESS_NO_ROUTE and F.ROUTE not in extra


def build_record(ts: str, level: str, logger: str, message: str, static: Mapping[str, Any],
                 ctx: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Assemble a record with keys in `fields.FIELD_ORDER` without re-sorting the common case."""
    if not extra:
        return {F.TIMESTAMP: ts, F.LEVEL: level, F.LOGGER: logger, F.MESSAGE: message, **static, **ctx}
    if _RESERVED.isdisjoint(extra) and _KNOWN_CONTEXT.issuperset(ctx) and _KNOWN_CONTEXT.isdisjoint(extra) and (
            _ACCESS_SET.isdisjoint(extra) or _access_in_order(extra)):
        # Common case (app event, or an access record from our middleware): plain unpacking.
        return {F.TIMESTAMP: ts, F.LEVEL: level, F.LOGGER: logger, F.MESSAGE: message, **static, **ctx, **extra}
    if not _KNOWN_CONTEXT.isdisjoint(extra):  # e.g. structlog's log.bind(user_id=...): context, not event
        merged = {**ctx, **{k: v for k, v in extra.items() if k in _KNOWN_CONTEXT}}
        ctx = {k: merged[k] for k in F.CONTEXT_FIELDS if k in merged}
        ctx.update((k, v) for k, v in merged.items() if k not in _KNOWN_CONTEXT)
        extra = {k: v for k, v in extra.items() if k not in _KNOWN_CONTEXT}
    rec: dict[str, Any] = {F.TIMESTAMP: ts, F.LEVEL: level, F.LOGGER: logger, F.MESSAGE: message}
    rec.update(static)
    if ctx:
        if _ACCESS_SET.isdisjoint(extra):
            rec.update(ctx)
        else:
            for k, v in ctx.items():
                if k in _KNOWN_CONTEXT:
                    rec[k] = v
            for k in _ACCESS:
                if k in extra:
                    rec[k] = extra[k]
            for k, v in ctx.items():
                if k not in rec:
                    rec[k] = v
    elif not _ACCESS_SET.isdisjoint(extra):
        for k in _ACCESS:
            if k in extra:
                rec[k] = extra[k]
    for k, v in extra.items():
        if k in _RESERVED:
            rec[f"{k}_"] = v  # never let an event field overwrite the record's identity
        else:
            rec[k] = v
    return rec


# ----------------------------------------------------------------------------- console
_COLOURS = {"debug": "\x1b[2m", "info": "\x1b[32m", "warning": "\x1b[33m", "error": "\x1b[31m",
            "critical": "\x1b[1;31m"}
_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_SKIP_PRETTY = _RESERVED | {F.EXCEPTION}


def pretty(record: Mapping[str, Any], colour: bool = True) -> str:
    """A one-line human rendering (plus the stack, if any) for terminals."""
    level = str(record.get(F.LEVEL, "info"))
    ts = str(record.get(F.TIMESTAMP, ""))[11:23]
    c, r, d = (_COLOURS.get(level, ""), _RESET, _DIM) if colour else ("", "", "")
    extras = " ".join(f"{d}{k}={r}{_short(v)}" for k, v in record.items() if k not in _SKIP_PRETTY)
    line = f"{d}{ts}{r} {c}{level.upper():<8}{r} {d}{record.get(F.LOGGER, '')}:{r} {record.get(F.MESSAGE, '')}"
    if extras:
        line += "  " + extras
    exc = record.get(F.EXCEPTION)
    if isinstance(exc, Mapping) and exc.get("stack"):
        line += "\n" + str(exc["stack"])
    return line + "\n"


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value if " " not in value else repr(value)
    try:
        return orjson.dumps(value, default=_default).decode()
    except Exception:
        return safe_repr(value)
