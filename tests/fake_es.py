"""The shared part of the loopback Elasticsearch stand-ins in tests: quiet logs and JSON replies
carrying the product header the official client insists on."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


class EsHandler(BaseHTTPRequestHandler):
    """Base for a stand-in's request handler; subclasses add do_GET/do_PUT/do_POST."""

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-elastic-product", "Elasticsearch")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
