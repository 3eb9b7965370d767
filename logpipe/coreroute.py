"""The fast road through the native core (`logpipe._core`): one call per chunk of lines.

Text formats the core parses (`CORE_FORMATS`: common/combined access lines) take the same road
through `TextCore`: lines it cannot vouch for come back by index and go the stream's Python
parser (second chances, `_parse_failure`) as below.

For a JSON stream whose lines decoded as they are, the core parses each line, enriches it
(`host`, `log_file`, `log_offset`, the `_id`) and renders NDJSON bytes, screening every line with
the scrubber's own prefilter tables. What the core cannot vouch for (a foreign JSON shape, an
escape, a line the scrub screen flags, a blank line, anything not JSON) comes back by index and
goes the Python way (`logpipe.parse.jsonfmt`, `logpipe.enrich`, `logpipe.scrub`) as before; its
records are rendered and put back in their place, so the output keeps the file's order.

It applies only where the bytes road reaches the sink unchanged: no record filter, no throttle,
a sink that writes logpipe-schema NDJSON (`NdjsonSink`), and a scrub configuration the screen
covers. `LOGPIPE_CORE=off` turns it off (the Python road then does everything, as before).

Records that carry an `_id` of their own always take the Python road: the reliability rules
(a foreign `_id` kept as `_source_id`, except on records read back from our own archive; poison
records tagged `_encode_failure`) are decided there until the core mirrors them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from logpipe.enrich import Enricher
from logpipe.parse.timefmt import load_zone
from logpipe.ship.stdout import encode_ndjson
from logpipe.tail.lines import LineBlock
from logpipe.tail.stream import Stream

if TYPE_CHECKING:
    from logpipe.metrics.columns import TapColumns  # numpy: imported only where the tap runs

log = logging.getLogger("logpipe.core")

#: Formats the core parses: `json` (`JsonCore`) and the text formats `TextCore` takes.
CORE_FORMATS = frozenset({"json", "common", "combined"})


def load_core() -> Any | None:
    """The extension module, or None (with one warning) when it is not built or turned off."""
    if os.environ.get("LOGPIPE_CORE", "").strip().lower() in ("off", "0", "false", "no"):
        return None
    try:
        from logpipe import _core
    except ImportError as exc:
        log.warning("native core not available (%s): run `pip install -e .` to build it; "
                    "using the Python road", exc)
        return None
    return _core


@dataclass
class CoreOutput:
    """One slice of lines through the core: NDJSON of `count` records in file order, what the
    metrics tap reads of them (columns, when the tap is on), and the Python road's own counts."""

    ndjson: bytes = b""
    count: int = 0
    lines: int = 0  # lines taken
    end: int = 0  # byte of the block's raw bytes just past the last line taken (and its newline)
    tap: TapColumns | None = None
    parse_failures: int = 0
    blank: int = 0
    encode_failures: int = 0  # records rendered in the safe form (logpipe.safeform), tagged _encode_failure


