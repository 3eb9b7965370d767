"""`setup_logging`: wire stdlib logging and structlog into one queue -> writer -> files path.

Safe to call again (the previous set-up is flushed and replaced, never duplicated);
`shutdown_logging` (also run at interpreter exit) writes everything still queued.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from logpipe.emit import files, render
from logpipe.emit import handlers as H
from logpipe.emit import processors as P
from logpipe.emit.config import EmitConfig
from logpipe.scrub import Scrubber

__all__ = ["setup_logging", "shutdown_logging", "get_logger", "flush_logging", "LoggingSetupError"]


class LoggingSetupError(RuntimeError):
    """setup_logging could not do what it was asked (e.g. log_dir not writable)."""


class _State:
    def __init__(self, cfg: EmitConfig, q: H.Handoff, handler: H.EntryQueueHandler,
                 listener: H.BatchListener, kwargs: dict[str, Any], gate: H.QueueGate) -> None:
        self.cfg = cfg
        self.kwargs = kwargs
        self.queue = q
        self.gate = gate
        self.handler = handler
        self.listener = listener


_lock = threading.RLock()
_state: _State | None = None
_atexit_registered = False
_structlog_configured = False
_fallback_writer: H.Writer | None = None


def _level(value: str | int) -> int:
    if isinstance(value, int):
        return value
    lv = logging.getLevelName(str(value).upper())
    if not isinstance(lv, int):
        raise ValueError(f"unknown log level {value!r}")
    return lv


def _check_dir(log_dir: str | os.PathLike[str]) -> Path:
    path = Path(log_dir).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LoggingSetupError(f"log_dir {str(path)!r} cannot be created: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise LoggingSetupError(f"log_dir {str(path)!r} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise LoggingSetupError(f"log_dir {str(path)!r} is not writable")
    return path


def _open_files(cfg: EmitConfig, path: Path) -> tuple[files.LogFile, files.LogFile, files.LogFile]:
    try:
        app = files.SizeRotatingFile(path / "app.log", cfg.app_max_bytes, cfg.app_backup_count)
        err = files.TimedRotatingFile(path / "error.log", cfg.error_backup_count)
        acc = files.TimedRotatingFile(path / "access.log", cfg.access_backup_count)
    except OSError as exc:
        raise LoggingSetupError(f"log_dir {str(path)!r}: cannot open log file {exc.filename!r}: "
                                f"{exc.strerror or exc}") from None
    return app, err, acc


def _browser_file(cfg: EmitConfig, path: Path) -> Callable[[], files.LogFile]:
    """browser.log (page events from logpipe.browser), rotated like access.log, opened on first use."""
    return lambda: files.TimedRotatingFile(path / "browser.log", cfg.access_backup_count)


def _console(cfg: EmitConfig) -> H.Console | None:
    if cfg.console == "off":
        return None
    tty = bool(getattr(sys.stdout, "isatty", lambda: False)())
    pretty = cfg.console == "pretty" or (cfg.console == "auto" and tty)
    return H.Console(pretty=pretty, colour=pretty and tty and not os.environ.get("NO_COLOR"))


def _scrubber(cfg: EmitConfig) -> Scrubber | None:
    if not cfg.scrub:
        return None
    key: bytes | None = None
    if cfg.scrub_mode == "pseudonym":
        raw = os.environ.get(cfg.scrub_key_env, "")
        if not raw:
            raise LoggingSetupError(f"scrub_mode='pseudonym' needs an HMAC key in ${cfg.scrub_key_env}")
        key = raw.encode()
    return Scrubber(mode=cfg.scrub_mode, key=key, extra_keys=cfg.scrub_extra_keys,
                    extra_patterns=cfg.scrub_extra_patterns, allow_keys=cfg.scrub_allow_keys,
                    mask_client_ip=cfg.mask_client_ip)


def setup_logging(
    service: str = "",
    environment: str = "",
    version: str = "",
    log_dir: str | os.PathLike[str] | None = None,
    level: str | int = "INFO",
    **options: Any,
) -> None:
    """Send stdlib logging and structlog through logpipe: JSON records, context, scrubbing, files.

    service/environment/version fall back to $LOGPIPE_SERVICE / $ENVIRONMENT / $APP_VERSION.
    With `log_dir`: app.log (INFO+, size-rotated), error.log (ERROR+, daily), access.log
    (access records, daily); rotated generations are gzipped. Other options (see
    `EmitConfig`): console=auto|json|pretty|off, schema=logpipe|ecs, scrub, scrub_mode,
    scrub_extra_keys, scrub_extra_patterns, scrub_allow_keys, mask_client_ip,
    app_max_bytes, app_backup_count, error_backup_count, access_backup_count,
    quiet_loggers={name: level}, console_level, queue_max_entries / queue_max_wait_s (when the
    writer falls that far behind, callers wait up to that long, then records are dropped and a
    warning record counts them).
    """
    global _state, _atexit_registered
    kwargs = dict(options, service=service, environment=environment, version=version,
                  log_dir=None if log_dir is None else os.fspath(log_dir),
                  level=logging.getLevelName(_level(level)))
    cfg = EmitConfig.from_kwargs(dict(kwargs)).resolve()
    file_level = _level(cfg.level)
    console_level = _level(cfg.console_level or cfg.level)
    scrubber = _scrubber(cfg)
    log_path = _check_dir(cfg.log_dir) if cfg.log_dir is not None else None
    with _lock:
        shutdown_logging()
        logfiles: tuple[files.LogFile | None, ...] = (None, None, None)
        if log_path is not None:
            logfiles = _open_files(cfg, log_path)
        writer = H.Writer(static=render.static_fields(cfg.service, cfg.environment, cfg.version, cfg.host),
                          schema=cfg.schema, scrubber=scrubber, app=logfiles[0], error=logfiles[1],
                          access=logfiles[2], console=_console(cfg), file_level=file_level,
                          console_level=console_level,
                          browser=None if log_path is None else _browser_file(cfg, log_path))
        q = H.Handoff()
        gate = H.QueueGate(q, cfg.queue_max_entries, cfg.queue_max_wait_s)
        handler = H.EntryQueueHandler(q, gate)
        listener = H.BatchListener(q, writer, gate)
        root = logging.getLogger()
        for old in [h for h in root.handlers if getattr(h, "logpipe", False)]:
            root.removeHandler(old)
        root.addHandler(handler)
        root.setLevel(min(file_level, console_level))
        for name, lv in cfg.quiet_loggers.items():
            logging.getLogger(name).setLevel(_level(lv))
        for name in _SERVER_ERROR_LOGGERS:
            server_logger = logging.getLogger(name)
            if not any(isinstance(f, _AlreadyLogged) for f in server_logger.filters):
                server_logger.addFilter(_AlreadyLogged())
        listener.start()
        _state = _State(cfg, q, handler, listener, kwargs, gate)
        _configure_structlog(min(file_level, console_level))
        if not _atexit_registered:
            atexit.register(shutdown_logging)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_restart_in_child)
            _atexit_registered = True


def _restart_in_child() -> None:
    """A forked worker (gunicorn --preload, multiprocessing) has no writer thread: start its own.

    The queue copied from the parent is dropped, not written: the parent writes those
    entries itself, so writing them here too would duplicate them.
    """
    global _state, _lock
    _lock = threading.RLock()  # may have been held by another thread at fork time
    st = _state
    if st is None:
        return
    _state = None
    logging.getLogger().removeHandler(st.handler)
    try:
        kw = dict(st.kwargs)
        setup_logging(**kw)
    except Exception as exc:  # never break the child over logging
        sys.stderr.write(f"logpipe: could not restart logging after fork: {exc}\n")


# ASGI servers log an exception that escapes the app; our middleware already logged it.
_SERVER_ERROR_LOGGERS = ("uvicorn.error", "hypercorn.error")


class _AlreadyLogged(logging.Filter):
    """Drops a server's second report of an exception the middleware logged (logged once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, "_logpipe_logged", False)


