"""`logpipe replay` (TODO: being built)."""

import click


@click.command("replay")
def command() -> None:
    """Not built yet."""
    raise click.ClickException("logpipe replay is not built yet")
