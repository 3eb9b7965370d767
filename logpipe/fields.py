"""The record schema: every field name logpipe writes, in one place.

Emit, tail, metrics and sinks import names from here so that a rename is one edit.
`ECS_MAP` gives the Elastic Common Schema rendering of the same fields.
"""

from __future__ import annotations

from typing import Any

TIMESTAMP = "@timestamp"
LEVEL = "level"
LOGGER = "logger"
MESSAGE = "message"
SERVICE = "service"
ENVIRONMENT = "environment"
VERSION = "version"
HOST = "host"
PID = "pid"

REQUEST_ID = "request_id"
USER_ID = "user_id"
WORKSPACE_ID = "workspace_id"
TRACE_ID = "trace_id"
SPAN_ID = "span_id"

METHOD = "method"
PATH = "path"
ROUTE = "route"
STATUS = "status"
DURATION_MS = "duration_ms"
CLIENT_IP = "client_ip"
USER_AGENT = "user_agent"
BYTES = "bytes"

EXCEPTION = "exception"  # {"type", "message", "stack"}

# Added by the tailer: where a record came from, and its deterministic id.
ID = "_id"
SOURCE_ID = "_source_id"  # an `_id` the input carried (not from our archive): kept, never used as the id
LOG_FILE = "log_file"
LOG_OFFSET = "log_offset"
TAGS = "tags"  # list of markers such as "_parse_failure", "_invalid_utf8", "_truncated"
EVENT_KIND = "event.kind"  # "metric" | "alert" for derived records, "browser" for page events; absent on log records

TAG_PARSE_FAILURE = "_parse_failure"
TAG_INVALID_UTF8 = "_invalid_utf8"
TAG_TRUNCATED = "_truncated"
TAG_MULTILINE_CAPPED = "_multiline_capped"
TAG_ENCODE_FAILURE = "_encode_failure"  # reduced to the safe form (logpipe.safeform)

CONTEXT_FIELDS: tuple[str, ...] = (REQUEST_ID, USER_ID, WORKSPACE_ID, TRACE_ID, SPAN_ID)
ACCESS_FIELDS: tuple[str, ...] = (METHOD, PATH, ROUTE, STATUS, DURATION_MS, CLIENT_IP, USER_AGENT, BYTES)

#: Keys in the order a rendered record lists them; anything else follows in insertion order.
FIELD_ORDER: tuple[str, ...] = (
    TIMESTAMP, LEVEL, LOGGER, MESSAGE, SERVICE, ENVIRONMENT, VERSION, HOST, PID,
    *CONTEXT_FIELDS,
    *ACCESS_FIELDS,
)

#: logpipe field -> dotted ECS field. Fields not listed go under `labels.` (scalars) as ECS advises.
ECS_MAP: dict[str, str] = {
    TIMESTAMP: "@timestamp",
    LEVEL: "log.level",
    LOGGER: "log.logger",
    MESSAGE: "message",
    SERVICE: "service.name",
    ENVIRONMENT: "service.environment",
    VERSION: "service.version",
    HOST: "host.hostname",
    PID: "process.pid",
    REQUEST_ID: "http.request.id",
    USER_ID: "user.id",
    WORKSPACE_ID: "organization.id",
    TRACE_ID: "trace.id",
    SPAN_ID: "span.id",
    METHOD: "http.request.method",
    PATH: "url.path",
    ROUTE: "http.route",
    STATUS: "http.response.status_code",
    DURATION_MS: "event.duration_ms",
    CLIENT_IP: "client.ip",
    USER_AGENT: "user_agent.original",
    BYTES: "http.response.body.bytes",
    EXCEPTION: "error",
}

ERROR_LEVELS = frozenset({"error", "critical", "fatal", "alert", "emergency"})


def is_access(record: dict[str, Any]) -> bool:
    """One request's record: it has both `method` and `status` (what the middleware and the
    access-log parsers write). An error record that names the request's method and path is not
    one: counting it would count the request twice."""
    return STATUS in record and METHOD in record


