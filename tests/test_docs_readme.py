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
