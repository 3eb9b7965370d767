"""`logpipe query`: search Elasticsearch (or the local archive) with Lucene query syntax."""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from typing import Any

import click
import orjson
from elastic_transport import TransportError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from elasticsearch import ApiError
from logpipe.config import ConfigError
from logpipe.es.archive_search import search_archive
from logpipe.es.client import (
    Masker,
    build_client,
    describe_error,
    describe_transport_error,
    mask_url,
)
from logpipe.es.connect import command_options
from logpipe.es.lucene import QuerySyntaxError, get_field
from logpipe.es.search import DEFAULT_INDEX, follow, request_story, search
from logpipe.es.timerange import time_window
from logpipe.fields import DURATION_MS, LEVEL, MESSAGE, REQUEST_ID, ROUTE, SERVICE, STATUS, TIMESTAMP

KEY_FIELDS = (REQUEST_ID, STATUS, ROUTE, DURATION_MS)
NO_WRAP = frozenset({TIMESTAMP, LEVEL, SERVICE, STATUS, DURATION_MS})
LEVEL_STYLES = {"debug": "dim", "info": "green", "warning": "yellow", "warn": "yellow",
                "error": "red", "critical": "bold red", "fatal": "bold red"}


@click.command("query")
@click.argument("query", required=False, default="")
@click.option("--es", "url", default=None, show_default="$LOGPIPE_ES_URL, else the --config sink, else http://localhost:9200",
              help="Elasticsearch URL. Credentials: LOGPIPE_ES_USERNAME/LOGPIPE_ES_PASSWORD or LOGPIPE_ES_API_KEY.")
