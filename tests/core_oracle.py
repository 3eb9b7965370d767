"""The reference the native core is held to: the Python road for JSON lines, written out plainly.

`python_road` is what `logpipe tail` did for a chunk of JSON lines before the core (and still does
for everything the core hands back): the Python splitter, `JsonParser`, `Enricher` with the
`Scrubber`, blank lines dropped. `core_road` is the same chunk through `logpipe.coreroute`.
Both return the records as dicts, in order, plus the views the metrics tap would observe.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from logpipe.config import InputConfig
from logpipe.coreroute import CoreRoute
from logpipe.enrich import Enricher
from logpipe.metrics.columns import TapColumns, columns_of
from logpipe.parse.jsonfmt import JsonParser
from logpipe.tail.lines import LineBlock, LineSplitter
from logpipe.tail.stream import Stream

HOST = "oracle-host"
PATH = "/var/log/app/current.log"
FP = "5e1f0a2b3c4d6e7f"


def split(data: bytes) -> LineBlock:
    """The chunk as the tail front hands it over: one read, whole lines (data ends with a newline)."""
    return LineSplitter(0).feed(data)


def python_road(block: LineBlock, scrubber: Any, service: str = "", tags: tuple[str, ...] = ()) -> list[dict]:
    keep = [i for i, t in enumerate(block.texts) if t and not t.isspace()]
    texts = [block.texts[i] for i in keep]
    starts = [block.starts[i] for i in keep]
    records = JsonParser(service=service).parse_batch(texts)
    Enricher(HOST, scrubber).apply(records, texts, starts, PATH, FP, block.tags, list(tags))
    return records


def core_road(core: Any, block: LineBlock, scrubber: Any, service: str = "",
              tags: tuple[str, ...] = ()) -> tuple[list[dict], TapColumns]:
    route = CoreRoute(core, Enricher(HOST, scrubber), tap=True)
    assert route.usable and route.applies("json", block)
    stream = Stream(key="k", path=PATH, fp=FP, input=InputConfig(paths=[PATH], service=service, tags=list(tags)))
    parser = JsonParser(service=service)
    out = route.run(stream, "json", parser.parse_batch, parser, block, 0, len(block))
    assert out.lines == len(block) and out.end == len(block.raw) + 1
    records = [orjson.loads(line) for line in out.ndjson.splitlines()]
    assert out.count == len(records)
    assert out.tap is not None
    return records, out.tap


def tap_view(cols: TapColumns) -> tuple[Any, ...]:
    """Everything the tap reads, comparable with ==: values with their types, in order (NaN as
    None: the float arrays hold NaN for absent or null)."""
    def floats(a: Any) -> list[Any]:
        return [None if math.isnan(v) else (type(v).__name__, v) for v in a.tolist()]

    def typed(col: list[Any]) -> list[Any]:
        return [(type(v).__name__, v) for v in col]

    return (cols.n_records, typed(cols.methods), typed(cols.paths), typed(cols.routes), floats(cols.status),
            floats(cols.durations), typed(cols.levels), cols.exceptions,
            [r.get("_id") for r in cols.records if "event.kind" in r])  # what listeners look for


def python_tap(records: list[dict]) -> TapColumns:
    """The tap's columns of the Python road's records (the reading `batch.extract` does)."""
    return columns_of(records)
