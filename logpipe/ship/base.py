"""The sink contract every destination implements.

A sink receives a batch of records (dicts in the shared record format, each with `_id`)
and returns only once every record in it is *acknowledged*: delivered, or dead-lettered
with a reason. Transient failures (connection refused, 429, missing ack) are retried
inside `send` with backoff, which is what makes the pipeline's bounded queue push back
on the reader during an outage. `send` raises `SinkFatalError` only for problems a retry
cannot fix (bad credentials, rejected shared key, bad URL); the pipeline then stops
without advancing checkpoints.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


class SinkFatalError(RuntimeError):
    """A sink cannot deliver and retrying will not help; the message names the sink/server."""


class SinkConfigError(ValueError):
    """A sink URL or option is invalid; raised at start, naming the offending value."""


@dataclass
class SendResult:
    """What happened to one batch; all of it is acknowledged when `send` returns."""

    delivered: int = 0
    duplicates: int = 0  # already present (e.g. Elasticsearch 409 on create): counted as delivered
    dead_lettered: int = 0
    encode_failures: int = 0  # records sent in the safe form (logpipe.safeform), part of `delivered`
    retries: int = 0
    rerouted: int = 0  # requests sent again to another node/server after theirs failed
    errors: list[str] = field(default_factory=list)

    def merge(self, other: SendResult) -> None:
        self.delivered += other.delivered
        self.duplicates += other.duplicates
        self.dead_lettered += other.dead_lettered
        self.encode_failures += other.encode_failures
        self.retries += other.retries
        self.rerouted += other.rerouted
        self.errors.extend(other.errors)


class Sink(ABC):
    """A destination for record batches. Subclasses: stdout, archive, forward, elastic."""

    name: str = "sink"

    def __init__(self) -> None:
        self.stop_event = threading.Event()  # set by the pipeline to end retry loops on shutdown
        # Set by the pipeline that owns the sink: its records come from the parsers and logpipe's
        # own stages, so every value is a plain JSON type (never bytes, never a custom object).
        # A sink may then skip defensive whole-batch checks meant for records built by hand.
        self.json_clean_input = False

    @abstractmethod
    def send(self, records: list[dict[str, Any]]) -> SendResult:
        """Deliver `records`; return when all are acknowledged. Retries transient failures."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make everything sent so far durable (archive: close the open segment)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files."""

    def check_connection(self, timeout_s: float = 10.0) -> str | None:
        """None when the destination can take records, else one line saying why not; asked once
        at start by one-shot commands so a misconfigured server fails fast. Local sinks: None."""
        return None

    def node_states(self) -> dict[str, bool]:
        """Each destination node's health (masked URL -> up), a live view the sink keeps
        current; empty for a sink with a single destination."""
        return {}

    def describe(self) -> str:
        """A human-readable target with credentials masked, for status lines and errors."""
        return self.name


class SinkStopped(RuntimeError):
    """Raised from `send` when the pipeline is shutting down mid-retry; nothing is acked."""