def direct_put(logger: logging.Logger, levelno: int) -> Callable[[P.Entry], None] | None:
    """The queue's put, when a record from `logger` at `levelno` would reach logpipe's handler and
    nothing else: no other handler on the way to the root (a user's handler, pytest's caplog),
    no filter, no custom LogRecord factory. Then a caller may queue an entry without building
    a LogRecord; otherwise (None) it logs through stdlib logging so everything sees the record.
    The caller has checked `logger.isEnabledFor(levelno)`.
    """
    st = _state
    if st is None or logger.filters or logger.disabled or logging.getLogRecordFactory() is not logging.LogRecord:
        return None
    ours = st.handler
    if ours.filters or levelno < ours.level:
        return None
    found = False
    node: logging.Logger | None = logger
    while node is not None:
        handlers = node.handlers
        if handlers:
            if found or len(handlers) != 1 or handlers[0] is not ours:
                return None
            found = True
        if not node.propagate:
            break
        node = node.parent
    return st.gate.put if found else None


def _put(entry: P.Entry) -> None:
    st = _state
    if st is not None:
        st.gate.put(entry)
        return
    _write_unconfigured([entry])


def _write_unconfigured(entries: list[P.Entry]) -> None:
    """After shutdown (or before set-up) structlog calls still produce one JSON line on stderr."""
    global _fallback_writer
    if _fallback_writer is None:
        _fallback_writer = H.Writer(static=render.static_fields("unknown", "", "", ""), schema="logpipe",
                                    scrubber=Scrubber(), app=None, error=None, access=None, console=None,
                                    file_level=logging.INFO, console_level=logging.INFO)
    w = _fallback_writer
    for entry in entries:
        if entry[1] >= logging.INFO:
            try:
                sys.stderr.write(w.line(w.record(entry)).decode("utf-8", "replace"))
            except Exception:
                pass


