"""Browser events end to end: the demo page in real headless Chromium, its events as records.

Driver: our DevTools-protocol client (tests/cdp_support.py) on Debian's `chromium`, clicking
with trusted input so the page's Event Timing yields INP and LCP is finalised.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
from cdp_support import Browser

from logpipe.browser.schema import RATINGS

REPO = Path(__file__).resolve().parents[1]
VITALS = {"LCP", "CLS", "INP", "FCP", "TTFB"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _start_demo(log_dir: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), DEMO_LOG_DIR=str(log_dir), DEMO_ERROR_RATE="0", DEMO_SLOW_RATE="0")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "demo.app:create_app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=2):
                return proc, base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"demo did not start: {proc.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)


def _wait_records(path: Path, pred, what: str, limit_s: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + limit_s
    recs: list[dict] = []
    while time.monotonic() < deadline:
        recs = _records(path)
        if pred(recs):
            return recs
        time.sleep(0.2)
    raise AssertionError(f"{what}: not in {path.name} within {limit_s:g}s; have {recs}")


def test_demo_page_events_arrive_as_records_with_the_page_request_id(tmp_path: Path) -> None:
    proc, base = _start_demo(tmp_path)
    browser_log = tmp_path / "browser.log"
    try:
        browser = Browser(base + "/login?user=u-42")
        try:
            browser.wait_for("window.logpipe && window.logpipe.installed && document.readyState === 'complete'"
                             " && location.pathname === '/'")
            # as a user would: interact after the page has painted (LCP stops at the first input)
            browser.wait_for("performance.getEntriesByName('first-contentful-paint').length > 0")
            rid = browser.evaluate("window.logpipe.requestId")
            assert rid
            browser.click("#work")
            browser.wait_for("document.getElementById('out').textContent")
            browser.click("#break")
            browser.evaluate("window.logpipe.flush().then(() => true)", await_promise=True)
        finally:
            browser.close()

        def complete(recs: list[dict]) -> bool:
            types = {r.get("browser.type") for r in recs}
            return {"pageview", "error"} <= types and {r.get("vital.name") for r in recs} >= VITALS

        recs = _wait_records(browser_log, complete, "page view, error and all five vitals")
        assert all(r["event.kind"] == "browser" and r["request_id"] == rid for r in recs)
        assert all(r.get("user_id") == "u-42" for r in recs)  # from the beacon request's server-side context
        assert all(r["page.route"] == "/" for r in recs)
        for r in recs:
            if r["browser.type"] == "vital":
                assert r["vital.rating"] in RATINGS and r["vital.value"] >= 0
        assert next(r for r in recs if r.get("vital.name") == "INP")["vital.value"] > 0  # from the clicks
        err = next(r for r in recs if r["browser.type"] == "error")
        assert err["level"] == "error" and err["exception"]["type"] == "TypeError"
        assert "cannot read the invoice total" in err["exception"]["message"]
        assert "breakTheDemo" in err["exception"]["stack"]
        # the page load itself was logged by the service with the same request id
        access = _records(tmp_path / "access.log")
        assert any(a["request_id"] == rid and a["path"] == "/" and a["method"] == "GET" for a in access)
        # browser records stay out of the service's own files (and so out of its error counts)
        for name in ("app.log", "error.log", "access.log"):
            assert not [r for r in _records(tmp_path / name) if r.get("event.kind") == "browser"], name

        # bad beacons are rejected and counted; none of them is logged
        events = base + "/_logpipe/events"
        before = len(_records(browser_log))
        assert _post(events, b"x" * (100 * 1024))[0] == 413
        assert _post(events, b"{not json")[0] == 400
        assert _post(events, orjson.dumps({"events": [{"type": "keylogger", "url": base + "/"}]}))[0] == 400
        code, body = _post(events, orjson.dumps({"events": [{"type": "pageview", "url": base + "/"}]}),
                           {"Origin": "http://evil.example"})
        assert code == 403
        code, body = _post(events, orjson.dumps({"rid": "r-anon", "user_id": "forged", "events": [
            {"type": "pageview", "url": base + "/p?email=a@b.example", "user_id": "forged"}]}))
        assert code == 200 and body == {"accepted": 1, "rejected": {}}
        with urllib.request.urlopen(base + "/_logpipe/stats", timeout=5) as resp:
            counts = json.loads(resp.read())
        assert counts["rejected"] == {"too_large": 1, "bad_json": 1, "unknown_type": 1, "origin_not_allowed": 1}
        assert counts["accepted"]["error"] == 1 and counts["accepted"]["vital"] >= 5
        recs = _wait_records(browser_log, lambda rs: len(rs) == before + 1, "the anonymous page view")
        anon = recs[-1]
        assert anon["request_id"] == "r-anon" and "user_id" not in anon and anon["page.path"] == "/p"
    finally:
        proc.terminate()
        proc.wait(10)
