"""Health endpoints for services: liveness, readiness from registered checks, detailed figures.

    checks = logpipe.health.HealthChecks()
    checks.add("db", lambda: db.execute("select 1"), timeout_s=0.5)
    app = logpipe.health.asgi(app, checks)      # or logpipe.health.wsgi(wsgi_app, checks)
"""

from __future__ import annotations

from typing import Any

from logpipe.health.apps import HealthASGI, HealthEndpoints, HealthWSGI
from logpipe.health.checks import FAILING, OK, TIMED_OUT, CheckResult, HealthChecks, Readiness

__all__ = ["HealthChecks", "HealthASGI", "HealthWSGI", "HealthEndpoints", "CheckResult", "Readiness",
           "OK", "FAILING", "TIMED_OUT", "asgi", "wsgi"]


def asgi(app: Any = None, checks: HealthChecks | None = None, **options: Any) -> HealthASGI:
    """Serve /health, /health/ready, /health/detailed in front of an ASGI app."""
    return HealthASGI(app, checks, **options)


def wsgi(app: Any = None, checks: HealthChecks | None = None, **options: Any) -> HealthWSGI:
    """Serve /health, /health/ready, /health/detailed in front of a WSGI app."""
    return HealthWSGI(app, checks, **options)
