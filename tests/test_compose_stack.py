"""docker-compose.yml checked against the repository: files, commands, ports, env vars, order.

No Docker engine runs here, so a typo in the compose file would only show on a user's laptop.
These tests read the file and hold every reference in it against what the code actually
has: paths that must exist, `logpipe` subcommands and flags in the click CLI, the ports the
configs listen on, the environment variables the code reads, and health-check ordering.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from logpipe.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # demo/ lives at the repo root, outside the installed package
COMPOSE = ROOT / "docker-compose.yml"
LOGPIPE_SERVICES = ("es-setup", "demo", "sidecar", "traffic")  # built from the repo's Dockerfile


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _command(svc: dict[str, Any]) -> list[str]:
    cmd = svc.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def _env(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {}) or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _mounts(svc: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for vol in svc.get("volumes", []):
        src, dst = vol.split(":")[:2]
        out.append((src, dst))
    return out


def _container_ports(svc: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in svc.get("ports", [])}


def _interpolate_default(value: str) -> str:
    """`${VAR:-default}` -> default (what a user gets without a .env file)."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def _fluent_conf() -> str:
    return (ROOT / "fluentd" / "fluent.conf").read_text(encoding="utf-8")


def _sidecar_config(services: dict[str, dict[str, Any]]) -> tuple[Config, Path]:
    cmd = _command(services["sidecar"])
    container_path = cmd[cmd.index("--config") + 1]
    host = next(src for src, dst in _mounts(services["sidecar"]) if dst == container_path)
    path = ROOT / host
    return load_config(path), path


# -- structure -------------------------------------------------------------------------------


def test_the_road_is_all_there(services: dict[str, dict[str, Any]]) -> None:
    for name in ("elasticsearch", "kibana", "fluentd", "demo", "sidecar", "es-setup", "kibana-setup"):
        assert name in services, f"docker-compose.yml lacks the {name} service"
    assert "elasticsearch:8." in _interpolate_default(services["elasticsearch"]["image"])
    assert services["elasticsearch"]["environment"]["discovery.type"] == "single-node"
    # The security switch a user can flip: present, and off by default.
    switch = str(services["elasticsearch"]["environment"]["xpack.security.enabled"])
    assert switch.startswith("${") and _interpolate_default(switch) == "false"


def test_elasticsearch_version_is_the_one_ci_tests_against(services: dict[str, dict[str, Any]]) -> None:
    script = (ROOT / "scripts" / "elasticsearch.sh").read_text(encoding="utf-8")
    tested = re.search(r'VERSION="\$\{LOGPIPE_ES_VERSION:-([0-9.]+)\}"', script).group(1)
    for name in ("elasticsearch", "kibana"):
        image_version = _interpolate_default(services[name]["image"]).rsplit(":", 1)[1]
        assert image_version == tested, f"{name} image {image_version} != tested Elasticsearch {tested}"


def test_named_volumes_for_state(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes", {}))
    used: dict[str, list[str]] = {}
    for name, svc in services.items():
        for src, dst in _mounts(svc):
            if not src.startswith((".", "/")):
                assert src in declared, f"{name} mounts undeclared volume {src}"
                used.setdefault(src, []).append(dst)
    assert "/usr/share/elasticsearch/data" in used["esdata"]
    assert any(dst.startswith("/fluentd/buffer") for dst in used["fluentd-buffer"])
    assert used["sidecar-checkpoints"], "sidecar checkpoints must live on a named volume"
    assert not declared - set(used), f"declared but unused volumes: {declared - set(used)}"


def test_every_referenced_path_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            ctx = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = ctx / ("Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile"))
            assert ctx.is_dir(), f"{name}: build context {ctx} missing"
            assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
            for src in _dockerfile_copy_sources(dockerfile):
                assert (ctx / src).exists(), f"{name}: {dockerfile.name} copies {src}, missing in {ctx}"
        for src, _dst in _mounts(svc):
            if src.startswith("."):
                assert (ROOT / src).exists(), f"{name} mounts {src}, which does not exist"


def _dockerfile_copy_sources(dockerfile: Path) -> list[str]:
    sources: list[str] = []
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts and parts[0].upper() in ("COPY", "ADD") and not any(p.startswith("--from") for p in parts):
            sources += [p for p in parts[1:-1] if not p.startswith("--")]
    return sources


# -- commands --------------------------------------------------------------------------------


