"""The sidecar's configuration: one schema for TOML files, CLI flags and the docs.

Every TOML key is a dataclass field below, with its default and a one-line help text in
`metadata["help"]`. `load_config` rejects unknown keys and wrong types, naming the key and
the file. `LOGPIPE_*` environment variables override the file (`apply_env`), and command-line
flags override both.
The README's configuration reference is generated from this module
(`python -m logpipe.config --markdown`), so it cannot drift.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints


class ConfigError(ValueError):
    """A configuration problem, with the file and key in the message."""


def _f(default: Any, help: str, *, secret: bool = False, env: str | None = None) -> Any:
    meta = {"help": help, "secret": secret, "env": env}
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class MultilineConfig:
    start_pattern: str = _f("", "Regex a new event's first line matches; empty = built-in rules (Python tracebacks join the record before them).")
    max_lines: int = _f(500, "Most lines joined into one event; the rest start new events (tagged _multiline_capped).")
    max_bytes: int = _f(262_144, "Most bytes joined into one event.")
    timeout_s: float = _f(1.0, "Flush a pending multi-line event after this much quiet.")


@dataclass
class InputConfig:
    paths: list[str] = _f([], "Files and globs to follow (e.g. 'logs/*.log').")
    exclude: list[str] = _f([], "Globs to leave alone (e.g. '*.gz' is always skipped when tailing).")
    format: str = _f("auto", "auto | json | python | python_short | access_text | common | combined | uvicorn | raw.")
    tz: str = _f("UTC", "Time zone of naive timestamps in these files (IANA name).")
    service: str = _f("", "service for records that carry none (e.g. nginx logs).")
    tags: list[str] = _f([], "Extra tags added to every record from these files.")
    read_from_head: bool = _f(False, "Also read compressed generations this sidecar never saw that are older "
                              "than its checkpoint (by default skipped, counted and logged).")
    multiline: MultilineConfig = field(default_factory=MultilineConfig, metadata={"help": "Multi-line joining."})


@dataclass
class PipelineConfig:
    checkpoint_path: str = _f(".logpipe/checkpoints.json", "Durable offsets, advanced only for acknowledged records.")
    batch_max_records: int = _f(2000, "Records per batch handed to the sink.")
    batch_max_wait_s: float = _f(0.5, "Send a partial batch after this long.")
    inflight_max_batches: int = _f(8, "Batches read ahead of the sink's acks (backpressure window).")
    inflight_max_bytes: int = _f(64 * 1024 * 1024, "Bytes read ahead of the sink's acks (backpressure window).")
    max_line_bytes: int = _f(1_048_576, "Longer lines are truncated and tagged _truncated.")
    read_chunk_bytes: int = _f(1_048_576, "Bytes read from one file per turn (fairness between files).")
    poll_interval_s: float = _f(0.25, "Stat-poll period when file events are unavailable.")
    reconcile_interval_s: float = _f(5.0, "Periodic stat pass so a missed file event never stalls a file.")
    rotate_wait_s: float = _f(5.0, "Keep reading a rotated-away file this long after its last growth.")
    host: str = _f("", "host field; default: this machine's hostname.")


@dataclass
class SinkConfig:
    url: str = _f("file:logpipe-archive", "'-' (stdout), null: (discard, acknowledged), file:DIR (archive), forward://h:24224, forwards://h:24224 (TLS), http(s)://h:9200 (Elasticsearch; several nodes comma-separated).")
    urls: list[str] = _f([], "Several destinations used instead of url: Elasticsearch nodes of one cluster (round robin over live ones), or active forward servers load balanced by weight ('forward://h:24224?weight=60').")
    standby: list[str] = _f([], "Forward: standby servers tried when the primary fails (out_forward style).")
    tag: str = _f("logpipe.{service}.{kind}", "Forward: tag template; kind = access | error | app | metric | alert.")
    shared_key: str = _f("", "Forward: HELO/PING shared key.", secret=True, env="LOGPIPE_FLUENTD_SHARED_KEY")
    username: str = _f("", "Forward user auth or Elasticsearch basic auth user.", env="LOGPIPE_USERNAME")
    password: str = _f("", "Forward user auth or Elasticsearch basic auth password.", secret=True, env="LOGPIPE_PASSWORD")
    api_key: str = _f("", "Elasticsearch API key (id:key or encoded).", secret=True, env="LOGPIPE_ES_API_KEY")
    ca_file: str = _f("", "CA bundle for TLS verification.")
    cert_file: str = _f("", "Client certificate (mutual TLS).")
    key_file: str = _f("", "Client certificate key.")
    insecure: bool = _f(False, "Skip TLS verification (warns loudly). Never in production.")
    compress: str = _f("", "Forward: 'gzip' for CompressedPackedForward.")
    ack_timeout_s: float = _f(30.0, "Forward: resend a chunk not acknowledged within this time.")
    heartbeat_interval_s: float = _f(10.0, "Forward: idle keepalive probe period to detect dead peers.")
    index: str = _f("logpipe-{service}-%Y.%m.%d", "Elasticsearch: index pattern from the record's UTC @timestamp.")
    max_batch_bytes: int = _f(5 * 1024 * 1024, "Elasticsearch: bulk request size cap.")
    max_batch_docs: int = _f(5000, "Elasticsearch: bulk request document cap.")
    concurrency: int = _f(4, "Elasticsearch: concurrent bulk requests (a batch is split across them).")
    index_shards: int = _f(0, "Elasticsearch: primary shards per index for `es setup`'s template; 0 = the template's (1).")
    index_replicas: int = _f(-1, "Elasticsearch: replicas per index for `es setup`'s template; -1 = auto_expand_replicas 0-1 (green on one node, one replica on more).")
    deadletter_index: str = _f("logpipe-deadletter-%Y.%m.%d", "Elasticsearch: index for rejected documents.")
    deadletter_path: str = _f(".logpipe/deadletter.ndjson", "Local file for records no destination accepted.")
    schema: str = _f("logpipe", "Record field names: logpipe | ecs.")


@dataclass
class ThrottleConfig:
    enabled: bool = _f(False, "Turn the throttle stage on.")
    rate_limit: float = _f(0.0, "Global records/s across all groups; 0 = unlimited.")
    group_key: str = _f("", "Record field that names a group (e.g. workspace_id); empty = one group.")
    group_bucket_period_s: float = _f(60.0, "Length of a group's bucket period.")
    group_bucket_limit: int = _f(6000, "Records a group may pass per period.")
    group_reset_rate_s: float = _f(-1.0, "Rate/s below which a throttled group recovers early; -1 = at period end.")
    mode: str = _f("drop", "drop (count, summarise) | delay (backpressure, nothing lost).")


@dataclass
class ScrubConfig:
    enabled: bool = _f(True, "Scrub PII in the tailer too (logs from nginx etc. never were).")
    mode: str = _f("redact", "redact ([REDACTED:kind]) | pseudonym (keyed HMAC-SHA256 token).")
    key_env: str = _f("LOGPIPE_SCRUB_KEY", "Environment variable holding the pseudonym HMAC key.")
    extra_keys: list[str] = _f([], "More sensitive key names (substring, case-insensitive).")
    extra_patterns: list[str] = _f([], "More regexes whose matches are masked.")
    allow_keys: list[str] = _f([], "Keys never redacted by name.")
    mask_client_ip: bool = _f(False, "Mask the last octet / 80 bits of client_ip.")


@dataclass
class MetricsConfig:
    addr: str = _f("", "host:port for /metrics and /healthz; empty = off.")
    interval_s: float = _f(60.0, "Metric record period (event.kind=metric) into the sink; 0 = off.")
    max_routes_per_method: int = _f(1000, "Route cardinality cap; the rest fold into {other}.")
    health_max_ack_age_s: float = _f(120.0, "/healthz turns 503 when the sink has not acknowledged for this long.")
    dashboard: bool = _f(False, "Serve the live dashboard (/) and /api/v1/summary on addr; a non-loopback addr needs LOGPIPE_DASHBOARD_TOKEN.")


@dataclass
class AlertsConfig:
    file: str = _f("", "TOML file of alert rules; empty = built-in defaults.")
    enabled: bool = _f(True, "Evaluate alert rules (only when metrics are on).")
    webhook_url: str = _f("", "POST firing/resolved alerts here (Slack-compatible 'text').", secret=True, env="LOGPIPE_ALERT_WEBHOOK")


@dataclass
class Config:
    inputs: list[InputConfig] = field(default_factory=list, metadata={"help": "[[inputs]] tables."})
    pipeline: PipelineConfig = field(default_factory=PipelineConfig, metadata={"help": "Reading, batching, checkpoints."})
    sink: SinkConfig = field(default_factory=SinkConfig, metadata={"help": "Where records go."})
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig, metadata={"help": "Rate limits before the sink."})
    scrub: ScrubConfig = field(default_factory=ScrubConfig, metadata={"help": "PII scrubbing in the tailer."})
    metrics: MetricsConfig = field(default_factory=MetricsConfig, metadata={"help": "Prometheus endpoint and metric records."})
    alerts: AlertsConfig = field(default_factory=AlertsConfig, metadata={"help": "Alert rules and webhook."})


def read_toml(path: str | os.PathLike[str], what: str = "config file",
              error: type[ValueError] = ConfigError) -> dict[str, Any]:
    """Parse a TOML file; a missing file or bad syntax raises `error` naming the file."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{p}: invalid TOML: {exc}") from None


