"""Settings for `setup_logging`: one dataclass, with environment fallbacks resolved here."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

#: Third-party loggers that flood at INFO; quieted to WARNING unless overridden.
DEFAULT_QUIET: dict[str, str] = {
    "uvicorn.access": "WARNING",
    "sqlalchemy.engine": "WARNING",
    "watchfiles": "WARNING",
    "watchfiles.main": "WARNING",
    "httpx": "WARNING",
    "httpcore": "WARNING",
    "urllib3": "WARNING",
    "asyncio": "WARNING",
}


@dataclass
class EmitConfig:
    """Everything `setup_logging` accepts; see its docstring for meanings."""

    service: str = ""
    environment: str = ""
    version: str = ""
    level: str = "INFO"
    log_dir: str | None = None
    console: str = "auto"  # auto | json | pretty | off
    console_level: str = ""  # defaults to `level`
    schema: str = "logpipe"  # logpipe | ecs
    scrub: bool = True
    scrub_mode: str = "redact"
    scrub_key_env: str = "LOGPIPE_SCRUB_KEY"
    scrub_extra_keys: tuple[str, ...] = ()
    scrub_extra_patterns: tuple[str, ...] = ()
    scrub_allow_keys: tuple[str, ...] = ()
    mask_client_ip: bool = False
    app_max_bytes: int = 10 * 1024 * 1024
    app_backup_count: int = 5
    error_backup_count: int = 30
    access_backup_count: int = 30
    quiet_loggers: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_QUIET))
    host: str = ""
    queue_max_entries: int = 100_000  # records waiting for the writer before callers wait
    queue_max_wait_s: float = 1.0  # longest a caller waits for room; then records are dropped and counted

    def resolve(self) -> EmitConfig:
        """Fill service/environment/version/host from the environment; validate choices."""
        self.service = self.service or os.environ.get("LOGPIPE_SERVICE", "") or "unknown"
        self.environment = self.environment or os.environ.get("ENVIRONMENT", "") or "dev"
        self.version = self.version or os.environ.get("APP_VERSION", "") or "0.0.0"
        self.host = self.host or socket.gethostname()
        if self.console not in ("auto", "json", "pretty", "off"):
            raise ValueError(f"console must be auto | json | pretty | off, got {self.console!r}")
        if self.schema not in ("logpipe", "ecs"):
            raise ValueError(f"schema must be 'logpipe' or 'ecs', got {self.schema!r}")
        if self.app_max_bytes < 1024:
            raise ValueError(f"app_max_bytes must be at least 1024, got {self.app_max_bytes}")
        for name in ("app_backup_count", "error_backup_count", "access_backup_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        return self

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> EmitConfig:
        """Build from `setup_logging(**kwargs)`, naming any unknown option."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"setup_logging() got unknown option(s): {', '.join(unknown)}")
        quiet = kwargs.pop("quiet_loggers", None)
        cfg = cls(**kwargs)
        if quiet is not None:
            cfg.quiet_loggers = {**DEFAULT_QUIET, **quiet}
        return cfg
