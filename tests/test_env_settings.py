"""Every LOGPIPE_* variable of the README's table reaches the server, on every command that has
the setting it feeds (`tail`, `replay`, `query`, `es setup`), with and without `--config`.

Precedence is flag > environment > file: each `--config` case puts a wrong value for the
variable's setting in the file, so only a run where the environment wins succeeds. The
checks are what a server sees: the forward handshake of tests/fluentd_receiver.py (shared
key, user auth), the Authorization header and TLS handshake at a loopback stand-in for
Elasticsearch, the request reaching the URL, the pseudonyms the scrub key makes.
Not here: LOGPIPE_SERVICE / ENVIRONMENT / APP_VERSION feed setup_logging only (tests in
test_emit_records.py), and LOGPIPE_TEST_ES_URL is the tests' own."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fake_es import EsHandler
from fluentd_receiver import FluentdReceiver, make_test_pki
from fluentd_receiver import TestPKI as Pki

from logpipe.config import ENVIRONMENT_VARIABLES

REPO = Path(__file__).resolve().parents[1]
DEAD_URL = "http://127.0.0.1:9"  # discard port: nothing listens on loopback
LINES = [{"@timestamp": "2026-11-24T07:15:27.000000Z", "level": "error", "service": "envtest",
          "message": f"line {i} from alice@example.com"} for i in range(3)]


class FakeES:
    """Just enough Elasticsearch for the four commands; 401 unless the expected credentials came."""

    def __init__(self, expect_auth: str = "", tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[str, str, str]] = []  # method, path, Authorization header
        fake = self

        class Handler(EsHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                auth = self.headers.get("authorization", "")
                path = self.path.split("?", 1)[0]
                fake.requests.append((self.command, path, auth))
                if expect_auth and auth != expect_auth:
                    self._reply(401, {"error": {"type": "security_exception", "reason": "unable to authenticate"},
                                      "status": 401})
                elif path.endswith("/_bulk"):
                    n = len(raw.splitlines()) // 2
                    self._reply(200, {"errors": False, "items": [{"create": {"status": 201}}] * n})
                elif self.command == "GET" and path.startswith(("/_ilm/policy/", "/_index_template/")):
                    self._reply(404, {"error": {"type": "resource_not_found_exception", "reason": "none"},
                                      "status": 404})
                elif path.endswith("/_search"):
                    self._reply(200, {"took": 1, "timed_out": False,
                                      "hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}})
                else:
                    self._reply(200, {"acknowledged": True, "status": "green"})

            do_GET = do_PUT = do_POST = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pki, Pki]:
    """The server's CA and an unrelated one (the wrong value a config file holds)."""
    return (make_test_pki(str(tmp_path_factory.mktemp("pki-right")), "right"),
            make_test_pki(str(tmp_path_factory.mktemp("pki-wrong")), "wrong"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "app.log").write_text("".join(json.dumps(r) + "\n" for r in LINES))
    return tmp_path


def logpipe(cwd: Path, args: list[str], env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run the CLI with no LOGPIPE_* variable but `env` (the developer's own must not leak in)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "logpipe", *args], cwd=cwd, env={**base, **env},
                          capture_output=True, text=True, timeout=timeout)


def toml(values: dict[str, str]) -> str:
    return "[sink]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def command_args(command: str, url: str | None, config: Path | None) -> list[str]:
    """The command line: the target URL as a flag without a config file, else from the file."""
    where = ["--config", str(config)] if config else (["--es" if command in ("query", "es setup") else "--sink", url]
                                                      if url else [])
    if command == "tail":
        return ["tail", "app.log", "--once", "--checkpoint", "cp.json", *where]
    if command == "replay":
        return ["replay", "app.log", "--no-progress", *where]
    if command == "query":
        return ["query", "level:error", "--json", *where]
    return ["es", "setup", *where]


def run_case(cwd: Path, command: str, url: str, env: dict[str, str], file_values: dict[str, str] | None,
             ) -> subprocess.CompletedProcess[str]:
    """With `file_values`, a --config file holds the sink URL and those (wrong) values."""
    config = None
    if file_values is not None:
        config = cwd / "sidecar.toml"
        config.write_text(toml({"url": url, **file_values}))
    return logpipe(cwd, command_args(command, url, config), env)


# -- the forward handshake: shared key and user auth --------------------------------------------

FORWARD_VARS = {"LOGPIPE_FLUENTD_SHARED_KEY": "shared_key", "LOGPIPE_USERNAME": "username",
                "LOGPIPE_PASSWORD": "password"}
FORWARD_RIGHT = {"LOGPIPE_FLUENTD_SHARED_KEY": "sk-right", "LOGPIPE_USERNAME": "bob", "LOGPIPE_PASSWORD": "pw-right"}


@pytest.mark.parametrize("with_config", [False, True], ids=["env-only", "env-over-config"])
@pytest.mark.parametrize("command", ["tail", "replay"])
@pytest.mark.parametrize("var", sorted(FORWARD_VARS))
def test_forward_variable_reaches_the_handshake(var: str, command: str, with_config: bool, workdir: Path) -> None:
    with FluentdReceiver(shared_key="sk-right", users={"bob": "pw-right"}) as rx:
        file_values = {FORWARD_VARS[var]: "wrong-" + FORWARD_RIGHT[var]} if with_config else None
        proc = run_case(workdir, command, f"forward://127.0.0.1:{rx.port}", FORWARD_RIGHT, file_values)
        assert proc.returncode == 0, proc.stderr
        assert rx.wait_for(len(LINES), timeout=10), (rx.handshake_failures, proc.stderr)
        assert not rx.handshake_failures
        assert sorted(r["message"][:6] for r in rx.records() if "event.kind" not in r) == ["line 0", "line 1",
                                                                                          "line 2"]


# -- Elasticsearch credentials: the Authorization header -------------------------------------------

ES_AUTH = {
    "LOGPIPE_ES_USERNAME": ("username", {"LOGPIPE_ES_USERNAME": "alice", "LOGPIPE_ES_PASSWORD": "pw-right"},
                            "Basic " + base64.b64encode(b"alice:pw-right").decode()),
    "LOGPIPE_ES_PASSWORD": ("password", {"LOGPIPE_ES_USERNAME": "alice", "LOGPIPE_ES_PASSWORD": "pw-right"},
                            "Basic " + base64.b64encode(b"alice:pw-right").decode()),
    "LOGPIPE_ES_API_KEY": ("api_key", {"LOGPIPE_ES_API_KEY": "kid:ksecret"},
                           "ApiKey " + base64.b64encode(b"kid:ksecret").decode()),
}
ES_COMMANDS = ["tail", "replay", "query", "es setup"]


@pytest.mark.parametrize("with_config", [False, True], ids=["env-only", "env-over-config"])
@pytest.mark.parametrize("command", ES_COMMANDS)
@pytest.mark.parametrize("var", sorted(ES_AUTH))
def test_es_credential_variable_reaches_the_server(var: str, command: str, with_config: bool, workdir: Path) -> None:
    setting, env, header = ES_AUTH[var]
    es = FakeES(expect_auth=header)
    try:
        file_values = {setting: "wrong:" + setting} if with_config else None
        proc = run_case(workdir, command, es.url, env, file_values)
    finally:
        es.close()
    assert proc.returncode == 0, proc.stderr
    assert es.requests and {auth for _, _, auth in es.requests} == {header}
    if command in ("tail", "replay"):
        assert any(path.endswith("/_bulk") for _, path, _ in es.requests)
    for secret in ("pw-right", "ksecret"):
        assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize("with_config", [False, True], ids=["env-only", "env-over-config"])
@pytest.mark.parametrize("command", ["tail", "replay"])
@pytest.mark.parametrize("var", ["LOGPIPE_USERNAME", "LOGPIPE_PASSWORD"])
def test_sink_user_variables_reach_an_elasticsearch_sink(var: str, command: str, with_config: bool,
                                                         workdir: Path) -> None:
    """The direct road (README, security): LOGPIPE_USERNAME / LOGPIPE_PASSWORD are the sink's basic auth."""
    header = "Basic " + base64.b64encode(b"bob:pw-right").decode()
    es = FakeES(expect_auth=header)
    try:
        file_values = {FORWARD_VARS[var]: "wrong"} if with_config else None
        proc = run_case(workdir, command, es.url, {"LOGPIPE_USERNAME": "bob", "LOGPIPE_PASSWORD": "pw-right"},
                        file_values)
    finally:
        es.close()
    assert proc.returncode == 0, proc.stderr
    assert any(path.endswith("/_bulk") for _, path, _ in es.requests)


@pytest.mark.parametrize("with_config", [False, True], ids=["env-only", "env-over-config"])
@pytest.mark.parametrize("command", ES_COMMANDS)
def test_es_ca_file_variable_verifies_the_server(command: str, with_config: bool, workdir: Path,
                                                 pki: tuple[Pki, Pki]) -> None:
    right, wrong = pki
    es = FakeES(tls=right.server_context())
    try:
        file_values = {"ca_file": wrong.ca_file} if with_config else None
        proc = run_case(workdir, command, es.url, {"LOGPIPE_ES_CA_FILE": right.ca_file}, file_values)
    finally:
        es.close()
    assert proc.returncode == 0, proc.stderr
    assert es.requests, "no request got through the TLS handshake"


@pytest.mark.parametrize("with_config", [False, True], ids=["env-only", "env-over-config"])
@pytest.mark.parametrize("command", ["query", "es setup"])
def test_es_url_variable_names_the_cluster(command: str, with_config: bool, workdir: Path) -> None:
    es = FakeES()
    try:
        config = None
        if with_config:
            config = workdir / "sidecar.toml"
            config.write_text(toml({"url": DEAD_URL}))
        proc = logpipe(workdir, command_args(command, None, config), {"LOGPIPE_ES_URL": es.url})
    finally:
        es.close()
    assert proc.returncode == 0, proc.stderr
    assert es.requests


# -- the scrub key: pseudonyms -------------------------------------------------------------------


def _pseudonyms(cwd: Path, command: str, key: str | None) -> tuple[int, list[str], str]:
    cfg = cwd / f"scrub-{command}.toml"
    cfg.write_text('[sink]\nurl = "-"\n[scrub]\nmode = "pseudonym"\n[metrics]\ninterval_s = 0\n')
    args = (["tail", "app.log", "--once", "--reset-checkpoint", "--checkpoint", "cp.json"] if command == "tail"
            else ["replay", "app.log", "--no-progress"])
    proc = logpipe(cwd, [*args, "--config", str(cfg)], {"LOGPIPE_SCRUB_KEY": key} if key else {})
    messages = [json.loads(line)["message"] for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, messages, proc.stderr


@pytest.mark.parametrize("command", ["tail", "replay"])
def test_scrub_key_variable_keys_the_pseudonyms(command: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from logpipe.config import ScrubConfig
    from logpipe.scrub import Scrubber

    code_a, first, err = _pseudonyms(workdir, command, "key-one")
    assert code_a == 0, err
    code_b, second, err = _pseudonyms(workdir, command, "key-two")
    assert code_b == 0, err
    monkeypatch.setenv("LOGPIPE_SCRUB_KEY", "key-one")
    expected = Scrubber.from_config(ScrubConfig(mode="pseudonym")).scrub_record({"message": LINES[0]["message"]})
    assert first[0] == expected["message"] and "alice@example.com" not in first[0]
    assert first != second  # another key, other pseudonyms
    code, _, err = _pseudonyms(workdir, command, None)
    assert code == 2 and "LOGPIPE_SCRUB_KEY" in err


# -- the alert webhook ----------------------------------------------------------------------------


class Webhook:
    """Collects the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers.get("content-length") or 0))))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("with_config", [False, True], ids=["env-only", "env-over-config"])
def test_alert_webhook_variable_receives_the_alert(with_config: bool, tmp_path: Path) -> None:
    """`tail` is the only command with alerts: a 5xx burst fires a rule, the POST goes to the
    variable's URL. Follow mode (alert rules are evaluated every few seconds), stopped once
    the webhook has its alert or after a bounded wait."""
    (tmp_path / "access.log").write_text("".join(
        f'127.0.0.1 - - [24/Nov/2026:07:00:{i:02d} +0000] "GET /api/x/{i} HTTP/1.1" 503 12 "-" "curl/8"\n'
        for i in range(40)))
    (tmp_path / "rules.toml").write_text('[[rules]]\nname = "burst"\nmetric = "error_rate"\nwindow = "1m"\n'
                                         'comparison = ">"\nthreshold = 0.05\nfor = "0s"\nmin_count = 1\n')
    args = ["tail", "access.log", "--sink", "-", "--checkpoint", "cp.json", "--alerts", "rules.toml"]
    if with_config:
        (tmp_path / "sidecar.toml").write_text(f'[alerts]\nwebhook_url = "{DEAD_URL}/file"\n')
        args += ["--config", "sidecar.toml"]
    hook = Webhook()
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")}
    proc = subprocess.Popen([sys.executable, "-m", "logpipe", *args], cwd=tmp_path,
                            env={**base, "PYTHONPATH": str(REPO), "LOGPIPE_ALERT_WEBHOOK": hook.url},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not hook.bodies and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        hook.close()
    assert [b["alert"]["alert.name"] for b in hook.bodies][:1] == ["burst"], err


# -- flags beat the environment ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["query", "es setup"])
def test_es_flag_beats_the_url_variable(command: str, workdir: Path) -> None:
    es = FakeES()
    try:
        proc = logpipe(workdir, command_args(command, es.url, None), {"LOGPIPE_ES_URL": DEAD_URL})
    finally:
        es.close()
    assert proc.returncode == 0, proc.stderr
    assert es.requests


@pytest.mark.parametrize("command", ["query", "es setup"])
def test_ca_file_flag_beats_the_variable(command: str, workdir: Path, pki: tuple[Pki, Pki]) -> None:
    right, wrong = pki
    es = FakeES(tls=right.server_context())
    try:
        args = [*command_args(command, es.url, None), "--ca-file", right.ca_file]
        proc = logpipe(workdir, args, {"LOGPIPE_ES_CA_FILE": wrong.ca_file})
    finally:
        es.close()
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("command", ES_COMMANDS)
def test_credentials_in_the_url_flag_beat_the_variables(command: str, workdir: Path) -> None:
    header = "Basic " + base64.b64encode(b"flaguser:flagpass").decode()
    es = FakeES(expect_auth=header)
    try:
        url = es.url.replace("http://", "http://flaguser:flagpass@")
        proc = logpipe(workdir, command_args(command, url, None),
                       {"LOGPIPE_ES_USERNAME": "envuser", "LOGPIPE_ES_PASSWORD": "envpass"})
    finally:
        es.close()
    assert proc.returncode == 0, proc.stderr
    assert {auth for _, _, auth in es.requests} == {header}
    assert "flagpass" not in proc.stdout + proc.stderr


def test_every_documented_variable_is_covered_here() -> None:
    covered = {*FORWARD_VARS, *ES_AUTH, "LOGPIPE_ES_CA_FILE", "LOGPIPE_ES_URL", "LOGPIPE_SCRUB_KEY",
               "LOGPIPE_ALERT_WEBHOOK"}
    not_for_commands = {"LOGPIPE_SERVICE", "ENVIRONMENT", "APP_VERSION", "LOGPIPE_TEST_ES_URL",
                        "LOGPIPE_TEST_FLUENTD", "LOGPIPE_TEST_ARTIFACTS", "LOGPIPE_CHROMIUM", "LOGPIPE_HEALTH_TOKEN"}
    # Tail-only switches with their own behaviour tests: LOGPIPE_CORE (tests/test_core_tail.py,
    # core on and off give the same output), LOGPIPE_DASHBOARD_TOKEN (tests/test_dashboard_browser.py).
    tested_with_their_feature = {"LOGPIPE_CORE", "LOGPIPE_DASHBOARD_TOKEN"}
    assert set(ENVIRONMENT_VARIABLES) == covered | not_for_commands | tested_with_their_feature
