"""`logpipe report` (TODO: being built)."""

import click


@click.command("report")
def command() -> None:
    """Not built yet."""
    raise click.ClickException("logpipe report is not built yet")
