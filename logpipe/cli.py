"""The `logpipe` command: a thin click group; each subcommand lives in logpipe/commands/.

Subcommands are imported only when they run (or their help is shown): `query` pulls in the
Elasticsearch client and rich, `demo` the emit stack, and `logpipe --version` or
`logpipe tail --help` should pay for none of that.
"""

from __future__ import annotations

import importlib

import click

#: command name -> module under logpipe.commands whose `command` attribute implements it.
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "tail": "tail",
    "replay": "replay",
    "report": "report",
    "query": "query",
    "es": "es",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module on first use of that subcommand."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self._lazy:
            module = importlib.import_module(f"logpipe.commands.{self._lazy[cmd_name]}")
            command = module.command
            if not isinstance(command, click.Command):
                raise TypeError(f"logpipe.commands.{self._lazy[cmd_name]}.command is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="logpipe")
def cli() -> None:
    """Structured logs for Python services: emit, tail, ship to Fluentd/Elasticsearch, report."""


def main() -> None:
    cli(prog_name="logpipe")
