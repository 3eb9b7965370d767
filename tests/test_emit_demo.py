"""`logpipe demo` writes realistic, scrubbed, valid JSON logs."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from emit_support import read_json_lines

from logpipe import fields as F
from logpipe.cli import cli
from logpipe.commands.demo import CARDS, CUSTOMERS


def test_demo_writes_all_three_files(tmp_path: Path) -> None:
    out = tmp_path / "logs"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(out), "--count", "400"])
    assert result.exit_code == 0, result.output
    assert "wrote 400 requests" in result.output
    access = read_json_lines(out / "access.log")
    app = read_json_lines(out / "app.log")
    errors = read_json_lines(out / "error.log")
    assert len(access) == 400
    assert {r[F.STATUS] for r in access} >= {200, 404, 500}
    assert all(F.ROUTE not in r or r[F.ROUTE] for r in access)
    assert all(r[F.REQUEST_ID] and r[F.USER_ID].startswith("u-") for r in access)
    durations = sorted(r[F.DURATION_MS] for r in access)
    assert durations[len(durations) // 2] > 1 and durations[-1] > 100  # realistic spread, with a tail
    assert errors and all(r[F.LEVEL] == "error" for r in errors)
    assert any("Traceback" in r.get(F.EXCEPTION, {}).get("stack", "") for r in errors)
    assert any(r[F.LEVEL] == "warning" for r in app)
    text = "".join(p.read_text() for p in out.glob("*.log"))
    for secret in (*CUSTOMERS, *CARDS, "hunter2", "4111111111111111"):
        assert secret not in text
    assert "[REDACTED:email]" in text and "[REDACTED:card]" in text


def test_demo_reports_unwritable_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "f"
    blocker.write_text("")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(blocker / "x"), "--count", "1"])
    assert result.exit_code != 0 and str(blocker / "x") in result.output
