"""Beacon body -> validated browser events; everything else becomes a counted reject reason.

Why strict: the body comes from any page (or anyone with curl). Only known event types and
fields pass, every string is capped, and identity fields in the body are ignored: user and
workspace ids come from the server-side context of the beacon request only.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

VITALS = {  # name -> (good up to, poor above): the Web Vitals thresholds
    "LCP": (2500.0, 4000.0), "FCP": (1800.0, 3000.0), "TTFB": (800.0, 1800.0),
    "INP": (200.0, 500.0), "CLS": (0.1, 0.25),
}
RATINGS = ("good", "needs-improvement", "poor")
TYPES = ("pageview", "vital", "error", "custom")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

# reject reasons (stable names: they are counted and reported)
BAD_JSON = "bad_json"
NOT_OBJECT = "not_object"
TOO_MANY_EVENTS = "too_many_events"
UNKNOWN_TYPE = "unknown_type"
BAD_FIELD = "bad_field"
TOO_LARGE = "too_large"
RATE_LIMITED = "rate_limited"
ORIGIN = "origin_not_allowed"


@dataclass
class Limits:
    max_beacon_bytes: int = 64 * 1024
    max_events: int = 50
    max_event_bytes: int = 16 * 1024
    max_message: int = 1000
    max_stack: int = 8000
    max_path: int = 1000
    max_props: int = 20
    max_prop_value: int = 200


@dataclass
class Parsed:
    page_request_id: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    rejects: Counter[str] = field(default_factory=Counter)


def rate(name: str, value: float) -> str:
    good, poor = VITALS[name]
    return "good" if value <= good else ("poor" if value > poor else "needs-improvement")


def _cap(value: Any, n: int) -> str | None:
    if not isinstance(value, str):
        return None
    return value if len(value) <= n else value[:n] + "…"


def page_path(url: Any, limit: int) -> str | None:
    """Path only: query strings and fragments of page URLs often carry tokens and e-mails."""
    if not isinstance(url, str) or not url or len(url) > 4 * limit:
        return None
    try:
        path = urlsplit(url).path or "/"
    except ValueError:
        return None
    return path[:limit] if path.startswith("/") else None


def parse_beacon(body: bytes, limits: Limits) -> Parsed:
    """Validate one beacon: `{"rid": page request id, "events": [...]}`."""
    out = Parsed(None)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        out.rejects[BAD_JSON] += 1
        return out
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        out.rejects[NOT_OBJECT] += 1
        return out
    rid = doc.get("rid")
    if isinstance(rid, str) and REQUEST_ID.match(rid):
        out.page_request_id = rid
    events = doc["events"]
    if len(events) > limits.max_events:
        out.rejects[TOO_MANY_EVENTS] += len(events) - limits.max_events
        events = events[:limits.max_events]
    for raw in events:
        ev, reason = _event(raw, limits)
        if ev is None:
            out.rejects[reason] += 1
        else:
            out.events.append(ev)
    return out


def _event(raw: Any, limits: Limits) -> tuple[dict[str, Any] | None, str]:
    if not isinstance(raw, dict):
        return None, NOT_OBJECT
    kind = raw.get("type")
    if kind not in TYPES:
        return None, UNKNOWN_TYPE
    if len(orjson.dumps(raw)) > limits.max_event_bytes:
        return None, TOO_LARGE
    path = page_path(raw.get("url"), limits.max_path)
    if path is None:
        return None, BAD_FIELD
    ev: dict[str, Any] = {"type": kind, "path": path}
    if kind == "vital":
        name, value = raw.get("name"), raw.get("value")
        if name not in VITALS or not isinstance(value, int | float) or isinstance(value, bool) \
                or not math.isfinite(value) or value < 0 or value > 3.6e6:
            return None, BAD_FIELD
        ev.update(name=name, value=round(float(value), 4), rating=rate(name, float(value)))
    elif kind == "error":
        message = _cap(raw.get("message"), limits.max_message)
        if not message:
            return None, BAD_FIELD
        ev.update(message=message, error_type=_cap(raw.get("error_type"), 100) or "Error",
                  stack=_cap(raw.get("stack"), limits.max_stack) or "")
        src = raw.get("source")
        if isinstance(src, str):
            ev["source"] = page_path(src, limits.max_path) or ""
        for key in ("line", "col"):
            v = raw.get(key)
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**7:
                ev[key] = v
    elif kind == "custom":
        name = raw.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            return None, BAD_FIELD
        props = raw.get("props") or {}
        if not isinstance(props, dict) or len(props) > limits.max_props:
            return None, BAD_FIELD
        clean: dict[str, Any] = {}
        for k, v in props.items():
            if not NAME.match(k) or k in ("user_id", "workspace_id", "request_id"):
                return None, BAD_FIELD
            if isinstance(v, str):
                clean[k] = _cap(v, limits.max_prop_value)
            elif isinstance(v, bool | int | float) and (not isinstance(v, float) or math.isfinite(v)):
                clean[k] = v
            else:
                return None, BAD_FIELD
        ev.update(name=name, props=clean)
    else:  # pageview
        ref = page_path(raw.get("referrer"), limits.max_path) if raw.get("referrer") else None
        if ref:
            ev["referrer_path"] = ref
    return ev, ""