def _configure_structlog(min_level: int) -> None:
    global _structlog_configured
    structlog.configure(
        processors=[P.make_structlog_processor(_put)],
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=P.sink_factory,
        cache_logger_on_first_use=True,
    )
    _structlog_configured = True


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger: `log.info("invoice created", invoice_id=991)`; same records as stdlib."""
    if not _structlog_configured:
        _configure_structlog(logging.INFO)
    return structlog.get_logger(name or "root", **initial)


def flush_logging(timeout: float = 5.0) -> bool:
    """Block until every record logged so far is written; False if `timeout` passed first."""
    st = _state
    if st is None:
        return True
    return st.listener.flush(timeout)


def shutdown_logging(timeout: float = 5.0) -> bool:
    """Flush and close everything; records logged before this call are on disk afterwards.

    Waits at most `timeout` seconds for the writer: with a disk that hangs, it says on stderr
    that records are left unwritten and returns False, so the process can still exit."""
    global _state
    with _lock:
        st = _state
        if st is None:
            return True
        root = logging.getLogger()
        root.removeHandler(st.handler)
        _state = None
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            finished = st.listener.stop(timeout)
        except Exception:
            finished = True
        if finished:
            closer = threading.Thread(target=_drain_and_close, args=(st.listener,), name="logpipe-close",
                                      daemon=True)
            try:
                closer.start()
            except RuntimeError:  # no new threads this late in interpreter shutdown
                _drain_and_close(st.listener)
            else:
                closer.join(max(0.0, deadline - time.monotonic()))
                finished = not closer.is_alive()
        if not finished:
            sys.stderr.write(f"logpipe: the log writer did not finish within {timeout:g}s (is the disk hung?); "
                             f"records still queued were not written\n")
        return finished


def _drain_and_close(listener: H.BatchListener) -> None:
    listener.drain()
    listener.writer.close()


def queue_stats() -> dict[str, int] | None:
    """Depth and drops of the logging queue (None before `setup_logging`); read by health endpoints."""
    st = _state
    if st is None:
        return None
    return {"depth": st.queue.qsize(), "dropped_total": st.gate.dropped_total,
            "limit": st.gate.limit}
