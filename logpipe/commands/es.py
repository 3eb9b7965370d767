"""`logpipe es setup`: install the index template (+ ILM policy where available)."""

from __future__ import annotations

import click
from elastic_transport import TransportError

from elasticsearch import ApiError
from logpipe.config import ConfigError, SinkConfig, load_config
from logpipe.es.client import (
    EsOptions,
    Masker,
    build_client,
    describe_error,
    describe_transport_error,
    mask_url,
)
from logpipe.es.setup import SetupError, load_assets, run_setup


@click.group("es")
def command() -> None:
    """Elasticsearch administration."""


@command.command("setup")
@click.option("--es", "url", default=None,
              help="Elasticsearch URL, or several nodes comma-separated (default: the config's [sink] urls/url, "
                   "else http://localhost:9200). Credentials: LOGPIPE_ES_USERNAME/LOGPIPE_ES_PASSWORD or LOGPIPE_ES_API_KEY.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML config: [sink] urls/url, index_shards, index_replicas.")
@click.option("--shards", type=click.IntRange(min=1), default=None, help="Primary shards per index (default 1).")
@click.option("--replicas", type=click.IntRange(min=0), default=None,
              help="Replicas per index (default: auto_expand_replicas 0-1, green on a single node).")
@click.option("--ca-file", default="", help="CA bundle for TLS verification (or LOGPIPE_ES_CA_FILE).")
@click.option("--insecure", is_flag=True, help="Skip TLS verification (never in production).")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Directory with index-template.json, ilm-policy.json, kibana-objects.ndjson (default: the repo's elasticsearch/).")
def setup(url: str | None, config_file: str | None, shards: int | None, replicas: int | None,
          ca_file: str, insecure: bool, directory: str | None) -> None:
    """Install the logpipe index template and ILM policy, idempotently."""
    try:
        assets = load_assets(directory)
        sink = load_config(config_file).sink if config_file else SinkConfig(url="http://localhost:9200")
    except (SetupError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    if not url:
        url = ",".join(sink.urls) if sink.urls else sink.url
        url = url if url.startswith(("http://", "https://")) else "http://localhost:9200"
    shards = shards if shards is not None else sink.index_shards
    replicas = replicas if replicas is not None else sink.index_replicas
    opts = EsOptions(url=url, username=sink.username, password=sink.password, api_key=sink.api_key,
                     ca_file=ca_file or sink.ca_file, cert_file=sink.cert_file, key_file=sink.key_file,
                     insecure=insecure or sink.insecure, request_timeout_s=30).resolved()
    masker = Masker(opts.secrets() + EsOptions(url=url).secrets())
    shown = mask_url(url)
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
