"""`logpipe report`: the --json contract, rotated + gzipped inputs, bad input, terminal tables."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import orjson
from click.testing import CliRunner

from logpipe.cli import cli
from logpipe.metrics.synth import combined_lines, json_lines, traffic

STATS_KEYS = {"count", "error_rate", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"}


def _run(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["report", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_contract_over_a_rotated_gzipped_set(tmp_path: Path) -> None:
    t = traffic(9000, seed=21)
    lines = combined_lines(t)
    # access.log.2.gz (oldest), access.log.1, access.log (newest)
    with gzip.open(tmp_path / "access.log.2.gz", "wt") as fh:
        fh.write("\n".join(lines[:3000]) + "\n")
    (tmp_path / "access.log.1").write_text("\n".join(lines[3000:6000]) + "\n")
    (tmp_path / "access.log").write_text("\n".join(lines[6000:]) + "\n")
    doc = _run(str(tmp_path / "access.log*"))

    assert [Path(f["path"]).name for f in doc["files"]] == ["access.log.2.gz", "access.log.1", "access.log"]
    assert doc["lines"] == 9000 and doc["parse_failures"] == 0
    o = doc["overall"]
    assert set(o) >= STATS_KEYS
    assert o["count"] == 9000
    assert abs(o["error_rate"] - float(np.mean(t.status >= 500))) < 1e-9
    # durations were written with ms precision in seconds ("0.042"), so compare with those
    written = np.round(t.duration_ms / 1000.0, 3) * 1000.0
    for field, q in (("p50_ms", 0.5), ("p90_ms", 0.9), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        exact = float(np.quantile(written, q, method="lower"))
        assert abs(o[field] - exact) <= 0.01 * exact, field
    assert o["max_ms"] == float(written.max())

    routes = {(r["method"], r["route"]): r for r in doc["routes"]}
    for r in doc["routes"]:
        assert STATS_KEYS | {"route", "method"} <= set(r)
    expected: dict[tuple[str, str], int] = {}
    for m, r in zip(t.methods, t.routes, strict=True):
        expected[(m, r)] = expected.get((m, r), 0) + 1
    assert {k: v["count"] for k, v in routes.items()} == expected
    totals = [r["total_ms"] for r in doc["routes"]]
    assert totals == sorted(totals, reverse=True)  # sorted by total time

    span = doc["time_span"]
    assert span["start"].startswith("2025-11-24T00:00:00") and span["seconds"] > 40
    assert sum(doc["status_codes"].values()) == 9000 and set(doc["status_codes"]) <= {"200", "404", "500"}
    slowest = doc["slowest"]
    assert len(slowest) == 10 and slowest[0]["duration_ms"] == o["max_ms"]
    pts = doc["series"]["points"]
    assert doc["series"]["bucket_s"] == 60 and sum(p["count"] for p in pts) == 9000
    assert all({"t", "rate_per_s", "error_rate", "p95_ms"} <= set(p) for p in pts)


def test_request_ids_errors_and_bad_input(tmp_path: Path) -> None:
    t = traffic(2000, seed=4)
    lines = json_lines(t)
    bad = [
        {"method": "GET", "path": "/x", "status": 200},  # no duration
        {"method": "GET", "path": "/x", "duration_ms": 5.0},  # no status: a log line, not a request
        {"method": "GET", "path": "/x", "status": 200, "duration_ms": -3},  # negative
        {"method": "GET", "path": "/x", "status": 200, "duration_ms": 200_000_000},  # > 1 day
        {"level": "error", "message": "payment failed\nTraceback...",
         "exception": {"type": "TimeoutError", "message": "gateway timed out"}},
        {"level": "error", "message": "payment failed", "exception": {"type": "TimeoutError",
                                                                        "message": "gateway timed out"}},
    ]
    lines += [orjson.dumps(b).decode() for b in bad] + ["this is not json {"]
    (tmp_path / "app.log").write_text("\n".join(lines) + "\n")
    doc = _run(str(tmp_path / "app.log"), "--top", "5")
    o = doc["overall"]
    assert o["count"] == 2003
    assert o["invalid_durations"] == 2
    assert o["latency_count"] == 2000
    assert o["max_ms"] == float(t.duration_ms.max())
    assert doc["parse_failures"] == 1
    slowest = doc["slowest"]
    assert len(slowest) == 5
    i = int(np.argmax(t.duration_ms))
    assert slowest[0]["request_id"] == t.request_ids[i] and slowest[0]["path"] == t.paths[i].split("?")[0]
    top = doc["top_errors"]
    assert top == [{"type": "TimeoutError", "message": "gateway timed out", "count": 2}]
    http = doc["top_http_errors"]
    per_route: dict[tuple[str, str], int] = {}
    for m, r, st in zip(t.methods, t.routes, t.status.tolist(), strict=True):
        if st >= 500:
            per_route[(m, r)] = per_route.get((m, r), 0) + 1
    assert len(http) == 5 and all(e["status"] == 500 for e in http)
    assert [e["count"] for e in http] == sorted(per_route.values(), reverse=True)[:5]
    assert all(per_route[(e["method"], e["route"])] == e["count"] for e in http)
    assert doc["exceptions"] == {"TimeoutError": 2}


def test_terminal_tables_and_errors(tmp_path: Path) -> None:
    t = traffic(500, seed=2)
    (tmp_path / "a.log").write_text("\n".join(combined_lines(t)) + "\n")
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "a.log")], terminal_width=160)
    assert result.exit_code == 0, result.output
    for text in ("logpipe report", "status codes", "routes (by total time)", "/api/users/{id}",
                 "slowest requests", "p95"):
        assert text in result.output
    missing = CliRunner().invoke(cli, ["report", str(tmp_path / "nope.log")])
    assert missing.exit_code != 0 and "nope.log" in missing.output
    badfmt = CliRunner().invoke(cli, ["report", str(tmp_path / "a.log"), "--format", "xml"])
    assert badfmt.exit_code != 0 and "xml" in badfmt.output


def test_sidecar_metric_records_agree_with_report_on_the_same_requests(tmp_path: Path) -> None:
    """Kibana (metric records) and `logpipe report` must not disagree about the same traffic."""
    from logpipe.metrics.tap import LogMetricsTap
    from logpipe.parse import make_parser

    t = traffic(5000, seed=33)
    lines = json_lines(t)
    (tmp_path / "access.log").write_text("\n".join(lines) + "\n")
    doc = _run(str(tmp_path / "access.log"))

    now = [1_000_000.0]
    tap = LogMetricsTap(interval_s=60, clock=lambda: now[0])
    parse = make_parser("json")
    for i in range(0, len(lines), 700):
        tap.observe(parse(lines[i:i + 700]))
        now[0] += 3
    now[0] += 60
    metric = {(r["route"], r["method"]): r for r in tap.drain_records() if r["route"] != "*"}
    report = {(r["route"], r["method"]): r for r in doc["routes"]}
    assert set(metric) == set(report)
    for key, m in metric.items():
        r = report[key]
        assert m["count"] == r["count"]
        assert (m["p50_ms"], m["p95_ms"], m["p99_ms"], m["max_ms"]) == (r["p50_ms"], r["p95_ms"], r["p99_ms"],
                                                                         r["max_ms"]), key


def test_log_content_is_printed_literally_not_as_rich_markup(tmp_path: Path) -> None:
    lines = [orjson.dumps(r).decode() for r in (
        {"@timestamp": "2025-11-24T00:00:00.000000Z", "method": "GET", "path": "/x/[/]/[bold]y",
         "status": 500, "duration_ms": 12.0, "request_id": "[red]rid"},
        {"@timestamp": "2025-11-24T00:00:01.000000Z", "level": "error", "message": "bad [/i] thing",
         "exception": {"type": "[link=x]Err", "message": "[/]"}},
    )]
    (tmp_path / "weird.log").write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "weird.log")], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "/x/[/]/[bold]y" in result.output and "[red]rid" in result.output
    assert "[link=x]Err" in result.output


def test_report_over_all_demo_logs_counts_each_request_once(tmp_path: Path) -> None:
    """`report 'logs/*.log'` (app and error logs beside the access log) counts the access log's
    requests, not the error records that name a request's method and path, in any file order."""
    logs = tmp_path / "logs"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(logs), "--count", "600"])
    assert result.exit_code == 0, result.output
    access = [orjson.loads(x) for x in (logs / "access.log").read_bytes().splitlines()]
    errors = [orjson.loads(x) for x in (logs / "error.log").read_bytes().splitlines()]
    assert any("method" in r and "status" not in r for r in errors)  # the case that was counted twice
    doc = _run(str(logs / "*.log"))
    assert doc["overall"]["count"] == len(access) == 600
    assert sum(doc["status_codes"].values()) == 600
    assert doc["levels"].get("error", 0) >= len([r for r in errors if "status" not in r])
