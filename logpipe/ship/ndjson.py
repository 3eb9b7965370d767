"""The bytes road into a sink: NDJSON the native core already rendered, never turned into dicts.

A sink that can take a batch as NDJSON (stdout, the archive, `null:`) implements `NdjsonSink`
next to `Sink`; the pipeline hands it the core's bytes with the record count, and the same
acknowledgement rules hold as for `send`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from logpipe.ship.base import SendResult


class NdjsonSink(ABC):
    """Mixin for sinks that deliver pre-rendered NDJSON records."""

    @abstractmethod
    def accepts_ndjson(self) -> bool:
        """Whether logpipe-schema NDJSON is what this sink writes as configured (not ECS, say)."""

    @abstractmethod
    def send_ndjson(self, data: bytes, count: int) -> SendResult:
        """Deliver `count` records given as NDJSON lines; return when all are acknowledged."""
