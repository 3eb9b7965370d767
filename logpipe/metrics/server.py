"""HTTP endpoint for `/metrics` (Prometheus text) and `/healthz` (200/503 + JSON reason).

Runs in a daemon thread (ThreadingHTTPServer) so a slow scraper never touches delivery.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from logpipe.metrics.dashboard_http import SECURITY_HEADERS, ExtraRoutes
from logpipe.stages import PipelineStats


def health(stats: PipelineStats, max_ack_age_s: float, now: float | None = None) -> tuple[bool, dict[str, Any]]:
    """Healthy while the sink acknowledges; idle with nothing pending is healthy too.

    Unhealthy when records are waiting (bytes behind or batches in flight) and the last
    acknowledgement (or the start, if none yet) is older than `max_ack_age_s`.
    """
    now = time.time() if now is None else now
    ref = stats.last_ack_at or stats.started_at or now
    age = max(0.0, now - ref)
    behind = stats.bytes_behind()
    pending = behind > 0 or stats.inflight_batches > 0
    body: dict[str, Any] = {
        "last_ack_age_s": round(age, 3),
        "bytes_behind": behind,
        "inflight_batches": stats.inflight_batches,
        "delivered": stats.delivered,
        "dead_lettered": stats.dead_lettered,
        "max_ack_age_s": max_ack_age_s,
    }
    if stats.sink_error:
        body["sink_error"] = stats.sink_error
    if pending and age > max_ack_age_s:
        since = "acknowledged" if stats.last_ack_at else "acknowledged anything since start"
        reason = (f"sink has not {since} for {age:.0f}s (limit {max_ack_age_s:g}s) "
                  f"with {behind} bytes behind")
        if stats.sink_error:
            reason += f"; last error: {stats.sink_error}"
        body.update(status="unhealthy", reason=reason)
        return False, body
    body.update(status="ok", reason="idle, nothing pending" if not pending else "sink acknowledging")
    return True, body


class MetricsServer:
    """Serves a registry and a health function on host:port; port 0 picks a free one."""

    def __init__(self, addr: str, registry: CollectorRegistry, stats: PipelineStats,
                 max_ack_age_s: float = 120.0, extra: ExtraRoutes | None = None) -> None:
        host, _, port = addr.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        self.registry = registry
        self.stats = stats
        self.max_ack_age_s = max_ack_age_s
        self.extra = extra
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                path, _, query = self.path.partition("?")
                if server.extra is not None and path not in ("/metrics", "/healthz", "/health"):
                    answer = server.extra.handle(path, query, self.headers.get("Authorization"))
                    if answer is not None:
                        code, ctype, body = answer
                        self._send(code, ctype, body, SECURITY_HEADERS)
                        return
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(server.registry))
                elif path in ("/healthz", "/health"):
                    ok, body = health(server.stats, server.max_ack_age_s)
                    self._send(200 if ok else 503, "application/json", orjson.dumps(body))
                else:
                    self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")

            def _send(self, code: int, ctype: str, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
                return None

        self.httpd = ThreadingHTTPServer((host, int(port)), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.host = host
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="logpipe-metrics-http", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(2.0)
