"""The reference the native core is held to: the Python road for JSON lines, written out plainly.

`python_road` is what `logpipe tail` did for a chunk of JSON lines before the core (and still does
for everything the core hands back): the Python splitter, `JsonParser`, `Enricher` with the
`Scrubber`, blank lines dropped. `core_road` is the same chunk through `logpipe.coreroute`.
Both return the records as dicts, in order, plus the views the metrics tap would observe.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from logpipe.config import InputConfig
from logpipe.coreroute import CoreRoute
from logpipe.enrich import Enricher
from logpipe.parse.jsonfmt import JsonParser
from logpipe.tail.lines import LineBlock, LineSplitter
from logpipe.tail.stream import Stream

HOST = "oracle-host"
PATH = "/var/log/app/current.log"
FP = "5e1f0a2b3c4d6e7f"
TAP_KEYS = ("method", "path", "route", "status", "duration_ms", "level")


def split(data: bytes) -> LineBlock:
    """The chunk as the tail front hands it over: one read, whole lines (data ends with a newline)."""
    return LineSplitter(0).feed(data)


def python_road(block: LineBlock, scrubber: Any, service: str = "", tags: tuple[str, ...] = ()) -> list[dict]:
    keep = [i for i, t in enumerate(block.texts) if t and not t.isspace()]
    texts = [block.texts[i] for i in keep]
    starts = [block.starts[i] for i in keep]
    records = JsonParser(service=service).parse_batch(texts)
    Enricher(HOST, scrubber, parallel=False).apply(records, texts, starts, PATH, FP, block.tags, list(tags))
    return records


def core_road(core: Any, block: LineBlock, scrubber: Any, service: str = "",
              tags: tuple[str, ...] = ()) -> tuple[list[dict], list[dict]]:
    route = CoreRoute(core, Enricher(HOST, scrubber, parallel=False), tap=True)
    assert route.usable and route.applies("json", block)
    stream = Stream(key="k", path=PATH, fp=FP, input=InputConfig(paths=[PATH], service=service, tags=list(tags)))
    parser = JsonParser(service=service)
    out = route.run(stream, parser.parse_batch, parser, block, 0, len(block))
    records = [orjson.loads(line) for line in out.ndjson.splitlines()]
    assert out.count == len(records)
    return records, out.tap


def tap_projection(records: list[dict]) -> Counter[str]:
    """What the tap reads of each record, as a multiset (values with their types)."""
    return Counter(repr([(k, r[k]) for k in TAP_KEYS if k in r]) for r in records)
