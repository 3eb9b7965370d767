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


def test_demo_spreads_its_timestamps_over_a_realistic_period(tmp_path: Path) -> None:
    """A report of the demo shows rates over time, not a 1-second burst at thousands per second."""
    import json
    import time
    from datetime import datetime

    out = tmp_path / "logs"
    started = time.time()
    result = CliRunner().invoke(cli, ["demo", "--dir", str(out), "--count", "600"])
    assert result.exit_code == 0, result.output
    stamps = [datetime.fromisoformat(r[F.TIMESTAMP].replace("Z", "+00:00")).timestamp()
              for r in read_json_lines(out / "access.log")]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] > 0.95 * 3600 and stamps[-1] <= started  # the last hour, none in the future
    rep = CliRunner().invoke(cli, ["report", str(out / "access.log"), "--json"])
    assert rep.exit_code == 0, rep.output
    doc = json.loads(rep.stdout)
    assert 0.14 < doc["overall"]["rate_per_s"] < 0.2  # 600 requests in an hour
    assert len(doc["series"]["points"]) >= 55  # a point per minute


def test_demo_refuses_a_directory_with_files_unless_told(tmp_path: Path) -> None:
    out = tmp_path / "logs"
    runner = CliRunner()
    assert runner.invoke(cli, ["demo", "--dir", str(out), "--count", "50"]).exit_code == 0
    (out / "notes.txt").write_text("mine")
    before = (out / "access.log").read_bytes()
    again = runner.invoke(cli, ["demo", "--dir", str(out), "--count", "50"])
    assert again.exit_code != 0 and "--append" in again.output and "--clean" in again.output
    assert (out / "access.log").read_bytes() == before
    assert runner.invoke(cli, ["demo", "--dir", str(out), "--count", "50", "--append"]).exit_code == 0
    assert len(read_json_lines(out / "access.log")) == 100
    clean = runner.invoke(cli, ["demo", "--dir", str(out), "--count", "50", "--clean"])
    assert clean.exit_code == 0, clean.output
    assert len(read_json_lines(out / "access.log")) == 50 and (out / "notes.txt").read_text() == "mine"
