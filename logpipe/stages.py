"""Interfaces of the optional pipeline stages, so each can be built and tested alone.

The pipeline (logpipe.pipeline) calls, per batch, in this order:
  records = parse + enrich (+ scrub)      -> list[dict], every record has `_id`
  tap.observe(records)                    -> metrics; never blocks, never mutates
  kept, report = throttle.apply(records)  -> drop or delay
  sink.send(kept + report.summaries + tap.drain_records())
and advances checkpoints once `send` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from logpipe.metrics.columns import TapColumns


class MetricsTap(Protocol):
    # True when `observe` must see every field of each record (the report reads request ids and
    # timestamps); False promises a ColumnTap: the native core's road hands it columns instead.
    whole_records: bool

    def observe(self, records: list[dict[str, Any]]) -> None:
        """Look at a batch of parsed records (access and app/error alike). Must be cheap."""

    def drain_records(self) -> list[dict[str, Any]]:
        """Metric/alert records (event.kind) due since the last call, to ship with the logs."""

    def on_delivery(self, delivered: int, dropped: dict[str, int], dead_lettered: int, sink_latency_s: float) -> None:
        """Pipeline self-metrics after each acknowledged batch."""


class ColumnTap(MetricsTap, Protocol):
    """A tap that reads only the metric columns (`whole_records` False)."""

    def observe_columns(self, cols: TapColumns) -> None:
        """Look at a batch given as columns (logpipe.metrics.columns), in file order. Must be cheap."""


@dataclass
class ThrottleReport:
    dropped: dict[str, int] = field(default_factory=dict)  # group -> records dropped in this batch
    summaries: list[dict[str, Any]] = field(default_factory=list)  # one record per group+period that dropped


class Throttle(Protocol):
    def apply(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ThrottleReport]:
        """Return the records allowed through; in delay mode, sleeps instead of dropping."""


@dataclass
class FileStats:
    """One followed file, as the pipeline sees it (for `bytes behind` and the status line)."""

    path: str
    size: int = 0
    read_offset: int = 0  # bytes read from the file so far
    acked_offset: int = 0  # checkpointed (acknowledged) offset


@dataclass
class PipelineStats:
    """Counters the pipeline keeps and the metrics endpoint / status line read (no locking:
    single writer, readers tolerate a slightly stale view)."""

    lines_read: int = 0
    bytes_read: int = 0
    records_parsed: int = 0
    parse_failures: int = 0
    delivered: int = 0
    derived: int = 0  # metric/alert records (event.kind) the pipeline made, among `delivered`
    duplicates: int = 0
    dead_lettered: int = 0
    encode_failures: int = 0  # records delivered in the safe form, tagged _encode_failure (logpipe.safeform)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count (throttle, filter, ...)
    skipped_files: dict[str, str] = field(default_factory=dict)  # path -> reason (binary, permission)
    files: dict[str, FileStats] = field(default_factory=dict)  # keyed by path
    started_at: float = 0.0
    last_ack_at: float = 0.0  # time.time() of the last acknowledged batch; 0 = none yet
    last_sink_latency_s: float = 0.0
    inflight_batches: int = 0
    inflight_bytes: int = 0
    sink_error: str = ""  # last transient sink error, "" when healthy
    sink_rerouted: int = 0  # requests the sink sent again to another node/server after theirs failed
    sink_nodes: dict[str, bool] = field(default_factory=dict)  # the sink's live node view (Sink.node_states)

    def bytes_behind(self) -> int:
        return sum(max(0, f.size - f.acked_offset) for f in self.files.values())
