"""`--sink -`: NDJSON on standard output, acknowledged once written and flushed."""

from __future__ import annotations

import sys
from typing import Any, BinaryIO

import orjson

from logpipe.config import SinkConfig
from logpipe.fields import to_ecs
from logpipe.safeform import ECS_MAX_DEPTH, MAX_DEPTH, reduce
from logpipe.ship.base import SendResult, Sink, SinkFatalError
from logpipe.ship.ndjson import NdjsonSink

_OPTS = orjson.OPT_APPEND_NEWLINE
_KEYS_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS  # slower: only for records that need it


def encode_ndjson(records: list[dict[str, Any]], schema: str = "logpipe") -> tuple[bytes, int]:
    """NDJSON of `records` (orjson; unknown types rendered with str()), and how many of them
    went out in the safe form (logpipe.safeform) because orjson refused them as they were."""
    dumps = orjson.dumps
    ecs = schema == "ecs"
    # Appended one by one and dropped at once, not kept in a list for a join: orjson's output
    # buffers are over-allocated and shrunk, so keeping thousands of them alive strands a page
    # each and costs a page fault per record instead of a copy.
    out = bytearray()
    reduced = 0
    for r in records:
        try:
            out += dumps(to_ecs(r) if ecs else r, default=str, option=_OPTS)
        except (TypeError, ValueError, AttributeError):  # rare: non-string keys, or a record to reduce
            line, safe = _odd_line(r, ecs)
            out += line
            reduced += safe
    return bytes(out), reduced


def _odd_line(record: dict[str, Any], ecs: bool) -> tuple[bytes, int]:
    """The line of a record orjson refused as it was: with its non-string keys as text, else
    in the safe form (then 1, counted)."""
    try:
        return orjson.dumps(to_ecs(record) if ecs else record, default=str, option=_KEYS_OPTS), 0
    except (TypeError, ValueError, AttributeError):
        safe = reduce(record, max_depth=ECS_MAX_DEPTH if ecs else MAX_DEPTH)
        return orjson.dumps(to_ecs(safe) if ecs else safe, default=str, option=_KEYS_OPTS), 1


class StdoutSink(Sink, NdjsonSink):
    name = "stdout"

    def __init__(self, cfg: SinkConfig, stream: BinaryIO | None = None) -> None:
        super().__init__()
        self.schema = cfg.schema
        self._out = stream if stream is not None else sys.stdout.buffer

    def send(self, records: list[dict[str, Any]]) -> SendResult:
        data, reduced = encode_ndjson(records, self.schema)
        result = self.send_ndjson(data, len(records))
        result.encode_failures += reduced
        return result

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
