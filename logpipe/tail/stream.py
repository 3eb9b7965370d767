"""What a front (tail or replay) hands the pipeline: line chunks from identified streams."""

from __future__ import annotations

from dataclasses import dataclass, field

from logpipe.config import InputConfig
from logpipe.tail.lines import LineBlock


@dataclass
class Stream:
    """One source of lines: a followed file generation or a file replayed once.

    `key` identifies it for acks/checkpoints; `fp` (content fingerprint) and the byte
    offset make record ids. `sample` holds the first lines for format autodetection.
    `keeps_ids`: the lines are records of our own archive, whose `_id` is ours and kept.
    """

    key: str
    path: str
    fp: str
    input: InputConfig
    sample: list[str] = field(default_factory=list)
    keeps_ids: bool = False


@dataclass
class LineChunk:
    """Complete lines read from `stream` in one turn.

    `safe_offset` is the offset every line before which has been handed over (lines the
    front skipped included); `eof` says the stream ends here (flush held multi-line
    events, forget its state).
    """

    stream: Stream
    lines: LineBlock
    safe_offset: int
    eof: bool = False
    nbytes: int = 0
