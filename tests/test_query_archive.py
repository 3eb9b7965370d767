"""`logpipe query --archive DIR`: the same query syntax over archived gzip NDJSON segments."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from click.testing import CliRunner

from logpipe.cli import cli


def _write_segment(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        for rec in records:
            fh.write(orjson.dumps(rec) + b"\n")


def _archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    day1 = [{"@timestamp": f"2026-11-23T23:59:{i:02d}.000000Z", "level": "info", "service": "api",
             "message": f"old request {i}", "request_id": "req-b", "status": 200, "log_offset": i}
            for i in range(5)]
    day2 = [{"@timestamp": f"2026-11-24T10:00:{i:02d}.000000Z", "level": "error" if i % 3 == 0 else "info",
             "service": "api", "message": f"request {i} finished", "request_id": "req-a" if i < 4 else "req-b",
             "status": 500 + i if i % 3 == 0 else 200, "route": "/api/v1/users/{id}", "log_offset": 100 + i}
            for i in range(10)]
    _write_segment(root / "2026-11-23" / "api-000001.ndjson.gz", day1)
    _write_segment(root / "2026-11-24" / "api-000001.ndjson.gz", day2[:5])
    _write_segment(root / "2026-11-24" / "api-000002.ndjson.gz", day2[5:])
    (root / "2026-11-24" / "api-000003.ndjson.gz").write_bytes(gzip.compress(b"{not json\n"))
    return root


def _json_lines(output: str) -> list[dict]:
    return [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_archive_query_filters_and_sorts_newest_first(tmp_path: Path) -> None:
    root = _archive(tmp_path)
    res = CliRunner().invoke(cli, ["query", "status:>=500 AND level:error", "--archive", str(root), "--json"])
    assert res.exit_code == 0, res.output
    hits = _json_lines(res.output)
    assert [h["status"] for h in hits] == [509, 506, 503, 500]


def test_archive_query_phrase_wildcard_and_not(tmp_path: Path) -> None:
    root = _archive(tmp_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["query", '"request 7 finished"', "--archive", str(root), "--json"])
    assert [h["log_offset"] for h in _json_lines(res.output)] == [107]
    res = runner.invoke(cli, ["query", 'route:"/api/v1/users/{id}" AND NOT level:error AND status:[200 TO 299]',
                              "--archive", str(root), "--json", "--limit", "3", "--fields", "log_offset"])
    assert _json_lines(res.output) == [{"log_offset": 108}, {"log_offset": 107}, {"log_offset": 105}]


def test_archive_request_story_in_order_across_days_and_segments(tmp_path: Path) -> None:
    root = _archive(tmp_path)
    res = CliRunner().invoke(cli, ["query", "--request-id", "req-b", "--archive", str(root), "--json"])
    offsets = [h["log_offset"] for h in _json_lines(res.output)]
    assert offsets == [0, 1, 2, 3, 4, 104, 105, 106, 107, 108, 109]


def test_archive_time_window_skips_other_days(tmp_path: Path) -> None:
    root = _archive(tmp_path)
    res = CliRunner().invoke(cli, ["query", "", "--archive", str(root), "--json",
                                   "--from", "2026-11-24T00:00:00Z", "--until", "2026-11-24T10:00:02Z"])
    assert [h["log_offset"] for h in _json_lines(res.output)] == [102, 101, 100]


def test_archive_table_output_and_errors(tmp_path: Path) -> None:
    root = _archive(tmp_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["query", "level:error", "--archive", str(root)])
    assert res.exit_code == 0
    assert "request 9 finished" in res.output and "4 match(es)" in res.output
    res = runner.invoke(cli, ["query", "level:(error", "--archive", str(root)])
    assert res.exit_code != 0 and "bad query" in res.output and len(res.output.strip().splitlines()) == 1
    res = runner.invoke(cli, ["query", "x", "--archive", str(tmp_path / "missing")])
    assert res.exit_code != 0 and "does not exist" in res.output
    res = runner.invoke(cli, ["query", "x", "--archive", str(root), "--since", "1 fortnight"])
    assert res.exit_code != 0 and "invalid duration" in res.output


def test_archive_written_by_the_archive_sink_is_searchable(tmp_path: Path) -> None:
    from logpipe.config import SinkConfig
    from logpipe.ship.factory import make_sink

    sink = make_sink(SinkConfig(url=f"file:{tmp_path / 'arch'}"))
    # old records archived today (a backfill): the day directory is today's, the records are not
    recs = [{"_id": f"a{i}", "@timestamp": f"2020-01-0{1 + i}T12:00:00.000000Z", "level": "warning",
             "service": "old", "message": f"disk {90 + i}% full", "request_id": "rq"} for i in range(3)]
    sink.send(recs)
    sink.flush()
    sink.close()
    res = CliRunner().invoke(cli, ["query", "level:warning AND disk", "--archive", str(tmp_path / "arch"), "--json",
                                   "--from", "2020-01-02T00:00:00Z", "--until", "2020-01-02T23:59:59Z"])
    assert res.exit_code == 0, res.output
    assert [h["message"] for h in _json_lines(res.output)] == ["disk 91% full"]