def record_kind(record: dict[str, Any]) -> str:
    """Classify a record as access / error / app (or metric / alert for derived records).

    Used for Fluentd tags (`logpipe.{service}.{kind}`) and index routing; computed on demand
    so it never has to be stored.
    """
    derived = record.get(EVENT_KIND)
    if derived:
        return str(derived)
    if is_access(record):
        return "access"
    if str(record.get(LEVEL, "")).lower() in ERROR_LEVELS:
        return "error"
    return "app"


def ordered(record: dict[str, Any]) -> dict[str, Any]:
    """Return `record` with the schema's fields first, in FIELD_ORDER, the rest after."""
    out: dict[str, Any] = {}
    for key in FIELD_ORDER:
        if key in record:
            out[key] = record[key]
    for key, value in record.items():
        if key not in out:
            out[key] = value
    return out


def to_ecs(record: dict[str, Any]) -> dict[str, Any]:
    """Render a logpipe record with ECS field names (nested objects), same values."""
    out: dict[str, Any] = {"ecs": {"version": "8.11.0"}}
    for key, value in record.items():
        target = ECS_MAP.get(key)
        if target is None:
            if key.startswith("_") or key == TAGS:
                out[key] = value
                continue
            target = f"labels.{key}" if not isinstance(value, dict | list) else key
        if key == EXCEPTION and isinstance(value, dict):
            value = {"type": value.get("type"), "message": value.get("message"),
                     "stack_trace": value.get("stack")}
        _set_dotted(out, target, value)
    return out


def _set_dotted(out: dict[str, Any], dotted: str, value: Any) -> None:
    if dotted == "@timestamp":
        out[dotted] = value
        return
    parts = dotted.split(".")
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


# Derived records written by the metrics tap (event.kind = "metric" | "alert").
KIND_METRIC = "metric"
KIND_ALERT = "alert"
METRIC_COUNT = "count"
METRIC_RATE = "rate_per_s"
METRIC_STATUS_4XX = "status_4xx"
METRIC_STATUS_5XX = "status_5xx"
METRIC_ERROR_RATE = "error_rate"  # share of requests with a status that answered 5xx
METRIC_P50 = "p50_ms"
METRIC_P90 = "p90_ms"
METRIC_P95 = "p95_ms"
METRIC_P99 = "p99_ms"
METRIC_MAX = "max_ms"
METRIC_WINDOW_S = "window_s"
METRIC_INVALID_DURATIONS = "invalid_durations"
ALERT_NAME = "alert.name"
ALERT_STATE = "alert.state"  # "firing" | "resolved"
ALERT_SEVERITY = "severity"
ALERT_VALUE = "value"
ALERT_THRESHOLD = "threshold"

# Page events from logpipe.browser (event.kind = "browser"). Meaning: one event a page reported
# (page view, Web Vital, JavaScript error, custom event), logged by the service's beacon endpoint.
# Tags: kind "browser" (`logpipe.{service}.browser`); files and indices: browser.log and
# `logpipe-browser-*`, never the service's app/access indices; metrics: not traffic (the tap
# skips every event.kind), so a JavaScript error counts in a page-side error rate, never in the
# server's 5xx rate or error-log counts. request_id is the page load's; user_id/workspace_id come
# only from the server-side context of the beacon request.
KIND_BROWSER = "browser"
BROWSER_TYPE = "browser.type"  # "pageview" | "vital" | "error" | "custom"
PAGE_PATH = "page.path"  # path only: query strings and fragments are never kept
PAGE_ROUTE = "page.route"  # normalised template of page.path
PAGE_REFERRER = "page.referrer_path"
VITAL_NAME = "vital.name"  # LCP | CLS | INP | FCP | TTFB
VITAL_VALUE = "vital.value"  # ms (CLS: unitless score)
VITAL_RATING = "vital.rating"  # good | needs-improvement | poor (Web Vitals thresholds)
CUSTOM_NAME = "custom.name"
CUSTOM_PROPS = "custom.props"
