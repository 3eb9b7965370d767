"""Alert rule files: the documented keys load, mistakes are errors naming the key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpipe.config import ConfigError, from_dict
from logpipe.metrics.alerts import AlertConfigError, default_rules, load_rules
from logpipe.metrics.runtime import start_metrics
from logpipe.stages import PipelineStats

GOOD = """
[[rules]]
name = "checkout_errors"
metric = "error_rate"
window = "1m"
comparison = ">="
threshold = 0.02
for = "30s"
severity = "critical"
cooldown = "10m"
route = "/api/checkout"
method = "post"
min_count = 5

[[rules]]
name = "slow"
metric = "p99_ms"
window = 300
comparison = ">"
threshold = 2500
severity = "warning"
"""


def test_rules_load_with_units(tmp_path: Path) -> None:
    f = tmp_path / "alerts.toml"
    f.write_text(GOOD)
    a, b = load_rules(f)
    assert (a.name, a.metric, a.window_s, a.comparison, a.threshold, a.for_s, a.severity, a.cooldown_s) == (
        "checkout_errors", "error_rate", 60.0, ">=", 0.02, 30.0, "critical", 600.0)
    assert (a.route, a.method, a.min_count) == ("/api/checkout", "POST", 5)
    assert (b.window_s, b.cooldown_s, b.for_s) == (300.0, 900.0, 0.0)


def test_defaults_follow_common_practice() -> None:
    rules = {r.name: r for r in default_rules()}
    assert (rules["high_5xx_rate"].metric, rules["high_5xx_rate"].threshold,
            rules["high_5xx_rate"].window_s, rules["high_5xx_rate"].severity) == ("error_rate", 0.05, 300, "critical")
    assert (rules["slow_p95"].metric, rules["slow_p95"].threshold, rules["slow_p95"].severity) == (
        "p95_ms", 1000.0, "warning")
    assert (rules["no_access_records"].metric, rules["no_access_records"].comparison) == ("count", "<")


@pytest.mark.parametrize(("body", "needle"), [
    ('[[rules]]\nname="x"\nmetric="p95"\nthreshold=1\n', "unknown metric 'p95'"),
    ('[[rules]]\nname="x"\nmetric="p95_ms"\nthreshold=1\nwindw="5m"\n', "unknown key 'windw'"),
    ('[[rules]]\nname="x"\nmetric="p95_ms"\nthreshold=1\ncomparison="=>"\n', "unknown comparison '=>'"),
    ('[[rules]]\nname="x"\nmetric="p95_ms"\nthreshold=1\nseverity="page"\n', "unknown severity 'page'"),
    ('[[rules]]\nname="x"\nmetric="p95_ms"\nthreshold="high"\n', "'threshold' must be a number"),
    ('[[rules]]\nname="x"\nmetric="p95_ms"\nthreshold=1\nwindow="5 minutes"\n', "'window'"),
    ('[[rule]]\nname="x"\n', "unknown top-level key 'rule'"),
    ('[[rules]]\nname="x"\nmetric="count"\nthreshold=1\n[[rules]]\nname="x"\nmetric="count"\nthreshold=2\n',
     "'x' is used twice"),
])
def test_mistakes_name_the_key_and_the_file(tmp_path: Path, body: str, needle: str) -> None:
    f = tmp_path / "my-alerts.toml"
    f.write_text(body)
    with pytest.raises(AlertConfigError) as err:
        load_rules(f)
    assert needle in str(err.value)
    assert "my-alerts.toml" in str(err.value)


def test_tail_startup_reports_bad_alert_file_as_config_error(tmp_path: Path) -> None:
    f = tmp_path / "alerts.toml"
    f.write_text('[[rules]]\nname="x"\nmetric="latency"\nthreshold=1\n')
    cfg = from_dict({"alerts": {"file": str(f)}})
    with pytest.raises(ConfigError, match="unknown metric 'latency'"):
        start_metrics(cfg, PipelineStats())


def test_rule_scoped_to_a_route_and_method_sees_only_that_traffic() -> None:
    from logpipe.metrics.alerts import AlertEngine, AlertRule
    from logpipe.metrics.tap import LogMetricsTap

    now = [5_000_000.0]
    engine = AlertEngine([
        AlertRule("checkout_5xx", "error_rate", 60, ">", 0.2, route="/api/checkout", method="POST", min_count=5),
        AlertRule("site_5xx", "error_rate", 60, ">", 0.2, min_count=5),
    ])
    tap = LogMetricsTap(interval_s=0, alerts=engine, clock=lambda: now[0])
    tap.observe([{"method": "POST", "path": "/api/checkout", "status": 500 if i % 2 else 200, "duration_ms": 9.0}
                 for i in range(20)]
                + [{"method": "GET", "path": f"/items/{i}", "status": 200, "duration_ms": 3.0} for i in range(200)])
    now[0] += 6
    fired = [(a["alert.name"], a["alert.state"], a.get("route"), a.get("method")) for a in tap.drain_records()]
    assert fired == [("checkout_5xx", "firing", "/api/checkout", "POST")]  # 50% there, 10/220 site-wide
