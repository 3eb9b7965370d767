"""What runs in the caller's thread: capture a log call as a compact *entry* and queue it.

stdlib `logging` calls and structlog calls end as the same entry tuple, so they render
to the same record shape. Only cheap work happens here (message formatting, context
snapshot); exception formatting, scrubbing and JSON rendering happen on the writer
thread so a request never waits for them.

Entry = (created, levelno, level, logger, message, context, extra, exc_info)
where message is a str, or a (format, args) pair the writer formats (`message_text`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any

from logpipe.emit import context as _context
from logpipe.emit.render import safe_repr, safe_str

Message = str | tuple[str, tuple[Any, ...]]
Entry = tuple[float, int, str, str, Message, Mapping[str, Any], dict[str, Any] | None, Any]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STD_ORDER = tuple(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None)))
_STD_ATTRS = frozenset(_STD_ORDER) | {"message", "asctime", "taskName", "color_message"}
_N_STD = len(_STD_ORDER)
_LAST_STD = _STD_ORDER[-1]

_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
                logging.ERROR: "error", logging.CRITICAL: "critical"}

_METHOD_LEVELS: dict[str, tuple[int, str]] = {
    "debug": (logging.DEBUG, "debug"), "info": (logging.INFO, "info"), "msg": (logging.INFO, "info"),
    "warning": (logging.WARNING, "warning"), "warn": (logging.WARNING, "warning"),
    "error": (logging.ERROR, "error"), "exception": (logging.ERROR, "error"),
    "critical": (logging.CRITICAL, "critical"), "fatal": (logging.CRITICAL, "critical"),
}


_clock: Callable[[], float] | None = None  # None: records carry the time of the log call


def use_clock(clock: Callable[[], float] | None) -> None:
    """Stamp records with `clock()` (seconds since the epoch) instead of the time of the call;
    None restores real time. Why: a simulation (`logpipe demo`) writes an hour of traffic in a
    second, and its records must carry the simulated times to look like that hour."""
    global _clock
    _clock = clock


def now() -> float:
    """The time a record made now carries: real time, or the simulation's (see `use_clock`)."""
    return time.time() if _clock is None else _clock()


def level_name(levelno: int) -> str:
    return _LEVEL_NAMES.get(levelno) or logging.getLevelName(levelno).lower()


def message_text(message: Message) -> str:
    """The text of an entry's message; a (format, args) pair is formatted here, never raising."""
    if isinstance(message, str):
        return message
    fmt, args = message
    try:
        return fmt % args
    except Exception as exc:
        shown = ", ".join(safe_repr(a) for a in args)
        return f"{safe_str(fmt)} [unformattable args ({type(exc).__name__}): {shown}]"


def record_message(record: logging.LogRecord) -> str:
    """`record.getMessage()` that survives broken __str__/__repr__ and bad format args."""
    msg = record.msg
    if not record.args:
        return msg if isinstance(msg, str) else safe_str(msg)
    try:
        return safe_str(msg) % record.args
    except Exception as exc:
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        shown = ", ".join(safe_repr(a) for a in args)
        return f"{safe_str(msg)} [unformattable args ({type(exc).__name__}): {shown}]"


def entry_from_record(record: logging.LogRecord) -> Entry:
    """Capture a stdlib LogRecord (message, `extra=` fields, exception, current context)."""
    attrs = record.__dict__
    extra: dict[str, Any] = {}
    if len(attrs) > _N_STD:
        # LogRecord sets its own attributes first, so `extra=` fields are the tail: skip the
        # head when the layout is the usual one (a custom record factory may differ).
        if next(islice(attrs, _N_STD - 1, None)) == _LAST_STD:
            items = islice(attrs.items(), _N_STD, None)
        else:
            items = iter(attrs.items())
        extra = {k: v for k, v in items if k not in _STD_ATTRS}
    if record.stack_info:
        extra["stack_info"] = record.stack_info
    exc = record.exc_info if record.exc_info and record.exc_info[0] is not None else None
    ctx = getattr(record, "_logpipe_ctx", None)
    if ctx is None:
        ctx = _context.snapshot()
    else:
        extra.pop("_logpipe_ctx", None)
    return (record.created if _clock is None else _clock(), record.levelno, level_name(record.levelno), record.name,
            record_message(record), ctx, extra or None, exc)


def entry_from_event(logger_name: str, method_name: str, event_dict: dict[str, Any]) -> Entry:
    """Capture a structlog event dict; the event dict becomes the record's event fields."""
    levelno, level = _METHOD_LEVELS.get(method_name, (logging.INFO, method_name))
    event = event_dict.pop("event", "")
    message = event if isinstance(event, str) else safe_str(event)
    exc: Any = event_dict.pop("exc_info", None)
    if exc is True or (exc is None and method_name == "exception"):
        exc = sys.exc_info()
        if exc[0] is None:
            exc = None
    elif exc is not None and not isinstance(exc, tuple | BaseException):
        exc = sys.exc_info() if exc else None
    name = event_dict.pop("logger", None) or logger_name
    return (now(), levelno, level, name, message, _context.snapshot(),
            event_dict or None, exc)


class StructlogSink:
    """structlog's 'logger': receives nothing (the processor already queued the entry)."""

    __slots__ = ("name",)

    def __init__(self, name: str = "") -> None:
        self.name = name

    def _noop(self, *args: Any, **kwargs: Any) -> None:
        return None

    msg = debug = info = warning = warn = error = exception = critical = fatal = log = _noop


def sink_factory(*args: Any) -> StructlogSink:
    """`structlog.get_logger(name)` -> a sink that remembers the logger name."""
    return StructlogSink(str(args[0]) if args and args[0] else "root")


def make_structlog_processor(put: Callable[[Entry], None]) -> Callable[..., tuple[tuple[()], dict[str, Any]]]:
    """The single structlog processor: event dict -> entry -> queue; the sink call is a no-op."""
    empty: tuple[tuple[()], dict[str, Any]] = ((), {})

    def to_queue(logger: Any, method_name: str, event_dict: dict[str, Any]) -> tuple[tuple[()], dict[str, Any]]:
        put(entry_from_event(getattr(logger, "name", "root"), method_name, event_dict))
        return empty

    return to_queue
