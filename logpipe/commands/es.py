"""`logpipe es ...` (TODO: being built)."""

import click


@click.group("es")
def command() -> None:
    """Elasticsearch administration."""
