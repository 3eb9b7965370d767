"""`logpipe demo` (TODO: being built)."""

import click


@click.command("demo")
def command() -> None:
    """Not built yet."""
    raise click.ClickException("logpipe demo is not built yet")
