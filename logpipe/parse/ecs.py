"""ECS-shaped JSON logs (ecs-logging, logpipe's own `schema="ecs"`) → logpipe field names.

The inverse of `fields.to_ecs`, driven by the same `ECS_MAP`, so a record rendered as ECS
and read back is the record it was. ECS fields may arrive nested (`{"log": {"level": ..}}`)
or as dotted top-level keys (`"log.level"`); both are accepted. Fields we have no name for
stay where they are; `labels.*` become plain fields again.
"""

from __future__ import annotations

from typing import Any

from logpipe import fields as F

_MISSING = object()
_INVERSE: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (ecs, ours, tuple(ecs.split(".")))
    for ours, ecs in F.ECS_MAP.items()
    if ecs not in (F.TIMESTAMP, F.MESSAGE)
)


def looks_ecs(rec: dict[str, Any]) -> bool:
    """ECS documents announce themselves with `ecs.version`."""
    return "ecs" in rec or "ecs.version" in rec


def _take(node: dict[str, Any], parts: tuple[str, ...]) -> Any:
    """Remove and return the value at a nested path, pruning dicts it leaves empty."""
    head = parts[0]
    if len(parts) == 1:
        return node.pop(head, _MISSING)
    child = node.get(head)
    if not isinstance(child, dict):
        return _MISSING
    value = _take(child, parts[1:])
    if value is not _MISSING and not child:
        del node[head]
    return value


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        out[prefix] = value


def from_ecs(rec: dict[str, Any]) -> dict[str, Any]:
    """Map an ECS document to logpipe names (the caller then normalises time and level)."""
    src = rec
    src.pop("ecs", None)
    src.pop("ecs.version", None)
    found: dict[str, Any] = {}
    for dotted, ours, parts in _INVERSE:
        if dotted in src:
            found[ours] = src.pop(dotted)
            continue
        value = _take(src, parts)
        if value is not _MISSING:
            found[ours] = value
    error = found.get(F.EXCEPTION)
    if isinstance(error, dict):
        found[F.EXCEPTION] = {"type": error.get("type"), "message": error.get("message"),
                              "stack": error.get("stack_trace", error.get("stack"))}
    labels = src.pop("labels", None)
    extra: dict[str, Any] = {}
    if isinstance(labels, dict):
        _flatten("", labels, extra)
    elif labels is not None:
        extra["labels"] = labels
    for key in found:
        if key in src:  # e.g. host.ip left behind in a host object: keep it as dotted keys
            _flatten(key, src.pop(key), src)
    out: dict[str, Any] = {}
    if F.TIMESTAMP in src:
        out[F.TIMESTAMP] = src.pop(F.TIMESTAMP)
    for key in F.FIELD_ORDER:
        if key in found:
            out[key] = found.pop(key)
        elif key == F.MESSAGE and key in src:
            out[key] = src.pop(key)
    out.update(found)
    for key, value in src.items():
        out[key] = value
    for key, value in extra.items():
        out.setdefault(key, value)
    return out
