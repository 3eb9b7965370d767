"""logpipe: structured logging for Python services and a log-shipping sidecar.

Public API only; everything else is an implementation detail.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "setup_logging",
    "shutdown_logging",
    "get_logger",
    "bind_context",
    "unbind_context",
    "request_context",
]


def __getattr__(name: str) -> Any:  # lazy: `logpipe tail` should not import the emit stack
    if name in ("setup_logging", "shutdown_logging", "get_logger"):
        from logpipe.emit import setup

        return getattr(setup, name)
    if name in ("bind_context", "unbind_context", "request_context"):
        from logpipe.emit import context

        return getattr(context, name)
    if name == "middleware":
        import importlib

        return importlib.import_module("logpipe.middleware")
    raise AttributeError(f"module 'logpipe' has no attribute {name!r}")
