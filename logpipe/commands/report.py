"""`logpipe report FILES…`: a one-shot summary (terminal tables, --json contract, --html page)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from logpipe.tail.files import expand_inputs


@click.command("report")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (stable contract) on stdout.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True),
              help="Also write a self-contained HTML page with charts to this file.")
@click.option("--format", "fmt", default="auto", show_default=True,
              help="Log format (auto, json, combined, common, access_text, uvicorn, python, ...).")
@click.option("--tz", default="UTC", show_default=True, help="Time zone of naive timestamps (IANA name).")
@click.option("--service", default="", help="service for records that carry none.")
@click.option("--top", "top_n", default=10, show_default=True, help="Slowest requests / top errors to list.")
@click.option("--max-routes", default=1000, show_default=True, help="Route cap per method (rest -> {other}).")
def command(files: tuple[str, ...], as_json: bool, html_path: str | None, fmt: str, tz: str, service: str,
            top_n: int, max_routes: int) -> None:
    """Summarise access/app logs: rates, status codes, per-route latency, slowest requests, errors.

    Gzipped and rotated files work (a rotated set is read oldest first).
    """
    from logpipe.metrics.report import build_report

    paths = expand_inputs(list(files))
    if not paths:
        raise click.ClickException(f"no input files match: {' '.join(files)}")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise click.ClickException(f"no such file: {missing[0]}")
    total = sum(os.path.getsize(p) for p in paths)
    err = Console(stderr=True)
    progress = Progress(TextColumn("[bold]reading"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                        console=err, transient=True, disable=not err.is_terminal)
    with progress:
        task = progress.add_task("read", total=total)
        try:
            report = build_report([str(p) for p in paths], fmt=fmt, tz=tz, service=service,
                                  max_routes_per_method=max_routes, top_n=top_n,
                                  progress=lambda _f, n: progress.advance(task, n))
        except ValueError as exc:  # unknown format or time zone
            raise click.ClickException(str(exc)) from None
    if html_path:
        from logpipe.metrics.render_html import render_html

        Path(html_path).write_text(render_html(report), encoding="utf-8")
        err.print(f"wrote {html_path}")
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    else:
        from logpipe.metrics.render_terminal import render_terminal

        render_terminal(report)
