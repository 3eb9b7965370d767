"""logpipe.browser endpoint rules without a browser: limits, rate, CORS, identity, WSGI."""

from __future__ import annotations

import logging

import httpx
import orjson

from logpipe.browser import BrowserConfig, BrowserEvents, Limits, wsgi
from logpipe.browser.collector import Request


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def beacon(*events: dict, rid: str | None = "r-1", **extra) -> bytes:
    return orjson.dumps({"rid": rid, "events": list(events), **extra})


def req(body: bytes, client: str = "10.0.0.1", origin: str | None = None) -> Request:
    headers = {"origin": origin} if origin else {}
    return Request("POST", "/_logpipe/events", headers, client, "http://shop.example", body)


PV = {"type": "pageview", "url": "http://shop.example/cart"}


class Catch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def capture() -> Catch:
    h = Catch()
    lg = logging.getLogger("logpipe.browser")
    lg.addHandler(h)
    lg.setLevel(logging.DEBUG)
    return h


def release(h: Catch) -> None:
    logging.getLogger("logpipe.browser").removeHandler(h)


def test_per_client_rate_limit_refills_over_time():
    clock = Clock()
    ev = BrowserEvents(BrowserConfig(rate_per_s=1.0, rate_burst=3), clock=clock)
    codes = [ev.handle(req(beacon(PV))).status for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert ev.handle(req(beacon(PV), client="10.0.0.2")).status == 200  # another client is not affected
    clock.t += 2.0
    assert ev.handle(req(beacon(PV))).status == 200
    assert ev.counts()["rejected"] == {"rate_limited": 2}


def test_limits_cap_what_a_beacon_can_make_the_service_log():
    h = capture()
    try:
        ev = BrowserEvents(BrowserConfig(limits=Limits(max_events=3, max_message=50, max_stack=100)))
        huge = {"type": "error", "url": "http://shop.example/", "message": "m" * 5000, "stack": "s" * 5000}
        resp = ev.handle(req(beacon(huge, PV, PV, PV, PV)))
        assert resp.status == 200
        assert orjson.loads(resp.body) == {"accepted": 3, "rejected": {"too_many_events": 2}}
        err = [r for r in h.records if getattr(r, "browser.type", None) == "error"][0]
        exc = err.exception
        assert len(exc["message"]) <= 51 and len(exc["stack"]) <= 101
        bad = ev.handle(req(beacon({"type": "vital", "name": "LCP", "value": "fast", "url": "http://shop.example/"},
                                   {"type": "custom", "name": "x", "props": {"user_id": "u-9"}, "url": "http://s/"})))
        assert bad.status == 400 and orjson.loads(bad.body)["rejected"] == {"bad_field": 2}
        assert ev.counts()["rejected"] == {"too_many_events": 2, "bad_field": 2}
    finally:
        release(h)


def test_identity_only_from_server_side_context_and_query_strings_dropped():
    h = capture()
    try:
        ev = BrowserEvents(identity=lambda: {"user_id": "u-7", "workspace_id": "ws-1"})
        body = beacon({**PV, "url": "http://shop.example/cart?email=a@b.example#x", "user_id": "forged"},
                      user_id="forged", workspace_id="forged")
        assert ev.handle(req(body)).status == 200
        rec = h.records[-1]
        assert rec.user_id == "u-7" and rec.workspace_id == "ws-1" and rec.request_id == "r-1"
        assert getattr(rec, "page.path") == "/cart"
        anon = BrowserEvents()
        anon.handle(req(beacon(PV, rid="bad id with spaces")))
        rec = h.records[-1]
        assert not hasattr(rec, "user_id") and not hasattr(rec, "request_id")
    finally:
        release(h)


def test_cors_allow_list_and_preflight():
    ev = BrowserEvents(BrowserConfig(allowed_origins=("https://app.example",)))
    ok = ev.handle(req(beacon(PV), origin="https://app.example"))
    assert ok.status == 200 and ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Credentials" not in ok.headers
    assert ev.handle(req(beacon(PV), origin="https://evil.example")).status == 403
    assert ev.handle(req(beacon(PV), origin="http://shop.example")).status == 200  # same origin
    pre = ev.handle(Request("OPTIONS", "/_logpipe/events", {"origin": "https://app.example"}, "10.0.0.1",
                            "http://shop.example"))
    assert pre.status == 204 and pre.headers["Access-Control-Allow-Methods"] == "POST"
    assert ev.counts()["rejected"] == {"origin_not_allowed": 1}


def test_wsgi_app_refuses_a_large_body_without_reading_it_and_serves_the_script():
    app = wsgi(None)
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://shop.example")
    assert client.post("/_logpipe/events", content=b"x" * (70 * 1024)).status_code == 413
    assert client.post("/_logpipe/events", content=b"[1,2]").status_code == 400
    js = client.get("/_logpipe/logpipe.js")
    assert js.status_code == 200 and "sendBeacon" in js.text and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/_logpipe/stats").json()["rejected"] == {"too_large": 1, "not_object": 1}
    outside = httpx.Client(transport=httpx.WSGITransport(app=app, remote_addr="10.1.1.1"), base_url="http://s")
    assert outside.get("/_logpipe/stats").status_code == 403


def test_browser_records_get_their_own_index_and_tag_kind():
    from logpipe.es.naming import IndexNamer
    from logpipe.fields import record_kind
    from logpipe.ship.forward_tags import TagRenderer

    rec = {"@timestamp": "2026-12-04T10:00:00.000000Z", "level": "error", "service": "shop",
           "event.kind": "browser", "browser.type": "error"}
    assert IndexNamer("logpipe-{service}-%Y.%m.%d").index_for(rec) == "logpipe-browser-2026.12.04"
    assert record_kind(rec) == "browser" and TagRenderer("logpipe.{kind}").render(rec) == "logpipe.browser"
