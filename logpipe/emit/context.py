"""Request/user/workspace context carried in a contextvar.

The bound mapping is never mutated: every bind makes a new dict, so a task or thread
that binds cannot leak into its parent, and a log call can keep a reference without
copying. Known context fields are kept first, in `fields.CONTEXT_FIELDS` order, so
rendering never has to re-sort them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from logpipe import fields as F

__all__ = ["bind_context", "unbind_context", "request_context", "get_context", "clear_context"]

_EMPTY: Mapping[str, Any] = {}
_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("logpipe_context", default=_EMPTY)
_KNOWN = F.CONTEXT_FIELDS


def _normalised(values: dict[str, Any]) -> dict[str, Any]:
    out = {k: values[k] for k in _KNOWN if k in values and values[k] is not None}
    for k, v in values.items():
        if k not in out and v is not None and k not in _KNOWN:
            out[k] = v
    return out


def bind_context(**values: Any) -> None:
    """Add fields to every record logged from this thread/task from now on (None removes a key)."""
    current = dict(_CONTEXT.get())
    current.update(values)
    _CONTEXT.set(_normalised(current))


def unbind_context(*keys: str) -> None:
    """Remove fields bound earlier; unknown keys are ignored."""
    current = _CONTEXT.get()
    if any(k in current for k in keys):
        _CONTEXT.set({k: v for k, v in current.items() if k not in keys})


def clear_context() -> None:
    """Drop every bound field in this thread/task."""
    _CONTEXT.set(_EMPTY)


@contextmanager
def request_context(**values: Any) -> Iterator[Mapping[str, Any]]:
    """Bind fields for the duration of a block, restoring the previous context on exit."""
    current = dict(_CONTEXT.get())
    current.update(values)
    token = _CONTEXT.set(_normalised(current))
    try:
        yield _CONTEXT.get()
    finally:
        try:
            _CONTEXT.reset(token)
        except ValueError:  # exited in another context (e.g. a generator finalised elsewhere)
            _CONTEXT.set(_EMPTY)


def enter_request(request_id: str) -> Token[Mapping[str, Any]]:
    """`request_context(request_id=...)` for a middleware's per-request path: no generator, and
    no re-sorting when nothing else is bound. Undo with `leave_request(token)`."""
    current = _CONTEXT.get()
    if not current:
        return _CONTEXT.set({F.REQUEST_ID: request_id})
    merged = dict(current)
    merged[F.REQUEST_ID] = request_id
    return _CONTEXT.set(_normalised(merged))


def leave_request(token: Token[Mapping[str, Any]]) -> None:
    """Restore the context `enter_request` replaced."""
    try:
        _CONTEXT.reset(token)
    except ValueError:  # left in another context (e.g. a response finalised elsewhere)
        _CONTEXT.set(_EMPTY)


def get_context() -> Mapping[str, Any]:
    """The fields currently bound (read-only; do not mutate)."""
    return _CONTEXT.get()


def _otel_ids() -> tuple[str, str] | None:
    return None


def _make_otel_lookup() -> Any:
    """Return a function giving (trace_id, span_id) of the active OpenTelemetry span, if any.

    Runs on every log call, so it reads the span straight from OpenTelemetry's current
    context (one dict lookup when no span is active) instead of the layered public API.
    """
    try:
        from opentelemetry import context as otel_context
        from opentelemetry.trace.propagation import _SPAN_KEY
    except Exception:
        return _otel_ids
    get_current = otel_context.get_current
    # The default runtime context keeps the current Context in a ContextVar; reading it
    # directly saves two Python calls per log record. Any other runtime: the public call.
    var = getattr(getattr(otel_context, "_RUNTIME_CONTEXT", None), "_current_context", None)
    if isinstance(var, ContextVar):
        get_current = var.get

    def lookup() -> tuple[str, str] | None:
        span = get_current().get(_SPAN_KEY)
        if span is None:
            return None
        ctx = span.get_span_context()
        if not ctx.is_valid:
            return None
        return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")

    return lookup


#: Resolved once; `None`-returning when OpenTelemetry is not importable.
otel_ids = _make_otel_lookup()


def snapshot() -> Mapping[str, Any]:
    """Context for one record: bound fields plus trace/span ids of an active span."""
    ctx = _CONTEXT.get()
    ids = otel_ids()
    if ids is None or F.TRACE_ID in ctx:
        return ctx
    out = dict(ctx)
    out[F.TRACE_ID], out[F.SPAN_ID] = ids
    return _normalised(out)
