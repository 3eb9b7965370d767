"""`LogpipeFormatter`: the same JSON line for handlers you configure yourself.

For frameworks that own logging configuration (Django's LOGGING, `logging.config.dictConfig`,
uvicorn's `log_config`): plug this formatter into any handler and records come out in
logpipe's shape, with context and scrubbing, without `setup_logging`'s queue and files.

    "formatters": {"json": {"()": "logpipe.emit.formatter.LogpipeFormatter", "service": "billing-api"}}
"""

from __future__ import annotations

import logging
from typing import Any

from logpipe.emit import render
from logpipe.emit.config import EmitConfig
from logpipe.emit.handlers import Writer
from logpipe.emit.processors import entry_from_record
from logpipe.scrub import Scrubber


class LogpipeFormatter(logging.Formatter):
    """Formats a LogRecord as one logpipe JSON record (no trailing newline)."""

    def __init__(self, service: str = "", environment: str = "", version: str = "", *, schema: str = "logpipe",
                 scrub: bool = True, mask_client_ip: bool = False, **_ignored: Any) -> None:
        super().__init__()
        cfg = EmitConfig(service=service, environment=environment, version=version, schema=schema).resolve()
        self._writer = Writer(static=render.static_fields(cfg.service, cfg.environment, cfg.version, cfg.host),
                              schema=cfg.schema, scrubber=Scrubber(mask_client_ip=mask_client_ip) if scrub else None,
                              app=None, error=None, access=None, console=None, file_level=0, console_level=0)

    def format(self, record: logging.LogRecord) -> str:
        writer = self._writer
        return writer.line(writer.record(entry_from_record(record))).decode("utf-8").rstrip("\n")
