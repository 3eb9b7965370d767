"""`logpipe es setup`: install the index template (+ ILM policy where available)."""

from __future__ import annotations

import click
from elastic_transport import TransportError

from elasticsearch import ApiError
from logpipe.config import ConfigError, SinkConfig, load_config
from logpipe.es.client import (
    Masker,
    build_client,
    describe_error,
    describe_transport_error,
    mask_url,
)
from logpipe.es.connect import command_options
from logpipe.es.setup import SetupError, load_assets, run_setup


@click.group("es")
def command() -> None:
    """Elasticsearch administration."""


@command.command("setup")
@click.option("--es", "url", default=None,
              show_default="$LOGPIPE_ES_URL, else the --config sink (url or urls), else http://localhost:9200",
              help="Elasticsearch URL, or several nodes comma-separated. Credentials: "
                   "LOGPIPE_ES_USERNAME/LOGPIPE_ES_PASSWORD or LOGPIPE_ES_API_KEY.")
@click.option("--shards", type=click.IntRange(min=1), default=None,
              help="Primary shards per index (default: the config's index_shards, else 1).")
@click.option("--replicas", type=click.IntRange(min=0), default=None,
              help="Replicas per index (default: the config's index_replicas, else auto_expand_replicas 0-1, "
                   "green on a single node).")
@click.option("--ca-file", default="", help="CA bundle for TLS verification (or LOGPIPE_ES_CA_FILE).")
@click.option("--insecure", is_flag=True, help="Skip TLS verification (never in production).")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Directory with index-template.json, ilm-policy.json, kibana-objects.ndjson (default: the ones shipped with logpipe).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Sidecar TOML: its [sink] (when Elasticsearch) gives the URL(s), credentials, index_shards, index_replicas.")
def setup(url: str | None, shards: int | None, replicas: int | None, ca_file: str, insecure: bool,
          directory: str | None, config_file: str | None) -> None:
    """Install the logpipe index template and ILM policy, idempotently."""
    try:
        assets = load_assets(directory)
    except SetupError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        opts = command_options(url, ca_file_flag=ca_file, insecure=insecure, config_file=config_file)
        sink = load_config(config_file).sink if config_file else SinkConfig()
        shards = shards if shards is not None else sink.index_shards
        replicas = replicas if replicas is not None else sink.index_replicas
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    masker = Masker(opts.resolved().secrets() + opts.secrets())
    shown = mask_url(opts.url)
    client = build_client(opts)
    try:
        steps = run_setup(client, assets, shards=shards, replicas=replicas)
    except ApiError as exc:
        raise click.ClickException(f"Elasticsearch at {shown}: {describe_error(exc, masker)}") from None
    except TransportError as exc:
        raise click.ClickException(f"cannot reach Elasticsearch at {shown}: {describe_transport_error(exc, masker)}") from None
    finally:
        client.close()
    changed = 0
    for step in steps:
        line = f"{step.kind} {step.name}: {step.status}"
        if step.detail:
            line += f" ({step.detail})"
        click.echo(line)
        changed += step.status in ("created", "updated")
    click.echo(f"{shown}: {changed} change(s)" if changed else f"{shown}: already up to date, no changes")
