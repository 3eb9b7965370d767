"""The dashboard over loopback HTTP, without a browser: TOML `[metrics] dashboard = true` serves it,
the served page and its assets load nothing from elsewhere, and `/metrics`, `/healthz`, `/health`
answer as they do without the dashboard. Also the page-side figures (INP/CLS, page views)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from logpipe.config import load_config
from logpipe.metrics.pagevitals import PageVitals, PageVitalsCollector
from logpipe.metrics.runtime import MetricsRuntime, start_metrics
from logpipe.stages import FileStats, PipelineStats


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _start(tmp_path: Path, dashboard: bool, stats: PipelineStats) -> MetricsRuntime:
    toml = tmp_path / f"sidecar-{dashboard}.toml"
    toml.write_text(f'[metrics]\naddr = "127.0.0.1:0"\ninterval_s = 0.0\n'
                    f'dashboard = {str(dashboard).lower()}\nhealth_max_ack_age_s = 30.0\n')
    runtime = start_metrics(load_config(toml, env=False), stats)
    assert runtime is not None and runtime.url is not None
    return runtime


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGPIPE_DASHBOARD_TOKEN", raising=False)


def test_toml_dashboard_true_serves_the_page_and_off_does_not(tmp_path: Path, no_token: None) -> None:
    on = _start(tmp_path, True, PipelineStats())
    off = _start(tmp_path, False, PipelineStats())
    try:
        code, headers, body = _get(on.url + "/")
        assert code == 200 and headers["Content-Type"].startswith("text/html") and b"dashboard.js" in body
        code, _h, body = _get(on.url + "/api/v1/summary")
        assert code == 200 and orjson.loads(body)["schema"] == "logpipe.summary/1"
        assert _get(off.url + "/")[0] == 404 and _get(off.url + "/api/v1/summary")[0] == 404
    finally:
        on.stop()
        off.stop()


def test_the_page_and_its_assets_reference_nothing_outside_the_sidecar(tmp_path: Path, no_token: None) -> None:
    """No CDN, no third-party code: every URL the served files name is relative, and the CSP says 'self'."""
    rt = _start(tmp_path, True, PipelineStats())
    try:
        served = {}
        for path in ("/", "/dashboard.js", "/dashboard.css"):
            code, headers, body = _get(rt.url + path)
            assert code == 200, path
            assert headers["Content-Security-Policy"].startswith("default-src 'self'"), path
            served[path] = body.decode()
    finally:
        rt.stop()
    html = served["/"]
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert sorted(refs) == ["dashboard.css", "dashboard.js"]  # relative: from the sidecar itself
    assert "@import" not in served["/dashboard.css"] and "url(" not in served["/dashboard.css"]
    for path, text in served.items():
        # the only absolute URL allowed is the SVG namespace (an identifier, never fetched)
        urls = [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"')]*", text)
                if u != "http://www.w3.org/2000/svg"]
        assert urls == [], (path, urls)
    script = served["/dashboard.js"]
    assert re.findall(r"fetch\(([^,)]*)", script) == ['"api/v1/summary"']
    assert "import(" not in script and "importScripts" not in script and "<script" not in script


def test_the_page_polls_the_summary_every_second_by_default() -> None:
    """The poll period is the script's default (1 s); `?poll_ms=` may change it, never below 250 ms."""
    script = (Path(__file__).resolve().parents[1] / "logpipe" / "assets" / "dashboard.js").read_text()
    assert re.search(r'const pollMs = Math\.max\(250, Number\(params\.get\("poll_ms"\)\) \|\| 1000\);', script)
    assert re.search(r"setTimeout\(poll, pollMs\)", script)


def test_metrics_healthz_and_health_are_unchanged_by_the_dashboard(tmp_path: Path, no_token: None) -> None:
    stats_on, stats_off = PipelineStats(started_at=1.0), PipelineStats(started_at=1.0)
    on, off = _start(tmp_path, True, stats_on), _start(tmp_path, False, stats_off)
    try:
        for path in ("/healthz", "/health"):
            a, b = _get(on.url + path), _get(off.url + path)
            assert a[0] == b[0] == 200 and a[1]["Content-Type"] == b[1]["Content-Type"] == "application/json"
            assert orjson.loads(a[2])["status"] == "ok" and set(orjson.loads(a[2])) == set(orjson.loads(b[2]))
            assert "Content-Security-Policy" not in a[1]  # the server's own answer, not the dashboard's
        for stats in (stats_on, stats_off):  # a stalled sink: both report it
            stats.files["/l/a.log"] = FileStats("/l/a.log", size=100)
            stats.sink_error = "connection refused"
        for path in ("/healthz", "/health"):
            a, b = _get(on.url + path), _get(off.url + path)
            assert a[0] == b[0] == 503
            assert orjson.loads(a[2])["reason"] == orjson.loads(b[2])["reason"]
        a, b = _get(on.url + "/metrics"), _get(off.url + "/metrics")
        assert a[0] == b[0] == 200 and a[1]["Content-Type"] == b[1]["Content-Type"]
        names = [{ln.split(" ")[2] for ln in r[2].decode().splitlines() if ln.startswith("# TYPE")} for r in (a, b)]
        assert names[0] == names[1] and "logpipe_http_requests_total" in names[0]
    finally:
        on.stop()
        off.stop()


def _browser(route: str, kind: str, **fields: object) -> dict:
    return {"event.kind": "browser", "browser.type": kind, "page.route": route, **fields}


def test_page_views_and_inp_cls_p75_in_the_summary_and_on_metrics() -> None:
    pages = PageVitals(lambda: 1_000_000.0)
    inp = [40.0 * i for i in range(1, 21)]  # p75 (nearest rank): 600
    cls = [0.01 * i for i in range(1, 21)]  # p75: 0.15
    pages.observe([_browser("/cart", "pageview") for _ in range(20)]
                  + [_browser("/cart", "vital", **{"vital.name": "INP", "vital.value": v}) for v in inp]
                  + [_browser("/cart", "vital", **{"vital.name": "CLS", "vital.value": v}) for v in cls])
    row = pages.snapshot()[0]
    for window in ("since_start", "5m"):
        assert row[window]["page_views"] == 20
        assert row[window]["INP"]["count"] == 20 and row[window]["INP"]["p75"] == pytest.approx(600.0, rel=0.01)
        assert row[window]["CLS"]["count"] == 20 and row[window]["CLS"]["p75"] == pytest.approx(0.15, rel=0.01)
    registry = CollectorRegistry()
    registry.register(PageVitalsCollector(pages))
    text = generate_latest(registry).decode()
    assert 'logpipe_page_views_total{route="/cart"} 20.0' in text
    for vital, want in (("INP", 600.0), ("CLS", 0.15)):
        m = re.search(rf'logpipe_page_vital_p75{{route="/cart",vital="{vital}",window="since_start"}} (\S+)', text)
        assert m and float(m.group(1)) == pytest.approx(want, rel=0.01), vital
