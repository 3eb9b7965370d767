"""`logpipe es setup`: installs the repo's template (+ ILM where available), idempotently."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from elasticsearch import Elasticsearch
from logpipe.cli import cli
from logpipe.es.setup import default_assets_dir, template_for_server

pytestmark = pytest.mark.es


def test_setup_twice_second_run_changes_nothing(es_url: str) -> None:
    client = Elasticsearch(es_url)
    client.options(ignore_status=404).indices.delete_index_template(name="logpipe")
    runner = CliRunner()
    first = runner.invoke(cli, ["es", "setup", "--es", es_url])
    assert first.exit_code == 0, first.output
    assert "index template logpipe: created" in first.output
    second = runner.invoke(cli, ["es", "setup", "--es", es_url])
    assert second.exit_code == 0, second.output
    assert "index template logpipe: unchanged" in second.output
    assert "no changes" in second.output
    tpl = client.indices.get_index_template(name="logpipe")["index_templates"][0]["index_template"]
    assert tpl["index_patterns"] == ["logpipe-*"]
    props = tpl["template"]["mappings"]["properties"]
    assert props["status"]["type"] == "short" and props["@timestamp"]["type"] == "date"
    client.close()


def test_setup_says_when_ilm_is_missing(es_url: str) -> None:
    client = Elasticsearch(es_url)
    has_ilm = True
    try:
        client.ilm.get_status()
    except Exception:
        has_ilm = False
    client.close()
    res = CliRunner().invoke(cli, ["es", "setup", "--es", es_url])
    assert res.exit_code == 0, res.output
    if has_ilm:  # a user's own full cluster (LOGPIPE_TEST_ES_URL)
        assert "ilm policy logpipe:" in res.output and "skipped" not in res.output.split("ilm policy")[1].split("\n")[0]
    else:  # the integ-test distribution has no x-pack ILM
        assert "ILM is not available on this server" in res.output


def test_template_without_ilm_drops_only_lifecycle_settings() -> None:
    import json

    tpl = json.loads((default_assets_dir() / "index-template.json").read_text())
    stripped = template_for_server(tpl, with_ilm=False)["template"]["settings"]
    assert not any(k.startswith("index.lifecycle") for k in stripped)
    assert stripped["index.number_of_shards"] == 1
    assert "index.lifecycle.name" in tpl["template"]["settings"]  # the file itself is untouched


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    assets = tmp_path / "es"
    shutil.copytree(default_assets_dir(), assets)
    (assets / "ilm-policy.json").write_text('{"phases": {"hot": ,}}')
    res = CliRunner().invoke(cli, ["es", "setup", "--es", "http://127.0.0.1:1", "--dir", str(assets)])
    assert res.exit_code != 0
    assert f"{assets / 'ilm-policy.json'}: invalid JSON at line 1" in res.output


def test_unreachable_cluster_is_one_line_with_masked_credentials() -> None:
    res = CliRunner().invoke(cli, ["es", "setup", "--es", "http://admin:T0pSecret99@127.0.0.1:1"])
    assert res.exit_code == 1
    assert "T0pSecret99" not in res.output
    assert res.output.strip() == "Error: cannot reach Elasticsearch at http://admin:***@127.0.0.1:1: connection refused"


def test_help_never_shows_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGPIPE_ES_PASSWORD", "EnvPassw0rd!")
    monkeypatch.setenv("LOGPIPE_ES_API_KEY", "key-id:EnvApiKey!")
    monkeypatch.setenv("LOGPIPE_ES_URL", "http://u:UrlSecret1@127.0.0.1:1")
    runner = CliRunner()
    for args in (["es", "setup", "--help"], ["query", "--help"]):
        out = runner.invoke(cli, args).output
        for secret in ("EnvPassw0rd!", "EnvApiKey!", "UrlSecret1"):
            assert secret not in out
    res = runner.invoke(cli, ["query", "level:error"])  # uses LOGPIPE_ES_URL
    assert res.exit_code == 1 and "UrlSecret1" not in res.output and "u:***@127.0.0.1:1" in res.output


def test_changed_template_file_is_updated_then_restored(es_url: str, tmp_path: Path) -> None:
    assets = tmp_path / "es"
    shutil.copytree(default_assets_dir(), assets)
    path = assets / "index-template.json"
    path.write_text(path.read_text().replace('"5s"', '"7s"'))
    runner = CliRunner()
    changed = runner.invoke(cli, ["es", "setup", "--es", es_url, "--dir", str(assets)])
    assert "index template logpipe: updated" in changed.output, changed.output
    client = Elasticsearch(es_url)
    tpl = client.indices.get_index_template(name="logpipe")["index_templates"][0]["index_template"]
    assert tpl["template"]["settings"]["index"]["refresh_interval"] == "7s"
    client.close()
    restored = runner.invoke(cli, ["es", "setup", "--es", es_url])
    assert "index template logpipe: updated" in restored.output
