"""Real `logging` output (real tracebacks, chains, groups) → detect → join → parse gives the records back."""

from __future__ import annotations

import logging

import pytest

from logpipe.config import MultilineConfig
from logpipe.parse import detect_format, make_parser
from logpipe.parse.multiline import MultilineJoiner

FORMATS = {
    "python": "%(asctime)s - %(name)s - %(levelname)s - %(funcName)s:%(lineno)d - %(message)s",
    "python_short": "%(asctime)s - %(levelname)s - %(message)s",
}


class _Capture(logging.Handler):
    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(fmt))
        self.out: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.out.append(self.format(record))


def _produce(fmt: str) -> tuple[str, list[tuple[str, str, str | None]]]:
    """Log a mix of plain lines and exceptions; return the file text and what each record should be."""
    cap = _Capture(FORMATS[fmt])
    log = logging.getLogger("roundtrip.svc")
    log.handlers[:] = [cap]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    expected: list[tuple[str, str, str | None]] = []

    def inner() -> None:
        raise KeyError("missing")

    for i in range(5):
        log.info("request %d handled", i)
        expected.append(("info", f"request {i} handled", None))
    try:
        inner()
    except KeyError:
        log.exception("lookup failed")
        expected.append(("error", "lookup failed", "KeyError"))
    try:
        try:
            inner()
        except KeyError as exc:
            raise RuntimeError("wrapped\nsecond line") from exc
    except RuntimeError:
        log.error("chained failure", exc_info=True)
        expected.append(("error", "chained failure", "RuntimeError"))
    try:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            inner()
    except KeyError:
        log.warning("during handling", exc_info=True)
        expected.append(("warning", "during handling", "KeyError"))
    try:
        raise ExceptionGroup("many", [ValueError("a"), TypeError("b")])
    except ExceptionGroup:
        log.critical("group failed", exc_info=True)
        expected.append(("critical", "group failed", "ExceptionGroup"))
    log.debug("multi-line message\n  indented detail")
    expected.append(("debug", "multi-line message\n  indented detail", None))
    log.info("done")
    expected.append(("info", "done", None))
    return "\n".join(cap.out) + "\n", expected


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("feed_size", [1, 3, 1000])
def test_logging_output_round_trips(fmt: str, feed_size: int) -> None:
    text, expected = _produce(fmt)
    raw = text.encode()
    lines, off = [], 0
    for chunk in raw.splitlines(keepends=True):
        lines.append((off, off + len(chunk), chunk.decode().rstrip("\n")))
        off += len(chunk)

    detected = detect_format([t for _s, _e, t in lines[:50]])
    assert detected == fmt
    joiner = MultilineJoiner(MultilineConfig(), detected)
    events = []
    for i in range(0, len(lines), feed_size):
        events += joiner.feed(lines[i:i + feed_size])
    events += joiner.flush()
    records = make_parser(detected, tz="Europe/Paris", service="svc")([e[2] for e in events])

    assert [(r["level"], r["message"], r.get("exception", {}).get("type")) for r in records] == expected
    assert all("tags" not in r for r in records)
    assert all(r["service"] == "svc" and r["@timestamp"].endswith("Z") for r in records)
    # The events tile the file: a checkpoint after any event is a clean line boundary.
    assert events[0][0] == 0 and events[-1][1] == len(raw)
    assert all(a[1] == b[0] for a, b in zip(events, events[1:], strict=False))
    if fmt == "python":
        assert records[0]["logger"] == "roundtrip.svc" and records[0]["function"] == "_produce"
    chained = records[6]["exception"]
    assert chained["message"] == "wrapped\nsecond line"
    assert "The above exception was the direct cause" in chained["stack"]
