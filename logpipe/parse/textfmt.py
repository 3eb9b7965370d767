"""Line formats written by Python programs: logging's text formats, the access text line,
uvicorn's console lines, and raw text.

One compiled regex per event, applied to its first line; a traceback joined below that line
becomes the record's `exception` and `message` stays the human message.
"""

from __future__ import annotations

import re
from typing import Any

from logpipe import fields as F
from logpipe.parse.common import failure, first_line, level_name, split_query
from logpipe.parse.exc import split_traceback
from logpipe.parse.timefmt import TimeConverter, now_iso

FUNCTION = "function"
LINENO = "lineno"

ASCTIME = (r"(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[,.]\d{1,9})?"
           r"(?: ?(?:Z|[+-]\d{2}:?\d{2}))?)")
_LEVEL_WORDS = r"(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL|NOTSET|TRACE)"
#: `%(asctime)s - %(name)s - %(levelname)s - %(funcName)s:%(lineno)d - %(message)s`, and the
#: logging cookbook's `%(asctime)s - %(name)s - %(levelname)s - %(message)s` (no function).
PYTHON_RE = re.compile(
    ASCTIME + r" - (?P<name>(?!" + _LEVEL_WORDS + r" - )\S+) - (?P<level>[A-Z]+) *- "
    r"(?:(?P<func>[A-Za-z_]\w*|<\w+>):(?P<line>\d+) - )?(?P<msg>.*)")
#: `%(asctime)s - %(levelname)s - %(message)s`
PYTHON_SHORT_RE = re.compile(ASCTIME + r" - (?P<level>[A-Z]+) *- (?P<msg>.*)")
_ACCESS = (r"(?P<ip>\S+) - (?P<method>[A-Z]+) (?P<path>\S+) - Status: (?P<status>\d{3})"
           r" - Time: (?P<secs>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)s\s*$")
#: `<ip> - <METHOD> <path> - Status: <code> - Time: <seconds>s`, optionally after an asctime/level prefix.
ACCESS_TEXT_RE = re.compile(r"(?:" + ASCTIME + r" - (?:(?P<level>[A-Z]+) *- )?)?" + _ACCESS)
_ACCESS_IN_MSG = re.compile(_ACCESS)
#: uvicorn console: `INFO:     127.0.0.1:54321 - "GET /path HTTP/1.1" 200 OK` and its other lines.
UVICORN_RE = re.compile(
    r'(?P<level>[A-Z]+): +(?P<body>(?:(?P<ip>\S+):(?P<port>\d+) )?- "(?P<method>[A-Z]+) (?P<path>\S+)'
    r' HTTP/[\d.]+" (?P<status>\d{3})\b.*|\S.*)')
#: uvicorn's access message logged through a Python text format (`uvicorn.access` logger).
_UVICORN_IN_MSG = re.compile(
    r'(?:(?P<ip>\S+):(?P<port>\d+) )?- "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})\b')


def _level(name: str) -> str:
    return _LEVELS.get(name) or level_name(name)


_LEVELS = {n: level_name(n) for n in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "TRACE")}


class _TextParser:
    """Shared construction and the never-raise batch loop."""

    def __init__(self, *, tz: str = "UTC", service: str = "") -> None:
        self.times = TimeConverter(tz)
        self.service = service
        self.failed = 0  # lines shipped as _parse_failure so far

    def parse_batch(self, texts: list[str]) -> list[dict[str, Any]]:
        now = now_iso()
        one = self._one
        service = self.service
        out: list[dict[str, Any]] = []
        append = out.append
        for text in texts:
            try:
                rec = one(text, now)
            except Exception:
                rec = None
            if rec is None:
                self.failed += 1
                rec = failure(text, now, service)
            elif service and F.SERVICE not in rec:
                rec[F.SERVICE] = service
            append(rec)
        return out

    def _one(self, text: str, now: str) -> dict[str, Any] | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _message(self, msg: str, rest: str, rec: dict[str, Any]) -> None:
        """Set message (and exception) from the first line's message and the joined rest."""
        if msg.endswith("\r"):
            msg = msg[:-1]
        if rest:
            head, exception = split_traceback(msg + "\n" + rest)
            rec[F.MESSAGE] = head
            if exception is not None:
                rec[F.EXCEPTION] = exception
        else:
            rec[F.MESSAGE] = msg
        if " - Status: " in msg:
            am = _ACCESS_IN_MSG.match(msg)
            if am is not None:
                _access_fields(am, rec)
        elif " HTTP/" in msg:
            um = _UVICORN_IN_MSG.match(msg)
            if um is not None:
                rec[F.METHOD] = um.group("method")
                rec[F.PATH] = split_query(um.group("path"))
                rec[F.STATUS] = int(um.group("status"))
                if um.group("ip"):
                    rec[F.CLIENT_IP] = um.group("ip")


