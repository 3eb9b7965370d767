"""Browser events: page views, Web Vitals, JavaScript errors and custom events as records.

    app = logpipe.browser.asgi(app)          # or flask_app.wsgi_app = logpipe.browser.wsgi(flask_app.wsgi_app)
    # in the page's <head>:  {{ logpipe_script_tag(request_id) }}

Each accepted event is one record (`event.kind = "browser"`) through setup_logging.
"""

from __future__ import annotations

from typing import Any

from logpipe.browser.apps import BrowserASGI, BrowserWSGI
from logpipe.browser.collector import BrowserConfig, BrowserEvents
from logpipe.browser.schema import Limits
from logpipe.browser.template import script_tag

__all__ = ["BrowserASGI", "BrowserWSGI", "BrowserConfig", "BrowserEvents", "Limits", "script_tag",
           "asgi", "wsgi"]


def asgi(app: Any = None, events: BrowserEvents | None = None, **config: Any) -> BrowserASGI:
    """Serve /_logpipe/logpipe.js and accept /_logpipe/events in front of an ASGI app."""
    return BrowserASGI(app, events or BrowserEvents(BrowserConfig(**config)))


def wsgi(app: Any = None, events: BrowserEvents | None = None, **config: Any) -> BrowserWSGI:
    """Serve /_logpipe/logpipe.js and accept /_logpipe/events in front of a WSGI app."""
    return BrowserWSGI(app, events or BrowserEvents(BrowserConfig(**config)))
