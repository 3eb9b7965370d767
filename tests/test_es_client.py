"""Client construction: where credentials come from, and that they are never shown."""

from __future__ import annotations

import pytest

from logpipe.config import SinkConfig, from_dict
from logpipe.es.client import EsOptions, Masker, build_client, mask_url
from logpipe.es.naming import IndexNamer, clean_service, utc_day


@pytest.mark.parametrize(("url", "shown"), [
    ("https://elastic:s3cr3t@es.internal:9200", "https://elastic:***@es.internal:9200"),
    ("http://user@localhost:9200/prefix", "http://user@localhost:9200/prefix"),
    ("http://localhost:9200", "http://localhost:9200"),
    ("https://a:b%40c@[::1]:9200", "https://a:***@[::1]:9200"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_credentials_from_url_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGPIPE_ES_USERNAME", "envuser")
    monkeypatch.setenv("LOGPIPE_ES_PASSWORD", "envpass")
    from_url = EsOptions(url="https://u1:p1@es:9200/").resolved()
    assert (from_url.url, from_url.username, from_url.password) == ("https://es:9200", "u1", "p1")
    from_env = EsOptions(url="https://es:9200").resolved()
    assert (from_env.username, from_env.password) == ("envuser", "envpass")


def test_api_key_from_env_and_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGPIPE_ES_API_KEY", "kid:ksecret")
    cfg = from_dict({"sink": {"url": "https://es:9200"}}).sink
    opts = EsOptions.from_sink_config(cfg).resolved()
    assert opts.api_key == "kid:ksecret"
    assert Masker(opts.secrets())("auth failed for kid:ksecret, key ksecret") == "auth failed for ***, key ***"
    client = build_client(opts)  # builds without contacting the server
    assert client.transport.node_pool.get().base_url == "https://es:9200"
    client.close()


def test_tls_verification_on_by_default_and_warns_when_off(capsys: pytest.CaptureFixture[str]) -> None:
    client = build_client(EsOptions(url="https://es:9200"))
    assert client.transport.node_pool.get().config.verify_certs is True
    client.close()
    client = build_client(EsOptions(url="https://es:9200", insecure=True))
    assert client.transport.node_pool.get().config.verify_certs is False
    assert "TLS verification is OFF" in capsys.readouterr().err
    client.close()


def test_index_names_daily_utc_and_routed_by_kind() -> None:
    namer = IndexNamer(SinkConfig().index)
    assert namer.index_for({"@timestamp": "2026-11-24T23:30:00.000000Z", "service": "Billing API"}) == \
        "logpipe-billing-api-2026.11.24"
    # 01:30 at +02:00 is the previous day in UTC
    assert namer.index_for({"@timestamp": "2026-11-25T01:30:00+02:00", "service": "web"}) == "logpipe-web-2026.11.24"
    assert namer.index_for({"@timestamp": "2026-11-24T00:00:00Z", "event.kind": "metric"}) == "logpipe-metrics-2026.11.24"
    assert namer.index_for({"@timestamp": "2026-11-24T00:00:00Z", "event.kind": "alert"}) == "logpipe-alerts-2026.11.24"
    assert namer.index_for({"@timestamp": "2026-11-24T00:00:00Z"}) == "logpipe-unknown-2026.11.24"
    assert clean_service("../Evil Name*") == "evil-name"
    assert len(utc_day("garbage")) == 10