def _access_fields(m: re.Match[str], rec: dict[str, Any]) -> None:
    ip, method, path, status, secs = m.group("ip", "method", "path", "status", "secs")
    rec[F.METHOD] = method
    rec[F.PATH] = path.partition("?")[0] if "?" in path else path
    rec[F.STATUS] = int(status)
    ms = float(secs) * 1000.0
    if ms < 1e15:  # '1e400s' would be infinity, which JSON cannot carry
        rec[F.DURATION_MS] = round(ms, 3)
    rec[F.CLIENT_IP] = ip


class PythonParser(_TextParser):
    """`%(asctime)s - %(name)s - %(levelname)s - %(funcName)s:%(lineno)d - %(message)s`."""

    def _one(self, text: str, now: str) -> dict[str, Any] | None:
        m = PYTHON_RE.match(text)
        if m is None:
            return None
        ts, name, level, func, line, msg = m.group("ts", "name", "level", "func", "line", "msg")
        rec: dict[str, Any] = {
            F.TIMESTAMP: self.times.asctime(ts) or now,
            F.LEVEL: _level(level),
            F.LOGGER: name,
        }
        self._message(msg, text[m.end() + 1:], rec)
        if func is not None:
            rec[FUNCTION] = func
            rec[LINENO] = int(line)
        return rec


class PythonShortParser(_TextParser):
    """`%(asctime)s - %(levelname)s - %(message)s`."""

    def _one(self, text: str, now: str) -> dict[str, Any] | None:
        m = PYTHON_SHORT_RE.match(text)
        if m is None:
            return None
        rec: dict[str, Any] = {
            F.TIMESTAMP: self.times.asctime(m.group("ts")) or now,
            F.LEVEL: _level(m.group("level")),
        }
        self._message(m.group("msg"), text[m.end() + 1:], rec)
        return rec


class AccessTextParser(_TextParser):
    """`<ip> - <METHOD> <path> - Status: <code> - Time: <seconds>s`."""

    def _one(self, text: str, now: str) -> dict[str, Any] | None:
        m = ACCESS_TEXT_RE.match(first_line(text)[0] if "\n" in text else text)
        if m is None:
            return None
        ts, level = m.group("ts", "level")
        rec: dict[str, Any] = {F.TIMESTAMP: (self.times.asctime(ts) or now) if ts else now}
        if level:
            rec[F.LEVEL] = _level(level)
        rec[F.MESSAGE] = text
        _access_fields(m, rec)
        return rec


class UvicornParser(_TextParser):
    """uvicorn's console lines: access lines get access fields, the rest level + message."""

    def _one(self, text: str, now: str) -> dict[str, Any] | None:
        line, rest = first_line(text) if "\n" in text else (text, "")
        m = UVICORN_RE.match(line)
        if m is None:
            return None
        level, body, method, path, status, ip = m.group("level", "body", "method", "path", "status", "ip")
        rec: dict[str, Any] = {F.TIMESTAMP: now, F.LEVEL: _level(level)}
        if status is not None:
            rec[F.MESSAGE] = body
            rec[F.METHOD] = method
            rec[F.PATH] = path.partition("?")[0] if "?" in path else path
            rec[F.STATUS] = int(status)
            if ip:
                rec[F.CLIENT_IP] = ip
        else:
            self._message(body, rest, rec)
        return rec


class RawParser(_TextParser):
    """Text kept as it is: `message` is the whole event, `@timestamp` the time it was read."""

    def parse_batch(self, texts: list[str]) -> list[dict[str, Any]]:
        now = now_iso()
        service = self.service
        if service:
            return [{F.TIMESTAMP: now, F.MESSAGE: t, F.SERVICE: service} for t in texts]
        return [{F.TIMESTAMP: now, F.MESSAGE: t} for t in texts]
