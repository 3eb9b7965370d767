"""Records written by setup_logging: shape, order, context isolation, set-up behaviour."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from emit_support import (
    flushed,
    logdir_fixture,  # noqa: F401  (pytest fixture "logdir")
    read_json_lines,
)

from logpipe import bind_context, get_logger, request_context, unbind_context
from logpipe import fields as F
from logpipe.emit.setup import LoggingSetupError, setup_logging, shutdown_logging

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def test_stdlib_and_structlog_produce_the_same_shape(logdir: Path) -> None:
    log = get_logger("billing.api")
    with request_context(request_id="r-1", user_id="u-7", workspace_id="ws-42"):
        log.info("invoice created", invoice_id=991, amount_cents=1250)
        logging.getLogger("legacy.module").warning("plain %s call", "stdlib", extra={"k": 1})
    flushed()
    a, b = read_json_lines(logdir / "app.log")
    assert a[F.MESSAGE] == "invoice created" and a["invoice_id"] == 991 and a["amount_cents"] == 1250
    assert b[F.MESSAGE] == "plain stdlib call" and b["k"] == 1
    assert a[F.LEVEL] == "info" and b[F.LEVEL] == "warning"
    assert a[F.LOGGER] == "billing.api" and b[F.LOGGER] == "legacy.module"
    for rec in (a, b):
        assert TS.match(rec[F.TIMESTAMP]), rec[F.TIMESTAMP]
        assert (rec[F.SERVICE], rec[F.ENVIRONMENT], rec[F.VERSION]) == ("svc", "test", "9.9.9")
        assert rec[F.PID] == os.getpid() and rec[F.HOST]
        assert (rec[F.REQUEST_ID], rec[F.USER_ID], rec[F.WORKSPACE_ID]) == ("r-1", "u-7", "ws-42")
        keys = list(rec)
        assert keys[:12] == [F.TIMESTAMP, F.LEVEL, F.LOGGER, F.MESSAGE, F.SERVICE, F.ENVIRONMENT, F.VERSION,
                             F.HOST, F.PID, F.REQUEST_ID, F.USER_ID, F.WORKSPACE_ID]


def test_levels_route_to_error_log_and_exceptions_carry_stack(logdir: Path) -> None:
    log = get_logger("x")
    log.debug("dbg")
    try:
        raise ValueError("bad thing")
    except ValueError:
        log.exception("structlog failure")
        logging.getLogger("y").exception("stdlib failure")
    logging.getLogger("y").critical("crit")
    flushed()
    app = read_json_lines(logdir / "app.log")
    err = read_json_lines(logdir / "error.log")
    assert [r[F.MESSAGE] for r in app] == ["dbg", "structlog failure", "stdlib failure", "crit"]
    assert [r[F.MESSAGE] for r in err] == ["structlog failure", "stdlib failure", "crit"]
    for rec in err[:2]:
        exc = rec[F.EXCEPTION]
        assert exc["type"] == "ValueError" and exc["message"] == "bad thing"
        assert exc["stack"].startswith("Traceback") and 'raise ValueError("bad thing")' in exc["stack"]
    assert err[2][F.LEVEL] == "critical"


def test_context_is_isolated_across_threads_and_tasks(logdir: Path) -> None:
    log = get_logger("iso")
    std = logging.getLogger("iso.std")
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        with request_context(request_id=f"t-{n}", user_id=f"tu-{n}"):
            barrier.wait()
            for i in range(50):
                log.info("thread", n=n, i=i)
                std.info("thread-std", extra={"n": n, "i": i})

    async def task(n: int) -> None:
        bind_context(request_id=f"a-{n}", workspace_id=f"ws-{n}")
        for i in range(50):
            log.info("task", n=n, i=i)
            std.info("task-std", extra={"n": n, "i": i})
            await asyncio.sleep(0)
        unbind_context("workspace_id")
        log.info("task-unbound", n=n)

    async def tasks() -> None:
        await asyncio.gather(*(task(n) for n in range(4)))

    bind_context(user_id="outer")
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    asyncio.run(tasks())
    for t in threads:
        t.join()
    log.info("outer")
    unbind_context("user_id")
    flushed()
    recs = read_json_lines(logdir / "app.log")
    assert len(recs) == 4 * 100 + 4 * 101 + 1
    for rec in recs:
        msg, n = rec[F.MESSAGE], rec.get("n")
        if msg.startswith("thread"):
            assert rec[F.REQUEST_ID] == f"t-{n}" and rec[F.USER_ID] == f"tu-{n}"
            assert F.WORKSPACE_ID not in rec
        elif msg == "task-unbound":
            assert rec[F.REQUEST_ID] == f"a-{n}" and F.WORKSPACE_ID not in rec
        elif msg.startswith("task"):
            assert rec[F.REQUEST_ID] == f"a-{n}" and rec[F.WORKSPACE_ID] == f"ws-{n}"
            assert rec[F.USER_ID] == "outer"  # copied from the parent context at task creation
        else:
            assert msg == "outer" and rec[F.USER_ID] == "outer" and F.REQUEST_ID not in rec


def test_request_context_restores_previous_values() -> None:
    from logpipe.emit.context import get_context

    bind_context(user_id="u-1")
    with request_context(user_id="u-2", request_id="r"):
        assert dict(get_context()) == {"request_id": "r", "user_id": "u-2"}
    assert dict(get_context()) == {"user_id": "u-1"}
    unbind_context("user_id", "nope")
    assert dict(get_context()) == {}


def test_setup_twice_does_not_duplicate(tmp_path: Path) -> None:
    try:
        setup_logging(service="a", log_dir=tmp_path, console="off")
        setup_logging(service="b", log_dir=tmp_path, console="off")
        logging.getLogger("dup").warning("once")
        get_logger("dup").warning("once more")
        assert sum(1 for h in logging.getLogger().handlers if getattr(h, "logpipe", False)) == 1
    finally:
        shutdown_logging()
    recs = read_json_lines(tmp_path / "app.log")
    assert [(r[F.MESSAGE], r[F.SERVICE]) for r in recs] == [("once", "b"), ("once more", "b")]


def test_identity_falls_back_to_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGPIPE_SERVICE", "env-svc")
    monkeypatch.setenv("ENVIRONMENT", "staging")
    monkeypatch.setenv("APP_VERSION", "3.2.1")
    try:
        setup_logging(log_dir=tmp_path, console="off")
        logging.getLogger("e").info("hi")
    finally:
        shutdown_logging()
    (rec,) = read_json_lines(tmp_path / "app.log")
    assert (rec[F.SERVICE], rec[F.ENVIRONMENT], rec[F.VERSION]) == ("env-svc", "staging", "3.2.1")


def test_noisy_loggers_quieted_and_configurable(tmp_path: Path) -> None:
    try:
        setup_logging(log_dir=tmp_path, console="off", quiet_loggers={"chatty.lib": "ERROR"})
        logging.getLogger("uvicorn.access").info("GET / 200")
        logging.getLogger("sqlalchemy.engine").info("SELECT 1")
        logging.getLogger("chatty.lib").warning("meh")
        logging.getLogger("chatty.lib").error("real problem")
    finally:
        shutdown_logging()
    assert [r[F.MESSAGE] for r in read_json_lines(tmp_path / "app.log")] == ["real problem"]


def test_ecs_schema(tmp_path: Path) -> None:
    try:
        setup_logging(service="s", log_dir=tmp_path, console="off", schema="ecs")
        with request_context(request_id="r-9", user_id="u-1"):
            get_logger("ecs").warning("hello", order_id=5)
    finally:
        shutdown_logging()
    (rec,) = read_json_lines(tmp_path / "app.log")
    assert rec["log"] == {"level": "warning", "logger": "ecs"}
    assert rec["service"]["name"] == "s" and rec["user"]["id"] == "u-1"
    assert rec["http"]["request"]["id"] == "r-9" and rec["labels"]["order_id"] == 5
    assert TS.match(rec["@timestamp"])


def test_console_json_when_not_a_tty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        setup_logging(service="c", console="auto")
        logging.getLogger("con").info("to console", extra={"n": 1})
    finally:
        shutdown_logging()
    out = capsys.readouterr().out.strip().splitlines()
    recs = [json.loads(x) for x in out]
    assert [(r[F.MESSAGE], r["n"]) for r in recs] == [("to console", 1)]


def test_console_pretty_when_forced(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        setup_logging(service="c", console="pretty")
        logging.getLogger("con").warning("readable", extra={"n": 2})
    finally:
        shutdown_logging()
    out = capsys.readouterr().out
    assert "WARNING" in out and "con:" in out and "readable" in out and "n=2" in out
    assert not out.lstrip().startswith("{")


def test_unwritable_log_dir_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LoggingSetupError, match=re.escape(str(blocker / "logs"))):
        setup_logging(log_dir=blocker / "logs", console="off")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # running as root: permissions are not enforced
            ro = Path("/proc/logpipe-cannot-exist")
        with pytest.raises(LoggingSetupError, match=re.escape(str(ro))):
            setup_logging(log_dir=ro, console="off")
    finally:
        (tmp_path / "ro").chmod(0o700)


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(TypeError, match="colour_scheme"):
        setup_logging(colour_scheme="x")


def test_records_are_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    code = (
        "import logging, logpipe\n"
        f"logpipe.setup_logging(service='exit', log_dir={str(tmp_path)!r}, console='off')\n"
        "log = logpipe.get_logger('exit')\n"
        "for i in range(3000):\n"
        "    log.info('rec', i=i)\n"
        "    logging.getLogger('std').info('std %d', i)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    recs = read_json_lines(tmp_path / "app.log")
    assert len(recs) == 6000
    assert [r["i"] for r in recs if r[F.LOGGER] == "exit"] == list(range(3000))


def test_opentelemetry_ids_added_when_a_span_is_active(logdir: Path) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    ctx = SpanContext(trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7, is_remote=False,
                      trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(ctx)):
        logging.getLogger("otel").info("in span")
    logging.getLogger("otel").info("no span")
    flushed()
    a, b = read_json_lines(logdir / "app.log")
    assert a[F.TRACE_ID] == "4bf92f3577b34da6a3ce929d0e0e4736" and a[F.SPAN_ID] == "00f067aa0ba902b7"
    assert F.TRACE_ID not in b


def test_forked_child_logs_through_its_own_writer(tmp_path: Path) -> None:
    try:
        setup_logging(service="fork", log_dir=tmp_path, console="off")
        logging.getLogger("parent").info("before fork")
        pid = os.fork()
        if pid == 0:  # child: log, flush, leave without running the parent's test machinery
            code = 1
            try:
                logging.getLogger("child").info("from child", extra={"child_pid": os.getpid()})
                shutdown_logging()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        logging.getLogger("parent").info("after fork")
    finally:
        shutdown_logging()
    recs = read_json_lines(tmp_path / "app.log")
    assert sorted(r[F.MESSAGE] for r in recs) == ["after fork", "before fork", "from child"]
    (child,) = [r for r in recs if r[F.MESSAGE] == "from child"]
    assert child[F.PID] == child["child_pid"] != os.getpid()


def test_formatter_for_user_configured_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    import logging.config

    logging.config.dictConfig({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": "logpipe.emit.formatter.LogpipeFormatter", "service": "django-app"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "loggers": {"djangoish": {"handlers": ["out"], "level": "INFO", "propagate": False}},
    })
    log = logging.getLogger("djangoish")
    try:
        with request_context(request_id="r-5"):
            log.warning("signup from %s", "ann@example.com", extra={"plan": "pro"})
    finally:
        for h in list(log.handlers):
            log.removeHandler(h)
    (line,) = capsys.readouterr().out.splitlines()
    rec = json.loads(line)
    assert list(rec)[:5] == [F.TIMESTAMP, F.LEVEL, F.LOGGER, F.MESSAGE, F.SERVICE]
    assert rec[F.SERVICE] == "django-app" and rec[F.REQUEST_ID] == "r-5" and rec["plan"] == "pro"
    assert rec[F.MESSAGE] == "signup from [REDACTED:email]"


def test_structlog_bound_context_fields_keep_schema_order(logdir: Path) -> None:
    log = get_logger("bound").bind(user_id="u-bound")
    with request_context(request_id="r-1", tenant="t-1"):
        log.info("hello", detail=1)
    flushed()
    (rec,) = read_json_lines(logdir / "app.log")
    assert list(rec)[9:] == [F.REQUEST_ID, F.USER_ID, "tenant", "detail"]
    assert rec[F.USER_ID] == "u-bound"


def test_a_slow_disk_does_not_block_callers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from logpipe.emit import files

    real_append = files.LogFile._append

    def slow_append(self: files.LogFile, data: bytes) -> None:
        time.sleep(0.3)
        real_append(self, data)

    monkeypatch.setattr(files.LogFile, "_append", slow_append)
    try:
        setup_logging(service="slow", log_dir=tmp_path, console="off")
        log = logging.getLogger("slow")
        start = time.perf_counter()
        for i in range(200):
            log.info("req %d", i)
            if i == 0:
                time.sleep(0.05)  # let the writer pick up the first record and stall on the disk
        elapsed = time.perf_counter() - start
    finally:
        shutdown_logging()
    assert elapsed < 0.25  # the callers never waited for the 0.3 s writes
    assert [r[F.MESSAGE] for r in read_json_lines(tmp_path / "app.log")] == [f"req {i}" for i in range(200)]


def test_write_errors_are_reported_and_the_writer_keeps_going(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from logpipe.emit import files

    real_append = files.LogFile._append
    failing = [True]

    def flaky_append(self: files.LogFile, data: bytes) -> None:
        if failing[0]:
            raise OSError(28, "No space left on device")
        real_append(self, data)

    monkeypatch.setattr(files.LogFile, "_append", flaky_append)
    monkeypatch.setattr(files, "_warned", set())
    try:
        setup_logging(service="disk", log_dir=tmp_path, console="off")
        logging.getLogger("disk").info("lost while the disk is full")
        flushed()
        failing[0] = False
        logging.getLogger("disk").info("written after recovery")
        flushed()
    finally:
        shutdown_logging()
    assert "No space left on device" in capsys.readouterr().err
    assert [r[F.MESSAGE] for r in read_json_lines(tmp_path / "app.log")] == ["written after recovery"]