def _check_click_command(root: click.Command, argv: list[str], where: str) -> click.Command:
    """Walk `argv` through click groups; every option used must be one the command declares."""
    cmd = root
    rest = list(argv)
    while isinstance(cmd, click.Group) and rest:
        sub = cmd.get_command(click.Context(cmd), rest[0])
        assert sub is not None, f"{where}: no subcommand {rest[0]!r} in {cmd.name}"
        cmd, rest = sub, rest[1:]
    opts = {o for p in cmd.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
    for arg in rest:
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            assert flag in opts, f"{where}: {cmd.name} has no option {flag} (has {sorted(opts)})"
    # click itself must accept the whole line (types, required values).
    cmd.make_context(cmd.name or "", list(rest), resilient_parsing=False)
    return cmd


def test_logpipe_commands_exist_in_the_cli(services: dict[str, dict[str, Any]]) -> None:
    from logpipe.cli import cli

    checked = 0
    for name, svc in services.items():
        argv = _command(svc)
        if argv[:1] == ["logpipe"]:
            _check_click_command(cli, argv[1:], f"service {name}")
            checked += 1
    assert checked >= 2  # es-setup and the sidecar


def test_es_setup_installs_the_repo_templates(services: dict[str, dict[str, Any]]) -> None:
    """Installed from site-packages, `es setup` cannot find the repo's elasticsearch/ by itself."""
    argv = _command(services["es-setup"])
    directory = argv[argv.index("--dir") + 1]
    host = next(src for src, dst in _mounts(services["es-setup"]) if dst == directory)
    for name in ("index-template.json", "ilm-policy.json"):
        assert (ROOT / host / name).is_file(), f"es-setup mounts {host}, which lacks {name}"


def test_demo_and_traffic_commands_resolve(services: dict[str, dict[str, Any]]) -> None:
    from uvicorn.main import main as uvicorn_cli

    import demo.app
    from demo import traffic

    argv = _command(services["demo"])
    assert argv[0] == "uvicorn"
    _check_click_command(uvicorn_cli, argv[1:], "service demo")
    target = next(a for a in argv[1:] if ":" in a and not a.startswith("-"))
    module, attr = target.split(":")
    assert module == "demo.app" and callable(getattr(demo.app, attr))
    assert "--factory" in argv  # create_app is a factory: importing demo.app has no side effects

    argv = _command(services["traffic"])
    assert argv[:3] == ["python", "-m", "demo.traffic"]
    args = traffic.parser().parse_args(argv[3:])  # exits (fails the test) on an unknown flag
    assert 0 < args.burst < args.requests


# -- ports -----------------------------------------------------------------------------------


def test_forward_port_matches_fluentd_source(services: dict[str, dict[str, Any]]) -> None:
    conf = _fluent_conf()
    sources = re.findall(r"<source>(.*?)</source>", conf, flags=re.S)
    forward = [s for s in sources if re.search(r"@type\s+forward", s)]
    assert forward, "fluent.conf has no forward <source>"
    # a literal port, or "#{ENV['FLUENTD_PORT'] || 24224}" (compose does not set FLUENTD_PORT)
    port = int(re.search(r"^\s*port\s+\"?(?:#\{ENV\['FLUENTD_PORT'\] \|\| )?(\d+)", forward[0],
                         flags=re.M).group(1))
    assert "FLUENTD_PORT" not in _env(services["fluentd"])
    assert port == 24224
    assert port in _container_ports(services["fluentd"])
    cfg, _ = _sidecar_config(services)
    url = urlsplit(cfg.sink.url)
    assert url.scheme in ("forward", "forwards") and url.hostname == "fluentd" and url.port == port


def test_metrics_port_is_published(services: dict[str, dict[str, Any]]) -> None:
    cfg, _ = _sidecar_config(services)
    host, port = cfg.metrics.addr.rsplit(":", 1)
    assert host == "0.0.0.0", "inside a container /metrics must listen on all interfaces to be published"
    assert int(port) == 9464 and 9464 in _container_ports(services["sidecar"])
    assert ":9464/healthz" in " ".join(services["sidecar"]["healthcheck"]["test"])


def test_elasticsearch_port_is_used_consistently(services: dict[str, dict[str, Any]]) -> None:
    assert 9200 in _container_ports(services["elasticsearch"])
    argv = _command(services["es-setup"])
    es = urlsplit(argv[argv.index("--es") + 1])
    assert (es.hostname, es.port) == ("elasticsearch", 9200)
    # What fluent.conf's elasticsearch output resolves to under compose: `host`/`port` are either
    # literal or "#{ENV['X'] || 'default'}", and compose may set X for the fluentd service.
    env = _env(services["fluentd"])
    match = re.search(r"<match logpipe\.[^>]*>((?:(?!</match>).)*@type elasticsearch.*?)</match>", _fluent_conf(),
                      flags=re.S)
    assert match, "fluent.conf has no elasticsearch <match logpipe...> output"

    def resolved(key: str) -> str:
        line = re.search(rf"^\s*{key}\s+(.+)$", match.group(1), flags=re.M)
        assert line, f"fluent.conf's elasticsearch output has no {key}"
        value = line.group(1).strip().strip('"')
        ref = re.search(r"ENV\[['\"](\w+)['\"]\](?:\s*\|\|\s*'?([\w.-]+)'?)?", value)
        if not ref:
            return value
        return env.get(ref.group(1)) or (ref.group(2) or "")

    assert resolved("host") == "elasticsearch", "Fluentd must write to the compose elasticsearch service"
    assert resolved("port") == "9200"


def test_demo_port_and_log_volume_meet_the_sidecar(services: dict[str, dict[str, Any]]) -> None:
    argv = _command(services["demo"])
    port = int(argv[argv.index("--port") + 1])
    assert port in _container_ports(services["demo"])
    assert f"demo:{port}" in " ".join(_command(services["traffic"]))
    log_dir = _env(services["demo"])["DEMO_LOG_DIR"]
    demo_volume = next(src for src, dst in _mounts(services["demo"]) if dst == log_dir)
    sidecar_mount = next(dst for src, dst in _mounts(services["sidecar"]) if src == demo_volume)
    cfg, _ = _sidecar_config(services)
    for path in (p for inp in cfg.inputs for p in inp.paths):
        assert path.startswith(sidecar_mount + "/"), f"sidecar reads {path}, outside the shared volume"
    checkpoint_mount = next(dst for src, dst in _mounts(services["sidecar"]) if src == "sidecar-checkpoints")
    # Everything the sidecar writes must land on its named volume: the image's /app is read-only
    # for the unprivileged user, and state elsewhere would vanish with the container.
    for what, path in (("checkpoint_path", cfg.pipeline.checkpoint_path),
                       ("deadletter_path", cfg.sink.deadletter_path)):
        assert path.startswith(checkpoint_mount + "/"), f"sidecar {what} {path} is not on its volume"


def test_long_running_services_come_back(services: dict[str, dict[str, Any]]) -> None:
    """The sidecar exits on a fatal sink error (e.g. a rejected shared key); it must be restarted."""
    for name, svc in services.items():
        one_shot = svc.get("restart") == "no"
        if not one_shot:
            assert svc.get("restart") in ("unless-stopped", "always", "on-failure"), f"{name} has no restart policy"


# -- environment -----------------------------------------------------------------------------


def _package_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "logpipe").rglob("*.py"))


