"""README "The sidecar" promises held end to end: the config example, config errors, /metrics and /healthz."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from logpipe.config import load_config

REPO = Path(__file__).resolve().parents[1]
LOGPIPE = [sys.executable, "-m", "logpipe"]


def _readme_sidecar_toml() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("A sidecar config", 1)[1]
    return re.search(r"```toml\n(.*?)```", section, flags=re.S).group(1)


def test_readme_sidecar_toml_example_is_a_valid_config(tmp_path: Path) -> None:
    conf = tmp_path / "sidecar.toml"
    conf.write_text(_readme_sidecar_toml())
    cfg = load_config(conf, env=False)
    assert cfg.inputs[0].paths == ["/var/log/app/*.log"] and cfg.inputs[0].format == "auto"
    assert cfg.sink.url == "forward://fluentd:24224" and cfg.sink.tag == "logpipe.{service}.{kind}"
    assert cfg.throttle.enabled and cfg.throttle.group_key == "workspace_id"
    assert cfg.throttle.group_bucket_limit == 6000 and cfg.metrics.addr == "0.0.0.0:9464"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(LOGPIPE + args, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_config_errors_name_the_file_the_key_and_a_wrong_type(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[[inputs]]\npaths = ["x.log"]\nformatt = "json"\n')
    wrong_type = tmp_path / "wrong_type.toml"
    wrong_type.write_text('[[inputs]]\npaths = ["x.log"]\n[sink]\nmax_batch_docs = "many"\n')
    for conf, key in ((unknown, "inputs[0].formatt"), (wrong_type, "sink.max_batch_docs")):
        proc = _run(["tail", "--config", str(conf), "--once"], tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert conf.name in proc.stderr and key in proc.stderr, proc.stderr
    assert "integer" in proc.stderr and "many" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_metrics_addr_flag_serves_healthz_and_counts_encode_failures(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    # a non-string level: delivered in the safe form, counted as an encode failure
    log.write_text('{"message": "fine"}\n{"message": "level poison", "level": 2.5}\n')
    port = _free_port()
    proc = subprocess.Popen(
        LOGPIPE + ["tail", str(log), "--sink", "-", "--metrics-addr", f"127.0.0.1:{port}",
                   "--checkpoint", str(tmp_path / "cp.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=tmp_path,
    )
    try:
        failures = delivered = 0.0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and delivered < 2:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                _code, body = _get(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                time.sleep(0.2)
                continue
            fams = {f.name: sum(s.value for s in f.samples) for f in text_string_to_metric_families(body.decode())}
            delivered = fams.get("logpipe_records_delivered", 0.0)
            failures = fams.get("logpipe_records_encode_failures", 0.0)
            if delivered < 2:
                time.sleep(0.2)
        assert delivered >= 2 and failures == 1
        code, health = _get(f"http://127.0.0.1:{port}/healthz")
        assert code == 200 and json.loads(health)["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_tail_and_replay_help_never_show_secrets_from_the_environment(monkeypatch) -> None:
    from click.testing import CliRunner

    from logpipe.cli import cli

    secrets = {"LOGPIPE_FLUENTD_SHARED_KEY": "EnvShared1!", "LOGPIPE_PASSWORD": "EnvPassw0rd!",
               "LOGPIPE_ES_PASSWORD": "EnvEsPass1!", "LOGPIPE_ES_API_KEY": "key-id:EnvApiKey!",
               "LOGPIPE_SCRUB_KEY": "EnvScrubKey1!", "LOGPIPE_ES_URL": "http://u:UrlSecret1@127.0.0.1:1"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    for args in (["tail", "--help"], ["replay", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and "--sink" in result.output
        for secret in ("EnvShared1!", "EnvPassw0rd!", "EnvEsPass1!", "EnvApiKey!", "EnvScrubKey1!", "UrlSecret1"):
            assert secret not in result.output, (args, secret)
