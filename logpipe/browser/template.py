"""The one line a page needs: `<script src=… data-request-id=… defer>`, escaped for HTML."""

from __future__ import annotations

from html import escape


def script_tag(request_id: str | None = None, *, prefix: str = "/_logpipe") -> str:
    """HTML for the page's <head>; `request_id` is the page load's (e.g. the X-Request-ID the
    logging middleware gave this request) so the page's events join its server records."""
    rid = f' data-request-id="{escape(request_id, quote=True)}"' if request_id else ""
    src = escape(prefix.rstrip("/") + "/logpipe.js", quote=True)
    endpoint = escape(prefix.rstrip("/") + "/events", quote=True)
    return f'<script src="{src}" data-endpoint="{endpoint}"{rid} defer></script>'
