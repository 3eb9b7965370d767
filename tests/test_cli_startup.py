"""`logpipe --version` and `logpipe tail --help` start without the heavy libraries.

Start-up time is what a newcomer notices first; it is measured in bench/bench_startup.py.
Here the mechanism is tested: commands are imported lazily, so the ES client, structlog,
rich and numpy stay out of the process until a command that needs them runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("elasticsearch", "structlog", "rich", "numpy")

PROBE = """
import json, sys
from logpipe.cli import cli
try:
    cli(args=sys.argv[1:], prog_name="logpipe")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy})), file=sys.stderr)
"""


def _modules_loaded(*argv: str) -> tuple[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=set(HEAVY)), *argv], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--version"], ["tail", "--help"], ["replay", "--help"]])
def test_light_invocations_import_no_heavy_library(argv: list[str]) -> None:
    out, loaded = _modules_loaded(*argv)
    assert out.strip(), "the command printed nothing"
    assert loaded == [], f"logpipe {' '.join(argv)} imported {loaded}"


def test_every_command_is_still_listed_and_runs() -> None:
    from click.testing import CliRunner

    from logpipe.cli import cli

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in ("demo", "tail", "replay", "report", "query", "es"):
        assert f"  {name} " in result.output
        sub = CliRunner().invoke(cli, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
