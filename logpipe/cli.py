"""The `logpipe` command: a thin click group; each subcommand lives in logpipe/commands/."""

from __future__ import annotations

import click

from logpipe.commands import demo, es, query, replay, report, tail


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="logpipe")
def cli() -> None:
    """Structured logs for Python services: emit, tail, ship to Fluentd/Elasticsearch, report."""


for module in (demo, tail, replay, report, query, es):
    cli.add_command(module.command)


def main() -> None:
    cli(prog_name="logpipe")
