"""The live dashboard (`logpipe tail --metrics-addr … --dashboard`) in headless Chromium.

A sidecar tails a log a generator writes; once the traffic stops and nothing is behind, the
numbers the page shows equal `/api/v1/summary`'s and `logpipe report --json`'s; a 5xx burst
turns its route red and shows the firing alert. Screenshots are written as artifacts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from chromium_support import artifact_dir, dump_dom, parse, screenshot

from logpipe.config import Config, ConfigError
from logpipe.metrics.synth import combined_lines, traffic

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _burst(n: int, route: str = "/api/orders", method: str = "POST") -> list[str]:
    stamp = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return [f'10.9.0.{i % 200} - - [{stamp}] "{method} {route} HTTP/1.1" 500 64 "-" "gen/1.0" 0.0{10 + i % 80}'
            for i in range(n)]


def _routes_on_page(html: str) -> dict[tuple[str, str], dict[str, str]]:
    rows = {}
    for node in parse(html):
        if node["tag"] == "tr" and "data-route" in node["attrs"]:
            cells = {c["attrs"].get("data-k"): c["text"].strip() for c in node["children"] if c["tag"] == "td"}
            cells["class"] = node["attrs"].get("class", "")
            rows[(node["attrs"]["data-route"], node["attrs"]["data-method"])] = cells
    return rows


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _check_panels(nodes: list[dict], summary: dict, log: Path) -> None:
    """The page's pipeline panel, per-file table, sparklines and slowest list show the summary's figures."""
    cards = {n["attrs"]["data-k"]: n["text"].strip() for n in nodes
             if n["tag"] == "div" and "card" in n["attrs"].get("class", "") and "data-k" in n["attrs"]}
    pipe = summary["pipeline"]
    assert cards["bytes behind"].startswith("0") and cards["sink"].startswith("ok")
    assert _int(cards["delivered"].removesuffix("delivered")) == pipe["delivered"] == 2500
    for key in ("dead-lettered", "throttled", "parse failures"):
        assert _int(cards[key].removesuffix(key)) == 0, key
    assert "records in/s" in cards and "records out/s" in cards
    files = [n for n in nodes if n["tag"] == "tr" and n["attrs"].get("data-path") == str(log)]
    assert files and {c["attrs"].get("data-k"): c["text"] for c in files[0]["children"]}["bytes_behind"] == "0"
    for svg in ("spark-rps", "spark-5xx", "spark-p95"):
        node = next(n for n in nodes if n["attrs"].get("id") == svg)
        assert any(c["tag"] == "polyline" for c in node["children"]), svg
    slowest = next(n for n in nodes if n["attrs"].get("id") == "slowest")
    shown = [c["text"].split(":")[0] for c in slowest["children"] if c["tag"] == "li"]
    assert shown == [f'{r["method"]} {r["route"]}' for r in summary["slowest"]] and len(shown) == 5


class Sidecar:
    def __init__(self, tmp: Path, log: Path, fmt: str = "combined") -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
        env.pop("LOGPIPE_DASHBOARD_TOKEN", None)
        self.stderr = open(tmp / "sidecar.err", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logpipe", "tail", str(log), "--format", fmt, "--sink",
             f"file:{tmp / 'archive'}", "--metrics-addr", f"127.0.0.1:{self.port}", "--dashboard",
             "--checkpoint", str(tmp / "cp.json")],
            stdout=subprocess.DEVNULL, stderr=self.stderr, env=env, cwd=tmp)
        self.err_path = tmp / "sidecar.err"

    def summary(self) -> dict:
        code, body = _get(self.base + "/api/v1/summary")
        assert code == 200, body
        return json.loads(body)

    def wait(self, pred, what: str, limit_s: float = 60.0) -> dict:
        deadline = time.monotonic() + limit_s
        last = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.err_path.read_text()
            try:
                last = self.summary()
            except OSError:
                last = None
            if last is not None and pred(last):
                return last
            time.sleep(0.2)
        raise AssertionError(f"sidecar: {what} not reached in {limit_s:g}s; last summary: {last}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.stderr.close()


def test_page_matches_summary_and_report_then_a_5xx_burst_turns_the_route_red(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    car = Sidecar(tmp_path, log)
    shots = artifact_dir(tmp_path)
    try:
        car.wait(lambda s: s["schema"] == "logpipe.summary/1", "summary served", 30)
        # traffic generator: five chunks written while the sidecar follows the file
        t = traffic(2500, seed=11, start=time.time(), error_share=0.0)
        lines = combined_lines(t)
        for i in range(5):
            with open(log, "a") as fh:
                fh.write("\n".join(lines[i * 500:(i + 1) * 500]) + "\n")
            car.wait(lambda s, n=(i + 1) * 500: s["pipeline"]["lines_read"] >= n, f"{(i + 1) * 500} lines read")
        summary = car.wait(lambda s: s["pipeline"]["lines_read"] == 2500 and s["pipeline"]["bytes_behind"] == 0
                           and s["overall"]["since_start"]["count"] == 2500, "lag 0 after 2,500 lines")
        assert all(f["lag_s"] == 0 for f in summary["pipeline"]["files"])
        html = dump_dom(car.base + "/?window=since_start")
        screenshot(car.base + "/?window=since_start", shots / "dashboard-steady.png")
        report = json.loads(subprocess.run(
            [sys.executable, "-m", "logpipe", "report", str(log), "--json", "--format", "combined"],
            capture_output=True, check=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120).stdout)
        page = _routes_on_page(html)
        api = {(r["route"], r["method"]): r for r in summary["routes"]}
        rep = {(r["route"], r["method"]): r for r in report["routes"]}
        assert set(page) == set(api) == set(rep) and len(page) >= 5
        for key, row in page.items():
            since = api[key]["since_start"]
            assert _int(row["since_start_count"]) == since["count"] == rep[key]["count"], key
            assert _int(row["status_4xx"]) == since["status_4xx"] == rep[key]["status_4xx"], key
            assert _int(row["status_5xx"]) == since["status_5xx"] == rep[key]["status_5xx"] == 0, key
            for q in ("p50_ms", "p95_ms", "p99_ms"):
                shown = float(row[q])
                assert shown == pytest.approx(since[q], rel=0.01), (key, q)
                assert shown == pytest.approx(rep[key][q], rel=0.01), (key, q)
            assert "state-ok" in row["class"]
        assert sum(_int(r["since_start_count"]) for r in page.values()) == report["overall"]["count"] == 2500
        _check_panels(parse(html), summary, log)

        # a 5xx burst on one route: the route turns red and the default 5xx alert fires
        with open(log, "a") as fh:
            fh.write("\n".join(_burst(600)) + "\n")
        car.wait(lambda s: any(a["name"] == "high_5xx_rate" and a["state"] == "firing" for a in s["alerts"])
                 and s["pipeline"]["bytes_behind"] == 0, "high_5xx_rate firing", 60)
        html = dump_dom(car.base + "/")
        screenshot(car.base + "/", shots / "dashboard-5xx-burst.png")
        page = _routes_on_page(html)
        assert "state-error" in page[("/api/orders", "POST")]["class"]
        assert all("state-error" not in row["class"] for key, row in page.items() if key != ("/api/orders", "POST"))
        firing = [n for n in parse(html) if n["attrs"].get("data-alert") == "high_5xx_rate"]
        assert firing and firing[0]["attrs"]["data-state"] == "firing" and "cooldown" in firing[0]["text"]
        # /metrics is unchanged by the dashboard
        code, body = _get(car.base + "/metrics")
        assert code == 200 and b"logpipe_http_requests_total" in body
    finally:
        car.stop()


def test_dashboard_on_a_non_loopback_address_needs_a_token(monkeypatch) -> None:
    from logpipe.metrics.dashboard_http import DashboardRoutes
    from logpipe.metrics.runtime import start_metrics
    from logpipe.stages import PipelineStats

    monkeypatch.delenv("LOGPIPE_DASHBOARD_TOKEN", raising=False)
    cfg = Config()
    cfg.metrics.addr = "0.0.0.0:0"
    cfg.metrics.dashboard = True
    with pytest.raises(ConfigError, match="LOGPIPE_DASHBOARD_TOKEN"):
        start_metrics(cfg, PipelineStats())

    class NoSummary:
        def summary_json(self) -> bytes:
            return b"{}"

    routes = DashboardRoutes(NoSummary(), "10.0.0.8", token="t0k")  # type: ignore[arg-type]
    assert routes.handle("/api/v1/summary", "", None)[0] == 401
    assert routes.handle("/", "token=nope", None)[0] == 401
    assert routes.handle("/api/v1/summary", "", "Bearer t0k")[0] == 200
    assert routes.handle("/", "token=t0k", None)[0] == 200
    assert routes.handle("/metrics", "", None) is None  # the server's own routes stay as they were


def _browser_record(route: str, kind: str, **fields) -> str:
    rec = {"@timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "level": "info",
           "logger": "logpipe.browser", "message": f"browser {kind}", "service": "shop", "request_id": "r-1",
           "event.kind": "browser", "browser.type": kind, "page.path": route, "page.route": route, **fields}
    return json.dumps(rec)


def test_page_side_vitals_and_js_errors_beside_server_latency(tmp_path: Path) -> None:
    log = tmp_path / "browser.log"
    lcp = [800.0 + 37.0 * i for i in range(40)]  # p75 known exactly
    lines = [_browser_record("/cart", "pageview") for _ in range(40)]
    lines += [_browser_record("/cart", "vital", **{"vital.name": "LCP", "vital.value": v, "vital.rating": "good"})
              for v in lcp]
    lines += [_browser_record("/cart", "error", level="error", exception={"type": "TypeError", "message": "x"})
              for _ in range(4)]
    log.write_text("\n".join(lines) + "\n")
    car = Sidecar(tmp_path, log, fmt="json")
    try:
        s = car.wait(lambda s: s["pipeline"]["bytes_behind"] == 0 and s["pages"]
                     and s["pipeline"]["lines_read"] == len(lines), "browser records tailed", 60)
        page = s["pages"][0]
        assert page["route"] == "/cart"
        since = page["since_start"]
        assert since["page_views"] == 40 and since["js_errors"] == 4 and since["js_error_rate"] == 0.1
        expected = sorted(lcp)[int(0.75 * 40) - 1]  # nearest rank
        assert since["LCP"]["count"] == 40 and since["LCP"]["p75"] == pytest.approx(expected, rel=0.01)
        assert page["5m"]["LCP"]["p75"] == expected
        assert s["overall"]["since_start"]["count"] == 0  # page events are not server traffic
        html = dump_dom(car.base + "/?window=since_start")
        row = next(n for n in parse(html) if n["attrs"].get("data-page") == "/cart")
        cells = {c["attrs"].get("data-k"): c["text"] for c in row["children"]}
        assert cells["js_errors"] == "4" and float(cells["LCP"]) == pytest.approx(expected, rel=0.01)
        code, body = _get(car.base + "/metrics")
        assert b'logpipe_page_vital_p75{route="/cart",vital="LCP",window="since_start"}' in body
        assert b'logpipe_page_js_errors_total{route="/cart"} 4.0' in body
    finally:
        car.stop()
