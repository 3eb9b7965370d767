"""`logpipe replay`: send archived or rotated log files through the same pipeline again."""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from logpipe import fields
from logpipe.commands.tail import (
    build_config,
    install_signals,
    rerouted_note,
    setup_cli_logging,
    sink_reachable,
)
from logpipe.config import Config, ConfigError, InputConfig, PipelineConfig

# A backfill has everything to read at once: bigger batches mean fewer, bigger bulk requests
# (cheaper per document for both this process and Elasticsearch, and fewer per-batch
# barriers where the sink waits for its slowest part). Used only where the config left the
# tailer's defaults, with the in-flight window shrunk to hold about as many records as before.
REPLAY_BATCH_RECORDS = 8000


def tune_for_backfill(cfg: Config) -> None:
    """Bigger batches for an Elasticsearch replay unless the config chose a batch size."""
    p, default = cfg.pipeline, PipelineConfig()
    url = cfg.sink.urls[0] if cfg.sink.urls else cfg.sink.url
    if not url.startswith(("http://", "https://")) or p.batch_max_records != default.batch_max_records:
        return
    p.batch_max_records = REPLAY_BATCH_RECORDS
    if p.inflight_max_batches == default.inflight_max_batches:
        window = default.inflight_max_batches * default.batch_max_records
        p.inflight_max_batches = max(2, window // REPLAY_BATCH_RECORDS)


def parse_bound(value: str | None, name: str) -> str | None:
    """An ISO-8601 time (naive = UTC) as the record format's `@timestamp` string."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{name} {value!r} is not an ISO-8601 time (e.g. 2026-11-20T00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_filter(since: str | None, until: str | None) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None:
    """Keep records with since <= @timestamp < until (records without a time are left out)."""
    if since is None and until is None:
        return None
    lo = since or ""
    hi = until or "\uffff"
    key = fields.TIMESTAMP

    def keep(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if isinstance(ts := r.get(key), str) and lo <= ts < hi]

    return keep


@click.command("replay")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--sink", "sink_url", help="'-' (stdout), file:DIR, forward://, http(s)://")
@click.option("--since", help="Only records at or after this time (ISO-8601, naive = UTC).")
@click.option("--until", help="Only records before this time.")
@click.option("--rate", type=float, default=0.0, help="At most this many records per second.")
@click.option("--format", "fmt", help="Format of plain log files (default: auto).")
@click.option("--tz", help="Time zone of naive timestamps (IANA name).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML config (sink, scrub, ...).")
@click.option("--no-scrub", is_flag=True, help="Do not scrub PII.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def command(inputs: tuple[str, ...], sink_url: str | None, since: str | None, until: str | None,
            rate: float, fmt: str | None, tz: str | None, config_file: str | None, no_scrub: bool,
            progress: bool | None) -> None:
    """Replay INPUTS (files, .gz, archive directories, globs) oldest first into a sink."""
    setup_cli_logging()
    sys.exit(run_replay(inputs, sink_url=sink_url, since=since, until=until, rate=rate, fmt=fmt, tz=tz,
                        config_file=config_file, no_scrub=no_scrub, progress=progress))


def run_replay(inputs: tuple[str, ...], *, sink_url: str | None = None, since: str | None = None,
               until: str | None = None, rate: float = 0.0, fmt: str | None = None, tz: str | None = None,
               config_file: str | None = None, no_scrub: bool = False, progress: bool | None = None) -> int:
    from logpipe.commands.tail import validate_inputs
    from logpipe.enrich import Enricher, load_scrubber
    from logpipe.pipeline import Pipeline
    from logpipe.ship.base import SinkConfigError
    from logpipe.ship.factory import make_sink
    from logpipe.stages import PipelineStats
    from logpipe.tail.replay import ReplayFront, replay_files

    try:
        cfg = build_config(config_file, (), sink=sink_url)
        template = cfg.inputs[0] if cfg.inputs else InputConfig()
        inp = InputConfig(paths=list(inputs), format=fmt or template.format, tz=tz or template.tz,
                          service=template.service, tags=list(template.tags), multiline=template.multiline)
        cfg.inputs = [inp]
        if no_scrub:
            cfg.scrub.enabled = False
        tune_for_backfill(cfg)
        validate_inputs(cfg)
        lo, hi = parse_bound(since, "--since"), parse_bound(until, "--until")
        if rate < 0:
            raise ConfigError("--rate must be positive")
        files = replay_files(list(inputs))
        if not files:
            raise ConfigError(f"nothing to replay: no files match {' '.join(inputs)}")
        scrubber = load_scrubber(cfg.scrub)
        sink = make_sink(cfg.sink)
    except (ConfigError, SinkConfigError, ValueError, RuntimeError) as exc:
        click.echo(f"logpipe replay: {exc}", err=True)
        return 2
    if not sink_reachable(sink, once=True, command="replay"):
        return 1
    stats = PipelineStats()
    chunk = cfg.pipeline.read_chunk_bytes if not rate else max(4096, min(cfg.pipeline.read_chunk_bytes, int(rate * 30)))
    front = ReplayFront(cfg, files, stats, inp, chunk_bytes=chunk)
    pipeline = Pipeline(cfg, front, sink, stats=stats, record_filter=time_filter(lo, hi), rate=rate,
                        enricher=Enricher(cfg.pipeline.host, scrubber))
    install_signals(pipeline.stop)
    show = progress if progress is not None else sys.stderr.isatty()
    bar = _ProgressBar(front, stats, sink.describe()) if show else None
    try:
        code = pipeline.run()
    finally:
        if bar is not None:
            bar.stop()
    dropped = stats.dropped.get("filter", 0)
    click.echo(f"logpipe replay: {stats.delivered:,} records from {len(files)} files to {sink.describe()}"
               + (f", {stats.duplicates:,} already present (same _id)" if stats.duplicates else "")
               + (f" ({dropped:,} outside --since/--until)" if dropped else "") + rerouted_note(stats), err=True)
    if code:
        click.echo(f"logpipe replay: delivery failed: {pipeline.error}", err=True)
    return code


class _ProgressBar:
    """rich progress: bytes read (with ETA) and records delivered, refreshed from a thread."""

    def __init__(self, front: Any, stats: Any, target: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.front = front
        self.stats = stats
        self.progress = Progress(
            TextColumn(f"replay → {target}"), BarColumn(), DownloadColumn(),
            TextColumn("{task.fields[records]} records"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=False,
        )
        self.task = self.progress.add_task("replay", total=max(1, front.total_bytes), records="0")
        self.progress.start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _update(self) -> None:
        self.progress.update(self.task, completed=self.front.done_bytes, records=f"{self.stats.delivered:,}")

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self._update()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._update()
        self.progress.stop()
