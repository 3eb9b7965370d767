"""`logpipe tail` (TODO: being built)."""

import click


@click.command("tail")
def command() -> None:
    """Not built yet."""
    raise click.ClickException("logpipe tail is not built yet")