class CoreRoute:
    """Decides per chunk whether the core takes it and runs it; one `JsonCore` per stream."""

    def __init__(self, core: Any, enricher: Enricher, *, tap: bool) -> None:
        self.core = core
        self.enricher = enricher
        self.tap = tap
        scrubber = enricher.scrubber
        self.screen = scrubber.screen_tables() if scrubber is not None else None
        self.usable = scrubber is None or self.screen is not None
        # The scrubber's exact per-line check, asked only about the lines the screen flags.
        self.confirm = (lambda lines: list(map(scrubber.suspicious_bytes, lines))) if scrubber is not None else None
        self._cores: dict[str, tuple[tuple[Any, ...], Any]] = {}

    def applies(self, fmt: str, block: LineBlock) -> bool:
        """Lines of a format the core parses that decoded as they are (the block carries the
        file's bytes of them)."""
        return self.usable and fmt in CORE_FORMATS and block.raw_base >= 0 and not block.tags and len(block) > 0

    def forget(self, key: str) -> None:
        self._cores.pop(key, None)

    def _core_for(self, stream: Stream, fmt: str) -> Any:
        """The stream's core, made anew when what it stamps on records changed (a followed file
        renamed by rotation keeps its key but is now read under another path)."""
        inp = stream.input
        origin = (fmt, inp.tz, stream.path, stream.fp, inp.service, tuple(inp.tags))
        held = self._cores.get(stream.key)
        if held is None or held[0] != origin:
            args = (self.enricher.host, stream.path, stream.fp, inp.service, list(inp.tags), self.screen, self.tap)
            made = (self.core.JsonCore(*args) if fmt == "json"
                    else _TextRun(self.core.TextCore(fmt, *args, load_zone(inp.tz) is UTC)))
            held = self._cores[stream.key] = (origin, made)
        return held[1]

    def run(self, stream: Stream, fmt: str, parse: Any, counter: Any, block: LineBlock, at: int,
            limit: int) -> CoreOutput:
        """At most `limit` lines of `block` (a stream of format `fmt`, one of `CORE_FORMATS`),
        from byte `at` of its raw bytes (a line start) -> records; `CoreOutput.lines` and `.end`
        say how far it went. `parse` is the stream's parser (the Python road) and `counter` the
        object whose `failed` counts its failures (or None)."""
        data, base = block.raw, block.raw_base
        core = self._core_for(stream, fmt)
        out, lines, end, slow, cuts, tap = core.process(data, base, self.confirm, at, limit)
        if tap is not None:
            from logpipe.metrics.columns import TapColumns
        result = CoreOutput(lines=lines, end=end)
        if not slow:
            result.ndjson, result.count = out, lines
            if isinstance(tap, _TapViews):
                result.tap = tap.columns(lines, set(), {})
            elif tap is not None:
                result.tap = TapColumns.from_core(result.count, tap, [], [])
            return result
        # The block decoded as it is (LineBlock.raw): each slow line's text is its bytes decoded.
        texts = [data[a:b].decode("utf-8") for _k, a, b in slow]
        keep = [k for k, t in enumerate(texts) if t and not t.isspace()]
        result.blank = len(texts) - len(keep)
        rendered: list[bytes] = [b""] * len(texts)
        if keep:
            kept = [texts[k] for k in keep]
            before = counter.failed if counter is not None else 0
            coerced = counter.coerced if counter is not None else 0
            records = parse(kept)
            if counter is not None:
                result.parse_failures = counter.failed - before
                result.encode_failures = counter.coerced - coerced
            starts = [base + slow[k][1] for k in keep]
            self.enricher.apply(records, kept, starts, stream.path, stream.fp, None, stream.input.tags,
                                keep_ids=stream.keeps_ids)
            for k, rec in zip(keep, records, strict=True):
                rendered[k], reduced = encode_ndjson([rec])
                result.encode_failures += reduced
        else:
            records = []
        pieces: list[bytes] = []
        at = 0
        for cut, piece in zip(cuts, rendered, strict=True):
            pieces.append(out[at:cut])
            pieces.append(piece)
            at = cut
        pieces.append(out[at:])
        result.ndjson = b"".join(pieces)
        result.count = lines - len(slow) + len(keep)
        if isinstance(tap, _TapViews):
            result.tap = tap.columns(lines, {k for k, _a, _b in slow},
                                     {slow[k][0]: rec for k, rec in zip(keep, records, strict=True)})
        elif tap is not None:
            result.tap = TapColumns.from_core(result.count, tap, [slow[k][0] for k in keep], records)
        return result


class _TapViews(list):
    """`TextCore`'s tap answer: one dict view per fast record, in line order."""

    def columns(self, lines: int, slow: set[int], records: dict[int, dict[str, Any]]) -> TapColumns:
        """Columns of the chunk's records in file order: the views of fast lines and the
        Python road's `records` of the `slow` ones (blank slow lines have none)."""
        from logpipe.metrics.columns import columns_of

        ordered: list[dict[str, Any]] = []
        views = iter(self)
        for i in range(lines):
            if i not in slow:
                ordered.append(next(views))
            elif i in records:
                ordered.append(records[i])
        cols = columns_of(ordered)
        cols.records = list(records.values())
        return cols


class _TextRun:
    """`TextCore` under `JsonCore.process`'s shape: `TextCore.process` takes a run of whole
    lines and answers (NDJSON, slow line indices, cuts, tap views)."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def process(self, data: bytes, base: int, confirm: Any, at: int, limit: int) -> tuple[Any, ...]:
        end, lines = at, 0
        while lines < limit:
            nl = data.find(b"\n", end)
            lines += 1
            if nl < 0:
                end = len(data) + 1
                break
            end = nl + 1
        out, slow, cuts, views = self.core.process(data[at:end - 1], base + at, confirm)
        starts = _line_starts(data, at, end, slow)
        spans = [(k, starts[k], data.find(b"\n", starts[k]) % (len(data) + 1)) for k in slow]
        return out, lines, end, spans, cuts, _TapViews(views) if views is not None else None


def _line_starts(data: bytes, at: int, end: int, wanted: list[int]) -> dict[int, int]:
    """Byte offsets in `data` of the lines numbered `wanted` (0 = the line at `at`)."""
    out: dict[int, int] = {}
    if not wanted:
        return out
    top = max(wanted)
    want = set(wanted)
    pos = at
    for k in range(top + 1):
        if k in want:
            out[k] = pos
        pos = data.find(b"\n", pos, end) + 1
    return out
