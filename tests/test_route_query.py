"""Access records carry `route`, so `query 'route:"…"'` finds what the metrics count under it.

The framework's template when the middleware knows one (Flask url_rule, Starlette route path),
else the normaliser's (the same one the metrics use).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from emit_support import flushed, read_json_lines
from flask import Flask

from logpipe import fields as F
from logpipe.cli import cli
from logpipe.emit.setup import setup_logging, shutdown_logging
from logpipe.middleware import WSGILoggingMiddleware

LOGPIPE = [sys.executable, "-m", "logpipe"]


def _bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _call(app: Callable[..., Iterable[bytes]], path: str, query: str = "") -> None:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "t",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1"}
    body = app(environ, lambda *a, **k: None)
    list(body)
    body.close()  # type: ignore[attr-defined]


def _query(args: list[str], cwd: Path) -> list[dict[str, Any]]:
    res = CliRunner().invoke(cli, ["query", *args, "--json", "--limit", "100000"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    found = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
    return [r for r in found if F.EVENT_KIND not in r]  # the run's metric records name routes too


def test_query_by_route_finds_middleware_requests(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    setup_logging(service="routes", log_dir=logs, console="off")
    try:
        bare = WSGILoggingMiddleware(_bare_app)
        for path, query in (("/api/v1/users/42", ""), ("/api/v1/users/7", "tab=2"), ("/health", "")):
            _call(bare, path, query)
        flask = Flask("routes")
        flask.get("/api/v1/users/<int:uid>")(lambda uid: {"uid": uid})
        flask.wsgi_app = WSGILoggingMiddleware(flask.wsgi_app)  # type: ignore[method-assign]
        assert flask.test_client().get("/api/v1/users/9").json == {"uid": 9}
        flushed()
    finally:
        shutdown_logging()
    access = read_json_lines(logs / "access.log")
    assert [r[F.ROUTE] for r in access] == ["/api/v1/users/{id}", "/api/v1/users/{id}", "/health",
                                            "/api/v1/users/<int:uid>"]

    proc = subprocess.run(LOGPIPE + ["tail", str(logs / "access.log"), "--once", "--sink", f"file:{tmp_path / 'arch'}",
                                     "--checkpoint", str(tmp_path / "ck.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = _query(['route:"/api/v1/users/{id}"', "--archive", str(tmp_path / "arch")], tmp_path)
    assert sorted(r[F.PATH] for r in found) == ["/api/v1/users/42", "/api/v1/users/7"]
    found = _query(['route:"/api/v1/users/<int:uid>"', "--archive", str(tmp_path / "arch")], tmp_path)
    assert [r[F.PATH] for r in found] == ["/api/v1/users/9"]


def test_demo_routes_are_the_reports_routes(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    res = CliRunner().invoke(cli, ["demo", "--dir", str(logs), "--count", "500"])
    assert res.exit_code == 0, res.output
    access = read_json_lines(logs / "access.log")
    assert all(F.ROUTE in r for r in access)
    res = CliRunner().invoke(cli, ["report", str(logs / "access.log"), "--json"])
    assert res.exit_code == 0, res.output
    routes = {(r["method"], r["route"]): r["count"] for r in json.loads(res.stdout)["routes"]}
    assert routes == dict(Counter((r[F.METHOD], r[F.ROUTE]) for r in access))
    assert ("GET", "/api/v1/items/{id}") in routes and ("GET", "/api/v1/users/{id}") in routes  # README's query