def test_logpipe_env_vars_are_read_by_the_code(services: dict[str, dict[str, Any]]) -> None:
    import dataclasses

    import demo.app
    from logpipe import config

    config_env = {
        f.metadata["env"]
        for section in (config.SinkConfig, config.AlertsConfig, config.ScrubConfig)
        for f in dataclasses.fields(section) if f.metadata.get("env")
    }
    documented = getattr(config, "ENVIRONMENT_VARIABLES", None)  # the README's list, when present
    config_env |= set(documented or ())
    source = _package_source()
    for name in LOGPIPE_SERVICES:
        for var in _env(services[name]):
            read = re.search(rf"['\"]{var}['\"]", source)
            # Read by the code, and documented when the package keeps a documented list.
            known = var in demo.app.ENV_VARS or (read and (documented is None or var in config_env))
            assert known, f"service {name} sets {var}, which nothing in logpipe/ or demo/ reads"


def test_fluentd_env_vars_are_read_by_its_config(services: dict[str, dict[str, Any]]) -> None:
    conf = _fluent_conf() + (ROOT / "fluentd" / "Dockerfile").read_text(encoding="utf-8")
    for var in _env(services["fluentd"]):
        assert re.search(rf"ENV\[['\"]{var}['\"]\]|\${{?{var}\b", conf), f"fluentd gets {var}; fluent.conf never reads it"


