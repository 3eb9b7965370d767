"""`logpipe tail`: follow log files, parse, enrich and deliver them with checkpoints."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from logpipe.config import Config, ConfigError, InputConfig, apply_env, load_config

if TYPE_CHECKING:
    from logpipe.ship.base import Sink

log = logging.getLogger("logpipe")


def setup_cli_logging() -> None:
    """Warnings as one readable line each on stderr (never a traceback for bad input).

    Only a handler is added (its level is WARNING): the `logpipe` logger's own level and
    propagation stay as they are, so a service that runs a command in-process keeps its
    `logpipe.access` / `logpipe.request` records flowing to its own handlers."""
    root = logging.getLogger("logpipe")
    if not any(getattr(h, "_logpipe_cli", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.addFilter(lambda record: not record.name.startswith(("logpipe.access", "logpipe.request")))
        handler.setFormatter(logging.Formatter("logpipe: %(levelname)s: %(message)s"))
        handler._logpipe_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        if root.getEffectiveLevel() > logging.WARNING:
            root.setLevel(logging.WARNING)


def build_config(config_file: str | None, paths: tuple[str, ...], *, sink: str | None = None,
                 fmt: str | None = None, tz: str | None = None, checkpoint: str | None = None) -> Config:
    """TOML (if any), then the LOGPIPE_* environment over it, then command-line flags.

    The environment is applied whether or not there is a file, after the sink flag (an
    http(s):// sink takes the LOGPIPE_ES_* variables); no flag here feeds a setting that a
    variable also feeds, so the order flag > environment > file holds."""
    cfg = load_config(config_file, env=False) if config_file else Config()
    if paths:
        template = cfg.inputs[0] if cfg.inputs else InputConfig()
        cfg.inputs = [InputConfig(paths=list(paths), exclude=list(template.exclude), format=template.format,
                                  tz=template.tz, service=template.service, tags=list(template.tags),
                                  multiline=template.multiline)]
    for inp in cfg.inputs:
        if fmt:
            inp.format = fmt
        if tz:
            inp.tz = tz
    if sink:
        cfg.sink.url = sink
        cfg.sink.urls = []  # the flag wins over the file's node list
    if checkpoint:
        cfg.pipeline.checkpoint_path = checkpoint
    apply_env(cfg)
    return cfg


def validate_inputs(cfg: Config, source: str | None = None) -> None:
    """Fail at start, in one line, on a bad format, time zone or multi-line pattern; `source`:
    the config file the inputs came from (named in the error)."""
    from logpipe.parse import make_parser
    from logpipe.parse.multiline import MultilineJoiner

    if not cfg.inputs or not any(inp.paths for inp in cfg.inputs):
        raise ConfigError("no inputs: give PATHS or [[inputs]] paths in --config")
    for i, inp in enumerate(cfg.inputs):
        try:
            make_parser("raw" if inp.format == "auto" else inp.format, tz=inp.tz, service=inp.service)
            MultilineJoiner(inp.multiline, "raw")
        except ValueError as exc:
            where = f"{source}: inputs[{i}]" if source else "inputs"
            raise ConfigError(f"{where} {inp.paths}: {exc}") from None


def optional_stages(cfg: Config, stats: Any, stop_event: threading.Event | None = None, *,
                    metrics: bool = True) -> tuple[Any, Any]:
    """The metrics tap and throttle, when configured and built (other modules; optional).
    Raises ConfigError/ValueError for their bad settings (port in use, bad rule file).
    `metrics=False` leaves the tap out (`--no-metrics`)."""
    tap = throttle = None
    try:
        from logpipe.metrics.runtime import start_metrics
    except ImportError:
        if cfg.metrics.addr:
            log.warning("metrics are not available in this build; --metrics-addr ignored")
    else:
        tap = start_metrics(cfg, stats) if metrics else None
    if cfg.throttle.enabled:
        try:
            from logpipe.ship.throttle import GroupThrottle
        except ImportError:
            log.warning("the throttle stage is not available in this build; throttle ignored")
        else:
            try:
                throttle = GroupThrottle(cfg.throttle, stop_event=stop_event)
            except Exception:
                if tap is not None and hasattr(tap, "close"):
                    tap.close()
                raise
    return tap, throttle


def install_signals(stop: Any) -> None:
    """SIGTERM/SIGINT stop the pipeline gracefully (a second one abandons sink retries).

    The handler only starts a thread: taking locks inside a signal handler could deadlock
    with the interrupted main thread holding the same lock."""

    def handler(*_: Any) -> None:
        threading.Thread(target=stop, name="logpipe-stop", daemon=True).start()

    if threading.current_thread() is not threading.main_thread():
        return  # embedded in another program's thread: its owner handles signals
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


@click.command("tail")
@click.argument("paths", nargs=-1)
@click.option("--sink", "sink_url",
              help="'-' (stdout), null: (discard, acknowledged), file:DIR (default file:logpipe-archive), forward://, http(s)://")
@click.option("--format", "fmt", help="auto | json | python | python_short | access_text | common | combined | uvicorn | raw")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML config file.")
@click.option("--once", is_flag=True, help="Read what is there now, deliver it, exit.")
@click.option("--checkpoint", help="Checkpoint file (default .logpipe/checkpoints.json).")
@click.option("--reset-checkpoint", is_flag=True, help="Forget saved offsets and start over.")
@click.option("--tz", help="Time zone of naive timestamps (IANA name).")
@click.option("--metrics-addr", help="host:port for /metrics and /healthz.")
@click.option("--dashboard", is_flag=True, help="Also serve the live dashboard (/) and /api/v1/summary on --metrics-addr.")
@click.option("--alerts", "alerts_file", type=click.Path(dir_okay=False), help="TOML file of alert rules.")
@click.option("--tag", "tag_template", help="Forward tag template, e.g. logpipe.{service}.{kind}.")
@click.option("--no-scrub", is_flag=True, help="Do not scrub PII in the tailer.")
@click.option("--no-metrics", is_flag=True, help="Run without the metrics tap (no metric records or alerts).")
def command(paths: tuple[str, ...], sink_url: str | None, fmt: str | None, config_file: str | None,
            once: bool, checkpoint: str | None, reset_checkpoint: bool, tz: str | None,
            metrics_addr: str | None, alerts_file: str | None, tag_template: str | None,
            no_scrub: bool, dashboard: bool, no_metrics: bool) -> None:
    """Follow PATHS (files and globs), parse, and deliver records with checkpoints."""
    setup_cli_logging()
    code = run_tail(paths, sink_url=sink_url, fmt=fmt, config_file=config_file, once=once,
                    checkpoint=checkpoint, reset_checkpoint=reset_checkpoint, tz=tz,
                    metrics_addr=metrics_addr, alerts_file=alerts_file, tag_template=tag_template,
                    no_scrub=no_scrub, dashboard=dashboard, no_metrics=no_metrics)
    sys.exit(code)


def run_tail(paths: tuple[str, ...], *, sink_url: str | None = None, fmt: str | None = None,
             config_file: str | None = None, once: bool = False, checkpoint: str | None = None,
             reset_checkpoint: bool = False, tz: str | None = None, metrics_addr: str | None = None,
             alerts_file: str | None = None, tag_template: str | None = None,
             no_scrub: bool = False, dashboard: bool = False, no_metrics: bool = False) -> int:
    """The tail command without click: returns the exit code."""
    from logpipe.enrich import Enricher, load_scrubber
    from logpipe.pipeline import Pipeline
    from logpipe.ship.base import SinkConfigError
    from logpipe.ship.factory import make_sink
    from logpipe.stages import PipelineStats
    from logpipe.status import StatusLine
    from logpipe.tail.checkpoint import CheckpointError, CheckpointStore
    from logpipe.tail.source import TailFront

    store = None
    try:
        cfg = build_config(config_file, paths, sink=sink_url, fmt=fmt, tz=tz, checkpoint=checkpoint)
        if metrics_addr:
            cfg.metrics.addr = metrics_addr
        if dashboard:
            cfg.metrics.dashboard = True
        if alerts_file:
            cfg.alerts.file = alerts_file
        if tag_template:
            cfg.sink.tag = tag_template
        if no_scrub:
            cfg.scrub.enabled = False
        validate_inputs(cfg, config_file)
        scrubber = load_scrubber(cfg.scrub)
        store = CheckpointStore(cfg.pipeline.checkpoint_path, reset=reset_checkpoint)
        sink = make_sink(cfg.sink)
        stats = PipelineStats()
        stopping = threading.Event()
        tap, throttle = optional_stages(cfg, stats, stopping, metrics=not no_metrics)
    except (ConfigError, CheckpointError, SinkConfigError, ValueError, RuntimeError, OSError) as exc:
        if store is not None:
            store.close()
        click.echo(f"logpipe tail: {exc}", err=True)
        return 2
    if not sink_reachable(sink, once=once, command="tail"):
        store.close()
        if tap is not None and hasattr(tap, "close"):
            tap.close()
        return 1
    front = TailFront(cfg, stats, store=store, once=once)
    pipeline = Pipeline(cfg, front, sink, stats=stats, tap=tap, throttle=throttle,
                        enricher=Enricher(cfg.pipeline.host, scrubber))

    def stop() -> None:
        stopping.set()
        pipeline.stop()

    install_signals(stop)
    # No status line when records themselves go to the same terminal.
    records_on_tty = cfg.sink.url.strip() == "-" and sys.stdout.isatty()
    status = StatusLine(stats, sink.describe()).start() if StatusLine.wanted() and not records_on_tty else None
    try:
        code = pipeline.run()
    finally:
        if status is not None:
            status.stop()
        store.close()
        if tap is not None and hasattr(tap, "close"):
            tap.close()
    if code:
        click.echo(f"logpipe tail: delivery failed: {pipeline.error or 'stopped before delivering everything'}",
                   err=True)
    click.echo(summary(stats, sink.describe()), err=True)  # --once, and follow mode stopped by a signal
    return code


def sink_reachable(sink: Sink, *, once: bool, command: str, wait_s: float = 30.0) -> bool:
    """Check a networked sink at start. A long-running sidecar says what is wrong and waits
    (the sink retries with backoff); a one-shot run gives up after a bounded wait instead."""
    problem = sink.check_connection(timeout_s=wait_s if once else 3.0)
    if problem is None:
        return True
    if once:
        click.echo(f"logpipe {command}: {problem} (gave up after {wait_s:.0f}s)", err=True)
        return False
    click.echo(f"logpipe {command}: {problem}; waiting for it (records stay in the log files meanwhile)", err=True)
    return True


def summary(stats: Any, target: str) -> str:
    """One line for the end of a --once run: what was read, delivered, dropped, skipped."""
    derived = stats.derived
    delivered = f"{stats.delivered - derived:,} log records"
    if derived:
        delivered += f" + {derived:,} metric records (event.kind)"
    parts = [f"{stats.lines_read:,} lines read", f"{delivered} delivered to {target}"]
    if stats.duplicates:
        parts.append(f"{stats.duplicates:,} already present (same _id)")
    if stats.parse_failures:
        parts.append(f"{stats.parse_failures:,} unparsed (tagged _parse_failure)")
    if stats.encode_failures:
        parts.append(f"{stats.encode_failures:,} in the safe form (tagged _encode_failure)")
    for reason, n in sorted(stats.dropped.items()):
        parts.append(f"{n:,} dropped ({reason})")
    if stats.skipped_files:
        parts.append(f"{len(stats.skipped_files)} files skipped")
    return "logpipe tail: " + ", ".join(parts) + rerouted_note(stats)


def rerouted_note(stats: Any) -> str:
    """`; 3 requests retried on other nodes (1 of 3 down)` for a sink with several nodes."""
    nodes = dict(stats.sink_nodes)
    if len(nodes) < 2 and not stats.sink_rerouted:
        return ""
    down = sum(1 for up in nodes.values() if not up)
    return (f"; {stats.sink_rerouted:,} requests retried on other nodes"
            + (f" ({down} of {len(nodes)} down at the end)" if down else ""))