@click.option("--index", default=DEFAULT_INDEX, show_default=True, help="Index pattern to search.")
@click.option("--since", default=None, help="Only records newer than this (30s, 15m, 1h, 2d).")
@click.option("--from", "start", default=None, help="Start time (ISO-8601, now-1h, 1h).")
@click.option("--until", default=None, help="End time (ISO-8601, now-5m).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1_000_000), help="Most hits shown.")
@click.option("--fields", default="", help="Comma-separated fields to show (table columns / JSON keys).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit instead of a table.")
@click.option("--request-id", default=None, help="One request's records across indices, in order.")
@click.option("--follow", is_flag=True, help="Keep polling for new matches until Ctrl-C.")
@click.option("--interval", default=2.0, show_default=True, type=float, help="Seconds between --follow polls.")
@click.option("--max-polls", default=None, type=int, hidden=True, help="Stop --follow after N polls (tests).")
@click.option("--archive", "archive", default=None, type=click.Path(), help="Search this local archive directory instead.")
@click.option("--ca-file", default="", help="CA bundle for TLS verification (or LOGPIPE_ES_CA_FILE).")
@click.option("--insecure", is_flag=True, help="Skip TLS verification (never in production).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Sidecar TOML: its [sink] (when Elasticsearch) gives the URL and credentials.")
def command(query: str, url: str, index: str, since: str | None, start: str | None, until: str | None,
            limit: int, fields: str, as_json: bool, request_id: str | None, follow: bool, interval: float,
            max_polls: int | None, archive: str | None, ca_file: str, insecure: bool,
            config_file: str | None) -> None:
    """Search logs: `logpipe query 'level:error AND workspace_id:ws-42' --since 1h`.

    Lucene query-string syntax (field:value, "phrases", wildcards, AND/OR/NOT, status:>=500,
    [a TO b]); bare words search `message`. Newest first, except --request-id (in order).
    """
    wanted = [f.strip() for f in fields.split(",") if f.strip()]
    try:
        lower, upper = time_window(since, start, until)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    out = _Output(wanted, as_json)
    if archive:
        if follow:
            raise click.UsageError("--follow needs Elasticsearch, not --archive")
        try:
            res = search_archive(archive, query, lower=lower, upper=upper, limit=limit,
                                 request_id=request_id, oldest_first=bool(request_id))
        except QuerySyntaxError as exc:
            raise click.ClickException(f"bad query: {exc}") from None
        except FileNotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        out.show(res.records, f"{len(res.records)} match(es) in {res.files} file(s), {res.lines} line(s) read")
        return
    try:
        opts = command_options(url, ca_file_flag=ca_file, insecure=insecure, config_file=config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    url = opts.url
    masker = Masker(opts.resolved().secrets() + opts.secrets())
    client = build_client(opts)
    try:
        if request_id:
            hits = request_story(client, request_id, index=index, limit=limit)
            out.show([h.source for h in hits], f"{len(hits)} record(s) for request {request_id}")
        elif follow:
            _follow(client, query, index, interval, max_polls, out, lower)
        else:
            hits = search(client, query, index=index, lower=lower, upper=upper, limit=limit)
            out.show([h.source for h in hits], f"{len(hits)} hit(s), newest first")
    except ApiError as exc:
        raise click.ClickException(f"Elasticsearch at {mask_url(url)}: {describe_error(exc, masker)}") from None
    except TransportError as exc:
        raise click.ClickException(f"cannot reach Elasticsearch at {mask_url(url)}: "
                                   f"{describe_transport_error(exc, masker)}") from None
    finally:
        client.close()


def _follow(client: Any, query: str, index: str, interval: float, max_polls: int | None, out: _Output,
            start: datetime | None) -> None:
    """Stream matches (from --since/--from when given, else from now) until Ctrl-C."""
    stop = threading.Event()
    try:
        for hit in follow(client, query, index=index, interval_s=interval, stop=stop, max_polls=max_polls,
                          start=start):
            out.stream(hit.source)
    except KeyboardInterrupt:
        stop.set()


class _Output:
    """Renders hits as a rich table or NDJSON."""

    def __init__(self, fields: list[str], as_json: bool) -> None:
        self.fields = fields
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=False)
        if not self.console.is_terminal:  # pipes and CI logs: do not squeeze into 80 columns
            self.console.width = max(self.console.width, 160)

    def _project(self, rec: dict[str, Any]) -> dict[str, Any]:
        if not self.fields:
            return rec
        return {f: get_field(rec, f) for f in self.fields if get_field(rec, f) is not None}

    def _columns(self, records: list[dict[str, Any]]) -> list[str]:
        if self.fields:
            return [TIMESTAMP, *[f for f in self.fields if f != TIMESTAMP]]
        extra = [f for f in KEY_FIELDS if any(f in r for r in records)]
        return [TIMESTAMP, LEVEL, SERVICE, MESSAGE, *extra]

    def show(self, records: list[dict[str, Any]], summary: str) -> None:
        if self.as_json:
            for rec in records:
                sys.stdout.buffer.write(orjson.dumps(self._project(rec), option=orjson.OPT_APPEND_NEWLINE))
            sys.stdout.flush()
            return
        if not records:
            self.console.print("no matches", style="dim")
            return
        cols = self._columns(records)
        table = Table(show_header=True, header_style="bold", expand=False)
        for c in cols:
            table.add_column("time" if c == TIMESTAMP else c, overflow="fold",
                             max_width=80 if c == MESSAGE else None, no_wrap=c in NO_WRAP)
        for rec in records:
            table.add_row(*[self._cell(rec, c) for c in cols])
        self.console.print(table)
        self.console.print(summary, style="dim")

    def stream(self, rec: dict[str, Any]) -> None:
        if self.as_json:
            sys.stdout.buffer.write(orjson.dumps(self._project(rec), option=orjson.OPT_APPEND_NEWLINE))
            sys.stdout.flush()
            return
        cols = self._columns([rec])
        line = Text()
        for i, c in enumerate(cols):
            if i:
                line.append("  ")
            cell = self._cell(rec, c)
            line.append(cell if isinstance(cell, Text) else str(cell))
        self.console.print(line)

    def _cell(self, rec: dict[str, Any], col: str) -> Text | str:
        value = get_field(rec, col)
        if value is None:
            return ""
        if col == TIMESTAMP and isinstance(value, str) and len(value) >= 23:
            return value[:23].replace("T", " ")  # millisecond precision reads better in a table
        if col == LEVEL:
            return Text(str(value), style=LEVEL_STYLES.get(str(value).lower(), ""))
        if col == STATUS and isinstance(value, int):
            return Text(str(value), style="red" if value >= 500 else "yellow" if value >= 400 else "")
        if isinstance(value, dict | list):
            return orjson.dumps(value).decode()
        return str(value)
