"""`--sink -`: NDJSON on standard output, acknowledged once written and flushed."""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

import orjson

from logpipe.config import SinkConfig
from logpipe.fields import to_ecs
from logpipe.ship.base import SendResult, Sink, SinkFatalError
from logpipe.ship.ndjson import NdjsonSink

_OPTS = orjson.OPT_APPEND_NEWLINE
_SLOW_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def render_ndjson(records: list[dict[str, Any]], schema: str = "logpipe") -> bytes:
    """One JSON object per line (orjson; unknown types rendered with str())."""
    dumps = orjson.dumps
    if schema == "ecs":
        records = [to_ecs(r) for r in records]
    # Appended one by one and dropped at once, not kept in a list for a join: orjson's output
    # buffers are over-allocated and shrunk, so keeping thousands of them alive strands a page
    # each and costs a page fault per record (~4 µs on a VM, measured) instead of ~0.4 µs.
    out = bytearray()
    try:
        for r in records:
            out += dumps(r, default=str, option=_OPTS)
    except TypeError:  # a non-string key somewhere (rare): the slower option handles it
        out = bytearray()
        for r in records:
            out += dumps(r, default=str, option=_SLOW_OPTS)
    return bytes(out)


class StdoutSink(Sink, NdjsonSink):
    name = "stdout"

    def __init__(self, cfg: SinkConfig, stream: BinaryIO | None = None) -> None:
        super().__init__()
        self.schema = cfg.schema
        self._out = stream if stream is not None else sys.stdout.buffer

    def send(self, records: list[dict[str, Any]]) -> SendResult:
        return self.send_ndjson(render_ndjson(records, self.schema), len(records))

    def accepts_ndjson(self) -> bool:
        return self.schema == "logpipe"

    def send_ndjson(self, data: bytes, count: int) -> SendResult:
        try:
            self._out.write(data)
            self._out.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise SinkFatalError(f"stdout: cannot write ({exc})") from None
        return SendResult(delivered=count)

    def describe(self) -> str:
        return "stdout"