def load_config(path: str | os.PathLike[str], *, env: bool = True) -> Config:
    """Read a TOML file into a Config; unknown keys and wrong types raise ConfigError naming both.
    With `env`, the LOGPIPE_* variables are applied over it (`apply_env`)."""
    raw = read_toml(path)
    cfg = _build(Config, raw, str(Path(path)), "")
    _check_scrub_patterns(cfg, str(Path(path)))
    if env:
        apply_env(cfg)
    return cfg


def _check_scrub_patterns(cfg: Config, source: str) -> None:
    """A `[scrub]` extra pattern that Python's `re` or the core's regex engine cannot take is a
    start-up error naming the key and the file."""
    if cfg.scrub.extra_patterns:
        from logpipe.scrub import check_patterns

        try:
            check_patterns(cfg.scrub.extra_patterns, f"{source}: scrub.extra_patterns")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Build a Config from an already-parsed mapping (tests, CLI overlays)."""
    cfg = _build(Config, raw, source, "")
    apply_env(cfg)
    return cfg


#: Variables that feed an Elasticsearch connection: a `[sink]` whose url is http(s)://, and
#: `logpipe query` / `logpipe es setup`. They win over the generic sink variables.
ES_ENV: dict[str, str] = {
    "username": "LOGPIPE_ES_USERNAME",
    "password": "LOGPIPE_ES_PASSWORD",
    "ca_file": "LOGPIPE_ES_CA_FILE",
}
ES_URL_ENV = "LOGPIPE_ES_URL"


def is_es_url(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://"))


def apply_env(cfg: Config, environ: Mapping[str, str] | None = None) -> None:
    """Set each setting whose LOGPIPE_* variable is set and non-empty, over the file's value.

    Precedence is flag > environment > file: commands read the file, apply the flags that
    decide which variables matter (the sink URL), call this, then any flag for a setting
    a variable also feeds. Which variables exist is in the `env` metadata and `ES_ENV`."""
    env = os.environ if environ is None else environ
    for section in (cfg.sink, cfg.alerts):
        for f in dataclasses.fields(section):
            name = f.metadata.get("env")
            if name and env.get(name):
                setattr(section, f.name, env[name])
    if is_es_url(cfg.sink.url) or any(map(is_es_url, cfg.sink.urls)):
        for attr, name in ES_ENV.items():
            if env.get(name):
                setattr(cfg.sink, attr, env[name])


def _build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{prefix or 'top level'}' must be a table")
    hints = get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            suggestions = ", ".join(sorted(known))
            raise ConfigError(f"{source}: unknown key '{dotted}' (known here: {suggestions})")
        kwargs[key] = _convert(hints[key], value, source, dotted)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, source: str, dotted: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, dotted + ".")
    if origin is list:
        (item,) = get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{dotted}' must be a list, got {type(value).__name__}")
        return [_convert(item, v, source, f"{dotted}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{dotted}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{dotted}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: '{dotted}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{dotted}' must be a string, got {value!r}")
        return value
    return value


#: Every environment variable logpipe reads, for the docs (a test checks the code reads no other).
ENVIRONMENT_VARIABLES: dict[str, str] = {
    "LOGPIPE_SERVICE": "setup_logging: default `service` when none is passed.",
    "ENVIRONMENT": "setup_logging: default `environment`.",
    "APP_VERSION": "setup_logging: default `version`.",
    "LOGPIPE_SCRUB_KEY": "HMAC key for pseudonym scrubbing (name configurable with scrub.key_env).",
    "LOGPIPE_FLUENTD_SHARED_KEY": "Forward sink: shared key for the HELO/PING handshake.",
    "LOGPIPE_USERNAME": "Forward sink: user name for user auth.",
    "LOGPIPE_PASSWORD": "Forward sink: password for user auth.",
    "LOGPIPE_ES_URL": "`logpipe query` / `es setup`: default Elasticsearch URL.",
    "LOGPIPE_ES_USERNAME": "Elasticsearch basic auth user.",
    "LOGPIPE_ES_PASSWORD": "Elasticsearch basic auth password.",
    "LOGPIPE_ES_API_KEY": "Elasticsearch API key.",
    "LOGPIPE_ES_CA_FILE": "CA bundle for Elasticsearch TLS verification.",
    "LOGPIPE_ALERT_WEBHOOK": "Alert webhook URL (Slack-compatible JSON POST).",
    "LOGPIPE_CORE": "`off` turns the native core's JSON road off (tail/replay then parse in Python only).",
    "LOGPIPE_TEST_ES_URL": "Tests: use this Elasticsearch instead of starting scripts/elasticsearch.sh.",
    "LOGPIPE_TEST_FLUENTD": "Tests: the fluentd command the opt-in real-Fluentd suite (tests/test_real_fluentd.py) runs.",
    "LOGPIPE_DASHBOARD_TOKEN": "Live dashboard: token the page and /api/v1/* require (mandatory on a non-loopback metrics.addr).",
    "LOGPIPE_HEALTH_TOKEN": "logpipe.health: token that opens /health/detailed to non-loopback clients.",
    "LOGPIPE_CHROMIUM": "Tests: the Chromium/Chrome binary the browser tests drive.",
    "LOGPIPE_TEST_ARTIFACTS": "Tests: directory for artifacts such as dashboard screenshots.",
}


def reference_markdown() -> str:
    """Render every section and key with type, default and help: the README's reference."""
    lines: list[str] = []
    hints = get_type_hints(Config)
    for top in dataclasses.fields(Config):
        cls = hints[top.name]
        if get_origin(cls) is list:
            (cls,) = get_args(cls)
            header = f"[[{top.name}]]"
        else:
            header = f"[{top.name}]"
        lines += _section_md(cls, header, top.metadata.get("help", ""))
    lines += ["### Environment variables", "", "| variable | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in ENVIRONMENT_VARIABLES.items()]
    return "\n".join(lines) + "\n"


def _section_md(cls: type, header: str, help_text: str) -> list[str]:
    lines = [f"### `{header}`", "", help_text, "", "| key | type | default | env | meaning |", "|---|---|---|---|---|"]
    nested: list[tuple[type, str, str]] = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            nested.append((hint, f"{header.strip('[]')}.{f.name}", f.metadata.get("help", "")))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        shown = "(secret)" if f.metadata.get("secret") and default else repr(default)
        type_name = getattr(hint, "__name__", str(hint)).replace("typing.", "")
        if get_origin(hint) is list:
            type_name = f"list[{get_args(hint)[0].__name__}]"
        env = f.metadata.get("env") or ""
        help_cell = str(f.metadata.get("help", "")).replace("|", "\\|")
        env_cell = f"`{env}`" if env else ""
        lines.append(f"| `{f.name}` | {type_name} | `{shown}` | {env_cell} | {help_cell} |")
    lines.append("")
    for sub, name, sub_help in nested:
        lines += _section_md(sub, f"[{name}]", sub_help)
    return lines


if __name__ == "__main__":  # pragma: no cover - doc generation entry point
    if "--markdown" in sys.argv:
        sys.stdout.write(reference_markdown())
