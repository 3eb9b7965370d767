"""The fast road through the native core (`logpipe._core`): one call per chunk of lines.

Text formats the core parses (`CORE_FORMATS`: common/combined access lines) take the same road
through `TextCore`, whose `process` has `JsonCore.process`'s shape: lines it cannot vouch for come
back by index and go the stream's Python parser (second chances, `_parse_failure`) as below.

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
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from logpipe.enrich import Enricher
from logpipe.parse.timefmt import load_zone
from logpipe.ship.stdout import encode_ndjson
from logpipe.tail.lines import LineBlock
from logpipe.tail.stream import Stream

log = logging.getLogger("logpipe.core")

#: Formats the core parses: `json` (`JsonCore`) and the text formats `TextCore` takes.
CORE_FORMATS = frozenset({"json", "common", "combined"})
#: Formats whose events the joiner makes (they can span lines): `run_events` takes them.
EVENT_FORMATS = frozenset({"python", "python_short"})


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
    """One slice of lines through the core: NDJSON of `count` records in file order, the records
    the metrics tap needs to see (tap views of the fast ones, full dicts of the rest), and the
    Python road's own counts."""

    ndjson: bytes = b""
    count: int = 0
    tap: list[dict[str, Any]] = field(default_factory=list)
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
        self._fmt = "json"

    def applies(self, fmt: str, block: LineBlock) -> bool:
        """Lines of a format the core parses that decoded as they are (the block carries the
        file's bytes of them)."""
        if not (self.usable and fmt in CORE_FORMATS and block.raw_base >= 0 and not block.tags and len(block) > 0):
            return False
        self._fmt = fmt  # `run` follows on this block (the pipeline asks, then runs)
        return True

    def forget(self, key: str) -> None:
        self._cores.pop(key, None)

    def _core_for(self, stream: Stream) -> Any:
        """The stream's core, made anew when what it stamps on records changed (a followed file
        renamed by rotation keeps its key but is now read under another path)."""
        inp = stream.input
        fmt = self._fmt
        origin = (fmt, inp.tz, stream.path, stream.fp, inp.service, tuple(inp.tags))
        held = self._cores.get(stream.key)
        if held is None or held[0] != origin:
            args = (self.enricher.host, stream.path, stream.fp, inp.service, list(inp.tags), self.screen, self.tap)
            made = (self.core.JsonCore(*args) if fmt == "json"
                    else self.core.TextCore(fmt, *args, load_zone(inp.tz) is UTC))
            held = self._cores[stream.key] = (origin, made)
        return held[1]

    def run(self, stream: Stream, parse: Any, counter: Any, block: LineBlock, i: int, j: int,
            fmt: str | None = None) -> CoreOutput:
        """Lines i..j of `block` -> records. `parse` is the stream's parser (the Python road)
        and `counter` the object whose `failed` counts its failures (or None). `fmt`: the
        stream's format (default: the one `applies` last accepted)."""
        if fmt is not None:
            self._fmt = fmt
        base = block.raw_base
        data = block.raw[block.starts[i] - base:block.ends[j - 1] - base - 1]
        out, slow, cuts, tap = self._core_for(stream).process(data, block.starts[i], self.confirm)
        result = CoreOutput(tap=tap if tap is not None else [])
        if not slow:
            result.ndjson, result.count = out, j - i
            return result
        texts = [block.texts[i + k] for k in slow]
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
            starts = [block.starts[i + slow[k]] for k in keep]
            self.enricher.apply(records, kept, starts, stream.path, stream.fp, None, stream.input.tags,
                                keep_ids=stream.keeps_ids)
            for k, rec in zip(keep, records, strict=True):
                rendered[k], reduced = encode_ndjson([rec])
                result.encode_failures += reduced
            if self.tap:
                result.tap.extend(records)
        pieces: list[bytes] = []
        at = 0
        for cut, piece in zip(cuts, rendered, strict=True):
            pieces.append(out[at:cut])
            pieces.append(piece)
            at = cut
        pieces.append(out[at:])
        result.ndjson = b"".join(pieces)
        result.count = (j - i) - len(slow) + len(keep)
        return result

    def run_events(self, stream: Stream, parse: Any, counter: Any, fmt: str, texts: list[str],
                   starts: list[int]) -> CoreOutput:
        """Joined events (not blank, no line tags) of an `EVENT_FORMATS` stream -> records, as
        `run` does for lines: one-line events in the core, the rest (tracebacks, lines it cannot
        vouch for) through `parse` and the enricher, put back in their place."""
        self._fmt = fmt
        out, slow, cuts, tap = self._core_for(stream).process_texts(texts, starts, self.confirm)
        result = CoreOutput(tap=tap if tap is not None else [])
        if not slow:
            result.ndjson, result.count = out, len(texts)
            return result
        kept = [texts[k] for k in slow]
        before = counter.failed if counter is not None else 0
        records = parse(kept)
        if counter is not None:
            result.parse_failures = counter.failed - before
        self.enricher.apply(records, kept, [starts[k] for k in slow], stream.path, stream.fp, None,
                            stream.input.tags, keep_ids=stream.keeps_ids)
        pieces: list[bytes] = []
        at = 0
        for cut, rec in zip(cuts, records, strict=True):
            piece, reduced = encode_ndjson([rec])
            result.encode_failures += reduced
            pieces += [out[at:cut], piece]
            at = cut
        pieces.append(out[at:])
        if self.tap:
            result.tap.extend(records)
        result.ndjson, result.count = b"".join(pieces), len(texts)
        return result
