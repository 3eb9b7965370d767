"""deploy/sidecar.toml — the compose sidecar's config — run for real, minus Docker.

The compose file cannot run here, but its sidecar config can: the same TOML with the
container paths mapped to a temp dir and `fluentd:24224` mapped to the forward-protocol
receiver from tests/fluentd_receiver.py (written from the spec, with the shared-key
handshake). The demo service writes the logs, `logpipe tail --config ... --once` ships them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # demo/ lives at the repo root
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the forward receiver test helper

from fluentd_receiver import FluentdReceiver  # noqa: E402

from demo import traffic  # noqa: E402
from demo.app import Settings, create_app  # noqa: E402

KEY = "compose-test-shared-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[traffic.Planned], traffic.Summary]:
    """A few hundred requests through the demo service, logged the way compose's `demo` does."""
    from logpipe import shutdown_logging

    log_dir = tmp_path_factory.mktemp("logs")
    app = create_app(Settings(log_dir=str(log_dir), seed=3, error_rate=0.0, slow_rate=0.0, slow_ms=0.0,
                              service="demo-api"))
    plan = traffic.build_plan(400, seed=9, run_id="cs", burst=30, burst_at=0.4, boom_rate=0.01)
    try:
        summary = asyncio.run(traffic.drive("http://demo", plan, concurrency=8,
                                            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False)))
    finally:
        shutdown_logging()
    return log_dir, plan, summary


def _local_config(tmp: Path, log_dir: Path, port: int) -> Path:
    """deploy/sidecar.toml with only the container-specific addresses changed."""
    text = (ROOT / "deploy" / "sidecar.toml").read_text(encoding="utf-8")
    text = text.replace("/logs/", f"{log_dir}/").replace("/var/lib/logpipe/", f"{tmp}/state/")
    text = text.replace("forward://fluentd:24224", f"forward://127.0.0.1:{port}")
    text = re.sub(r'addr = "0\.0\.0\.0:9464"', f'addr = "127.0.0.1:{_free_port()}"', text)
    out = tmp / "sidecar.toml"
    out.write_text(text, encoding="utf-8")
    return out


def _tail_once(config: Path, key: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOGPIPE_FLUENTD_SHARED_KEY=key)
    return subprocess.run([sys.executable, "-m", "logpipe", "tail", "--config", str(config), "--once"],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_compose_sidecar_config_ships_every_record_once(demo_logs, tmp_path: Path) -> None:
    log_dir, plan, summary = demo_logs
    with FluentdReceiver(shared_key=KEY) as receiver:
        config = _local_config(tmp_path, log_dir, receiver.port)
        res = _tail_once(config, KEY, tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
        events = list(receiver.events)
    assert not receiver.handshake_failures
    # Log records only: metric/alert records (event.kind) ride along and are checked by the e2e test.
    logs = [e for e in events if "event.kind" not in e.record]
    records = [e.record for e in logs]
    by_kind = Counter(e.tag for e in logs)
    derived_tags = {e.tag for e in events if "event.kind" in e.record}
    assert derived_tags <= {"logpipe.demo-api.metric", "logpipe.demo-api.alert"}
    access = [r for r in records if "status" in r and "method" in r]
    # Every request once, with the status the client saw; nothing from error.log twice.
    assert Counter(r["request_id"] for r in access) == Counter(p.request_id for p in plan)
    sent = dict(summary.results)
    assert all(r["status"] == sent[r["request_id"]] for r in access)
    ids = Counter(r["_id"] for r in records)
    assert max(ids.values()) == 1, "a record was shipped twice"
    app_log_lines = (log_dir / "app.log").read_text(encoding="utf-8").count("\n")
    assert len(records) == len(access) + app_log_lines
    # Tags follow the template Fluentd routes on (logpipe.{service}.{kind}).
    assert set(by_kind) == {"logpipe.demo-api.access", "logpipe.demo-api.app", "logpipe.demo-api.error"}
    errors = [e.record for e in logs if e.tag.endswith(".error")]
    assert {str(r["exception"]["type"]).rsplit(".", 1)[-1] for r in errors} == {"UpstreamTimeout", "RuntimeError"}
    # The checkpoint lives where compose keeps its named volume.
    assert (tmp_path / "state" / "checkpoints.json").exists()
    assert json.dumps(records)  # records are plain JSON-able data


def test_a_wrong_shared_key_is_a_clear_failure(demo_logs, tmp_path: Path) -> None:
    log_dir, _plan, _summary = demo_logs
    with FluentdReceiver(shared_key=KEY) as receiver:
        config = _local_config(tmp_path, log_dir, receiver.port)
        res = _tail_once(config, "not-the-key", tmp_path)
        got = receiver.count
    assert res.returncode != 0
    assert f"127.0.0.1:{receiver.port}" in res.stderr, res.stderr[-2000:]
    assert "not-the-key" not in res.stderr, "the key must never be printed"
    assert got == 0
