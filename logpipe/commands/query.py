"""`logpipe query` (TODO: being built)."""

import click


@click.command("query")
def command() -> None:
    """Not built yet."""
    raise click.ClickException("logpipe query is not built yet")