def test_sidecar_and_fluentd_share_the_key(services: dict[str, dict[str, Any]]) -> None:
    conf = _fluent_conf()
    assert re.search(r"shared_key\s+\S+", conf), "fluent.conf <security> has no shared_key"
    key_var = re.search(r"shared_key\s+\"?#\{ENV\[['\"](\w+)['\"]\]", conf).group(1)
    assert _env(services["fluentd"])[key_var] == _env(services["sidecar"])["LOGPIPE_FLUENTD_SHARED_KEY"]


# -- order -----------------------------------------------------------------------------------


def test_depends_on_targets_are_healthchecked(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must use conditions, not a bare list"
        for target, spec in deps.items():
            assert target in services, f"{name} depends on unknown service {target}"
            cond = spec["condition"]
            if cond == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), f"{target} has no healthcheck"
            else:
                assert cond == "service_completed_successfully", f"{name} -> {target}: {cond}"
                assert services[target].get("restart") == "no", f"one-shot {target} must not restart"
    # The road in order: templates before data, the aggregator and the service before the sidecar.
    assert "es-setup" in services["fluentd"]["depends_on"]
    assert {"demo", "fluentd"} <= set(services["sidecar"]["depends_on"])


# -- configs the stack loads ---------------------------------------------------------------------


def test_sidecar_config_is_valid_and_complete(services: dict[str, dict[str, Any]]) -> None:
    cfg, path = _sidecar_config(services)
    assert cfg.inputs and cfg.inputs[0].paths
    assert cfg.metrics.interval_s > 0, "metric records feed the Kibana p95 panels"
    assert "shared_key" not in path.read_text(encoding="utf-8").replace("LOGPIPE_FLUENTD_SHARED_KEY", ""), (
        "the shared key belongs in the environment, not in a committed file")


def test_kibana_objects_are_generated_and_loaded(services: dict[str, dict[str, Any]]) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "kibana" / "generate.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    mounted = {src for src, _ in _mounts(services["kibana-setup"])}
    assert "./kibana/logpipe.ndjson" in mounted
    script = " ".join(_command(services["kibana-setup"]))
    assert "/api/saved_objects/_import" in script and "kbn-xsrf" in script and "overwrite=true" in script
    assert '"success":true' in script, "Kibana answers 200 with success:false when objects fail to import"


def test_kibana_objects_reference_what_they_use() -> None:
    objs = [json.loads(line) for line in (ROOT / "kibana" / "logpipe.ndjson").read_text().splitlines()]
    ids = {(o["type"], o["id"]) for o in objs}
    views = [o for o in objs if o["type"] == "index-pattern"]
    assert [v["attributes"]["title"] for v in views] == ["logpipe-*"]
    for obj in objs:
        for ref in obj.get("references", []):
            assert (ref["type"], ref["id"]) in ids, f"{obj['id']} references missing {ref}"
    (dash,) = [o for o in objs if o["type"] == "dashboard"]
    panels = json.loads(dash["attributes"]["panelsJSON"])
    assert {p["panelRefName"] for p in panels} == {r["name"] for r in dash["references"]}
    titles = " ".join(o["attributes"]["title"] for o in objs if o["type"] == "visualization")
    for wanted in ("requests per minute", "5xx rate", "p95", "top errors"):
        assert wanted in titles


def test_kibana_aggregations_use_aggregatable_fields() -> None:
    """A terms/max agg on a `text` field fails in Kibana; check every field against the template."""
    template = json.loads((ROOT / "elasticsearch" / "index-template.json").read_text(encoding="utf-8"))
    props = template["template"]["mappings"]["properties"]

    def mapped_type(field: str) -> str | None:
        node: dict[str, Any] = {"properties": props}
        for part in field.split("."):
            node = node.get("properties", {}).get(part, {})
        return node.get("type")

    objs = [json.loads(line) for line in (ROOT / "kibana" / "logpipe.ndjson").read_text().splitlines()]
    for obj in objs:
        if obj["type"] != "visualization":
            continue
        for agg in json.loads(obj["attributes"]["visState"]).get("aggs", []):
            field = agg["params"].get("field")
            if not field or field == "@timestamp":
                continue
            kind = mapped_type(field)
            # Unmapped metric-record numbers (p95_ms, count, error_rate) map dynamically as numbers.
            assert kind != "text", f"{obj['id']} aggregates on text field {field}"
