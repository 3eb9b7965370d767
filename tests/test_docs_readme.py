"""README promises that must stay true: the two set-up commands and the generated config reference."""

from __future__ import annotations

import re
from pathlib import Path

from logpipe.config import ENVIRONMENT_VARIABLES, reference_markdown

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_config_reference_in_readme_is_the_generated_one() -> None:
    # Regenerate with: python -m logpipe.config --markdown
    assert reference_markdown().strip() in README


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    read: set[str] = set()
    for path in (REPO / "logpipe").rglob("*.py"):
        read |= set(re.findall(r"[\"'](LOGPIPE_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8")))
    undocumented = read - set(ENVIRONMENT_VARIABLES)
    assert not undocumented, f"read by the code but missing from config.ENVIRONMENT_VARIABLES: {sorted(undocumented)}"


def test_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    test_cmd = next(b.strip() for b in blocks if "pytest" in b)
    assert test_cmd in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_main_job_command_uses_existing_commands() -> None:
    from click.testing import CliRunner

    from logpipe.cli import cli

    main_job = re.findall(r"```bash\n(.*?)```", README, flags=re.S)[0].strip()
    for step in main_job.split("&&")[1:]:
        words = step.split()
        assert words[0] == "logpipe"
        result = CliRunner().invoke(cli, [words[1], "--help"])
        assert result.exit_code == 0, step


def _readme_step(step: str, cwd: Path) -> str:
    import shlex
    import subprocess
    import sys

    argv = shlex.split(step)
    assert argv[0] == "logpipe", step
    proc = subprocess.run([sys.executable, "-m", "logpipe", *argv[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{step}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_readme_main_job_ships_every_record_once_and_its_route_query_finds_requests(tmp_path: Path) -> None:
    """Run the README's main job as written (after `pip install`), then the README's route query."""
    import gzip
    from collections import Counter

    import orjson

    from logpipe import fields as F

    main_job = re.findall(r"```bash\n(.*?)```", README, flags=re.S)[0].strip()
    steps = [s.strip() for s in main_job.split("&&")[1:]]
    for step in steps:
        out = _readme_step(step, tmp_path)
    logs = tmp_path / "logs"
    lines = {p.name: [orjson.loads(x) for x in p.read_bytes().splitlines()] for p in logs.glob("*.log")}
    shipped = [orjson.loads(x) for seg in (tmp_path / "logpipe-archive").rglob("*.ndjson.gz")
               for x in gzip.decompress(seg.read_bytes()).splitlines()]
    shipped = [r for r in shipped if F.EVENT_KIND not in r]
    errors = Counter((r.get(F.REQUEST_ID), r[F.MESSAGE], r[F.TIMESTAMP]) for r in shipped
                     if r.get(F.LEVEL) == "error" and not F.is_access(r))
    assert errors and max(errors.values()) == 1, "an error was shipped twice"
    assert sum(errors.values()) == len(lines["error.log"])
    assert len(shipped) == len(lines["app.log"]) + len(lines["access.log"])
    assert "5,000" in out  # the report counts the demo's 5,000 requests

    query = next(line for line in README.splitlines() if line.startswith("logpipe query 'route:") and "--archive" in line)
    found = [orjson.loads(x) for x in _readme_step(query + " --json --limit 100000", tmp_path).splitlines()]
    route = re.search(r'route:"([^"]+)"', query).group(1)  # type: ignore[union-attr]
    want = [r for r in lines["access.log"] if r.get(F.ROUTE) == route]
    assert want and len([r for r in found if F.EVENT_KIND not in r]) == len(want)
